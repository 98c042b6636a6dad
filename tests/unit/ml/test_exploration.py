from hashlib import sha256

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhub.ml import exploration
from policyhub.ml.exploration import (
    action_probabilities,
    action_probabilities_flat,
    choose_top,
    explore,
    ranking_order,
    seed_for,
    uniform_for,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
score_lists = st.lists(finite, min_size=1, max_size=40)


def test_probabilities_match_the_formula_computed_by_hand() -> None:
    s = np.array([1.0, 2.0, 4.0])
    z = (s - s.mean()) / (s.std() + 1e-6)
    soft = np.exp(z / 0.5) / np.exp(z / 0.5).sum()
    expected = 0.9 * soft + 0.1 / 3
    np.testing.assert_allclose(action_probabilities(s), expected, rtol=1e-12)


def test_equal_scores_give_uniform_probabilities() -> None:
    np.testing.assert_allclose(action_probabilities([3.0] * 4), [0.25] * 4)


def test_single_candidate_has_probability_one() -> None:
    np.testing.assert_allclose(action_probabilities([7.5]), [1.0])


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        action_probabilities([1.0, 2.0], epsilon=1.5)
    with pytest.raises(ValueError, match="temperature"):
        action_probabilities([1.0, 2.0], temperature=0.0)
    with pytest.raises(ValueError, match="finite"):
        action_probabilities([1.0, float("nan")])
    with pytest.raises(ValueError, match="candidate"):
        action_probabilities([])


@given(score_lists, st.floats(0.0, 1.0), st.floats(0.05, 5.0))
def test_probabilities_sum_to_one_and_respect_the_epsilon_floor(
    scores: list[float], epsilon: float, temperature: float
) -> None:
    p = action_probabilities(scores, epsilon, temperature)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(p >= epsilon / len(scores) - 1e-12)


@given(score_lists)
def test_a_higher_score_never_gets_a_lower_probability(scores: list[float]) -> None:
    s = np.array(scores)
    p = action_probabilities(s)
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(p[order]) >= -1e-12)


@settings(max_examples=50)
@given(st.lists(score_lists, min_size=1, max_size=10), st.floats(0.0, 1.0), st.floats(0.1, 3.0))
def test_flat_layout_matches_one_request_at_a_time(
    groups: list[list[float]], epsilon: float, temperature: float
) -> None:
    flat = np.concatenate([np.array(g) for g in groups])
    offsets = np.cumsum([0] + [len(g) for g in groups])
    got = action_probabilities_flat(flat, offsets, epsilon, temperature)
    want = np.concatenate([action_probabilities(g, epsilon, temperature) for g in groups])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_flat_layout_rejects_empty_decisions_and_bad_offsets() -> None:
    with pytest.raises(ValueError, match="at least one"):
        action_probabilities_flat([1.0, 2.0], [0, 0, 2])
    with pytest.raises(ValueError, match="offsets"):
        action_probabilities_flat([1.0, 2.0], [0, 1])


def test_seed_is_the_first_eight_bytes_of_the_sha256_of_the_decision_id() -> None:
    expected = int.from_bytes(sha256(b"dec-1").digest()[:8], "big")
    assert seed_for("dec-1") == expected


def test_the_uniform_is_the_top_53_bits_of_the_decision_ids_sha256() -> None:
    digest = sha256(b"dec-1").digest()
    assert uniform_for("dec-1") == (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    draws = np.array([uniform_for(f"d-{i}") for i in range(20_000)])
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.01 and abs(draws.var() - 1 / 12) < 0.003


def test_choose_top_inverts_the_cumulative_distribution_at_the_decisions_uniform() -> None:
    rng = np.random.default_rng(0)
    for i in range(200):
        p = action_probabilities(rng.normal(size=int(rng.integers(1, 20))))
        decision_id = f"decision-{i}"
        cdf = np.cumsum(p) / p.sum()
        drawn = int(np.searchsorted(cdf, uniform_for(decision_id), side="right"))
        expected = min(drawn, p.size - 1)
        assert choose_top(p, decision_id) == expected


def test_choose_top_is_deterministic_per_decision_and_follows_probs() -> None:
    p = np.array([0.7, 0.2, 0.1])
    picks = np.array([choose_top(p, f"d-{i}") for i in range(4000)])
    assert all(choose_top(p, f"d-{i}") == picks[i] for i in range(50))
    freq = np.bincount(picks, minlength=3) / picks.size
    np.testing.assert_allclose(freq, p, atol=0.03)


def test_choose_top_never_picks_a_zero_probability_item() -> None:
    p = np.array([0.0, 1.0, 0.0])
    assert {choose_top(p, f"x{i}") for i in range(100)} == {1}


def test_ranking_puts_the_drawn_item_first_then_descending_scores() -> None:
    scores = [0.1, 0.9, 0.5, 0.5, 0.3]
    assert ranking_order(scores, 4) == [4, 1, 2, 3, 0]
    assert ranking_order(scores, 1) == [1, 2, 3, 4, 0]


def test_explore_logs_the_probability_of_the_served_top_item() -> None:
    scores = np.array([0.2, 0.8, 0.4])
    order, propensity = explore(scores, "abc")
    probs = action_probabilities(scores)
    assert sorted(order) == [0, 1, 2]
    assert propensity == pytest.approx(probs[order[0]])
    assert order[0] == choose_top(probs, "abc")


def test_flat_probabilities_in_blocks_of_decisions_are_those_of_all_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(4)
    sizes = rng.integers(1, 9, size=300)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    scores = rng.normal(size=int(offsets[-1])) * 3
    whole = action_probabilities_flat(scores, offsets, 0.2, 0.7)
    monkeypatch.setattr(exploration, "FLAT_BLOCK_ROWS", 7)
    blocks = action_probabilities_flat(scores, offsets, 0.2, 0.7)
    assert np.array_equal(blocks, whole)
    assert np.allclose(np.add.reduceat(blocks, offsets[:-1]), 1.0)

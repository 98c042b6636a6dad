from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policyhub.domain.constraints import (
    ConstrainedCandidate,
    Constraints,
    EnforcedRanking,
    Violation,
    enforce,
    retrieval_order,
)


def Cand(  # noqa: N802 - reads like the candidate it builds
    retrieval_score: float, source: str | None = None, blocked: bool = False, pinned: bool = False
) -> ConstrainedCandidate:
    return {
        "retrieval_score": retrieval_score, "source": source, "blocked": blocked, "pinned": pinned,
    }  # fmt: skip


def allowed_in_retrieval_order(cands: list[ConstrainedCandidate], rules: Constraints) -> list[int]:
    """The documented allowed set, restated independently of the implementation."""
    order = sorted(range(len(cands)), key=lambda i: (-cands[i]["retrieval_score"], i))
    floor = rules.min_retrieval_score
    passed = [
        i for i in order
        if not cands[i].get("blocked", False)
        and (floor is None or cands[i]["retrieval_score"] >= floor)
    ]
    cap = rules.max_items_per_source
    if cap is None:
        return passed
    used: Counter[str] = Counter()
    kept: set[int] = set()
    pinned = [i for i in passed if cands[i].get("pinned", False)]
    for i in pinned + [i for i in passed if i not in pinned]:
        src = cands[i].get("source")
        if src is None or used[src] < cap:
            kept.add(i)
            if src is not None:
                used[src] += 1
    return [i for i in passed if i in kept]


# ---------------------------------------------------------------- the Constraints model


def test_constraints_accept_the_documented_fields_from_json() -> None:
    c = Constraints.model_validate_json(
        '{"max_rank_lift": 2, "min_retrieval_score": 0.25, "max_items_per_source": 1}'
    )
    assert (c.max_rank_lift, c.min_retrieval_score, c.max_items_per_source) == (2, 0.25, 1)
    assert not c.is_empty
    assert Constraints().is_empty


@pytest.mark.parametrize(
    "body",
    [
        '{"max_rank_lift": -1}',
        '{"max_rank_lift": true}',
        '{"max_rank_lift": 1.5}',
        '{"max_items_per_source": 0}',
        '{"min_retrieval_score": NaN}',
        '{"min_retrieval_score": "0.5"}',
        '{"max_rank_lfit": 1}',
    ],
)
def test_constraints_reject_invalid_values(body: str) -> None:
    with pytest.raises(ValidationError):
        Constraints.model_validate_json(body)


# ---------------------------------------------------------------- examples

SCORES = [0.9, 0.8, 0.7, 0.6]


def test_retrieval_order_is_by_descending_score_with_ties_in_input_order() -> None:
    cands = [Cand(0.5), Cand(0.9), Cand(0.5), Cand(0.7)]
    assert retrieval_order(cands) == [1, 3, 0, 2]


def test_rank_lift_keeps_items_near_their_retrieval_rank_and_counts_the_policys_lift() -> None:
    cands = [Cand(s) for s in SCORES]
    result = enforce([3, 2, 1, 0], cands, Constraints(max_rank_lift=1))
    assert result.order == (1, 2, 3, 0)
    # The policy lifted item 3 by three places; item 2 by one (allowed); 1 and 0 moved down.
    assert result.violations == {Violation.MAX_RANK_LIFT: 1}


def test_zero_rank_lift_forces_retrieval_order() -> None:
    cands = [Cand(s) for s in SCORES]
    assert enforce([3, 1, 2, 0], cands, Constraints(max_rank_lift=0)).order == (0, 1, 2, 3)


def test_blocked_item_is_removed_and_positions_close_up_for_pinned_items() -> None:
    cands = [Cand(0.9, blocked=True), Cand(0.8), Cand(0.7, pinned=True), Cand(0.6)]
    result = enforce([2, 3, 0, 1], cands)
    # Without the blocked item, the pinned one is second in retrieval order.
    assert result.order == (3, 2, 1)
    assert result.violations == {Violation.BLOCKED: 1, Violation.PINNED: 1}


def test_blocked_wins_over_pinned() -> None:
    cands = [Cand(0.9, blocked=True, pinned=True), Cand(0.8)]
    assert enforce([0, 1], cands).order == (1,)


def test_min_retrieval_score_wins_over_pinned() -> None:
    cands = [Cand(0.9), Cand(0.1, pinned=True), Cand(0.5)]
    result = enforce([1, 2, 0], cands, Constraints(min_retrieval_score=0.2))
    assert result.order == (2, 0)
    assert result.violations == {Violation.MIN_RETRIEVAL_SCORE: 1}


def test_source_cap_keeps_the_best_by_retrieval_and_counts_the_policys_excess() -> None:
    cands = [Cand(0.9, "a"), Cand(0.8, "a"), Cand(0.7, "a"), Cand(0.6, "b")]
    result = enforce([2, 1, 0, 3], cands, Constraints(max_items_per_source=2))
    assert result.order == (1, 0, 3)
    assert result.violations == {Violation.MAX_ITEMS_PER_SOURCE: 1}


def test_pinned_items_claim_their_sources_slots_first() -> None:
    cands = [Cand(0.9, "a"), Cand(0.8, "a", pinned=True), Cand(0.7, "b")]
    result = enforce([0, 1, 2], cands, Constraints(max_items_per_source=1))
    assert result.order == (1, 2)


def test_items_without_a_source_are_not_capped() -> None:
    cands = [Cand(0.9), Cand(0.8), Cand(0.7, "a"), Cand(0.6, "a")]
    result = enforce([0, 1, 2, 3], cands, Constraints(max_items_per_source=1))
    assert result.order == (0, 1, 2)


def test_top_k_truncates_and_a_pinned_item_beyond_it_is_not_returned() -> None:
    cands = [Cand(s) for s in SCORES[:3]] + [Cand(0.6, pinned=True)]
    assert enforce([2, 1, 0, 3], cands, top_k=2).order == (2, 1)
    assert enforce([2, 1, 0, 3], cands, top_k=0).order == ()


def test_no_constraints_and_no_flags_keep_the_policy_ranking() -> None:
    cands = [Cand(s) for s in SCORES]
    assert enforce([2, 0, 3, 1], cands, None, top_k=3) == EnforcedRanking((2, 0, 3))


@pytest.mark.parametrize("ranking", [[0, 1], [0, 1, 1], [0, 1, 3], [2, 1, 0, 0]])
def test_a_policy_ranking_that_is_not_a_permutation_is_a_programming_error(
    ranking: list[int],
) -> None:
    with pytest.raises(ValueError, match="permutation"):
        enforce(ranking, [Cand(0.3), Cand(0.2), Cand(0.1)])


def test_negative_top_k_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="top_k"):
        enforce([0], [Cand(0.1)], top_k=-1)


# ---------------------------------------------------------------- properties

candidate = st.builds(
    Cand,
    retrieval_score=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]),
    source=st.sampled_from([None, "a", "b", "c"]),
    blocked=st.sampled_from([False, False, False, True]),
    pinned=st.sampled_from([False, False, False, True]),
)
constraints = st.builds(
    Constraints,
    max_rank_lift=st.none() | st.integers(0, 4),
    min_retrieval_score=st.none() | st.sampled_from([0.1, 0.3, 0.6]),
    max_items_per_source=st.none() | st.integers(1, 3),
)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[int], list[ConstrainedCandidate], Constraints, int | None]:
    cands = draw(st.lists(candidate, max_size=12))
    ranking = draw(st.permutations(list(range(len(cands)))))
    rules = draw(constraints)
    top_k = draw(st.none() | st.integers(0, len(cands) + 2))
    return list(ranking), cands, rules, top_k


def requested(n: int, top_k: int | None) -> int:
    return n if top_k is None else min(n, top_k)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_output_is_the_allowed_candidates_without_duplicates_up_to_top_k(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    out = enforce(ranking, cands, rules, top_k).order
    allowed = allowed_in_retrieval_order(cands, rules)
    assert len(set(out)) == len(out)
    assert set(out) <= set(allowed)
    assert len(out) == min(requested(len(cands), top_k), len(allowed))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_blocked_and_low_scoring_candidates_are_never_returned(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    out = enforce(ranking, cands, rules, top_k).order
    assert not any(cands[i].get("blocked", False) for i in out)
    if rules.min_retrieval_score is not None:
        assert all(cands[i]["retrieval_score"] >= rules.min_retrieval_score for i in out)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_source_has_more_items_than_its_cap(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    out = enforce(ranking, cands, rules, top_k).order
    if rules.max_items_per_source is not None:
        per_source = Counter(cands[i]["source"] for i in out if cands[i]["source"] is not None)
        assert all(n <= rules.max_items_per_source for n in per_source.values())


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_pinned_candidates_keep_their_retrieval_position(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    out = enforce(ranking, cands, rules, top_k).order
    for position, i in enumerate(allowed_in_retrieval_order(cands, rules)):
        if cands[i].get("pinned", False) and position < len(out):
            assert out[position] == i


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_no_candidate_rises_more_than_max_rank_lift_above_its_retrieval_rank(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    out = enforce(ranking, cands, rules, top_k).order
    if rules.max_rank_lift is not None:
        position = {i: p for p, i in enumerate(allowed_in_retrieval_order(cands, rules))}
        assert all(position[i] - q <= rules.max_rank_lift for q, i in enumerate(out))


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_without_constraints_or_flags_the_policy_ranking_is_unchanged(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, _, top_k = s
    plain = [Cand(c["retrieval_score"], c.get("source")) for c in cands]
    result = enforce(ranking, plain, Constraints(), top_k)
    assert result.order == tuple(ranking[: requested(len(cands), top_k)])
    assert result.total_violations == 0


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_retrieval_order_obeys_every_positional_rule(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    _, cands, rules, top_k = s
    result = enforce(retrieval_order(cands), cands, rules, top_k)
    allowed = allowed_in_retrieval_order(cands, rules)
    assert result.order == tuple(allowed[: len(result.order)])
    assert Violation.PINNED not in result.violations
    assert Violation.MAX_RANK_LIFT not in result.violations


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_policy_ranking_is_served_as_is_exactly_when_it_breaks_no_rule(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    result = enforce(ranking, cands, rules, top_k)
    unchanged = result.order == tuple(ranking[: requested(len(cands), top_k)])
    assert unchanged == (result.total_violations == 0)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_without_rank_lift_the_unpinned_slots_get_the_policys_favourites_in_order(
    s: tuple[list[int], list[ConstrainedCandidate], Constraints, int | None],
) -> None:
    ranking, cands, rules, top_k = s
    rules = rules.model_copy(update={"max_rank_lift": None})
    out = enforce(ranking, cands, rules, top_k).order
    allowed = set(allowed_in_retrieval_order(cands, rules))
    free = [i for i in out if not cands[i].get("pinned", False)]
    policy_free = [i for i in ranking if i in allowed and not cands[i].get("pinned", False)]
    assert free == policy_free[: len(free)]

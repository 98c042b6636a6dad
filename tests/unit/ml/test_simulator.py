import numpy as np
import pytest

from policyhub.adapters.log_table import join_logs
from policyhub.domain.interaction_records import DECISION_FIELDS, FEEDBACK_FIELDS
from policyhub.ml.exploration import action_probabilities, action_probabilities_flat, choose_top
from policyhub.ml.scorers import negated, retrieval_scorer, with_noise
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig


def test_simulated_records_carry_exactly_the_schema_fields() -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=3, item_dim=2, n_candidates=4))
    decisions, feedback = sim.log_records(5, retrieval_scorer, seed=1)
    for d, f in zip(decisions, feedback, strict=True):
        assert set(d) == DECISION_FIELDS
        assert set(f) == FEEDBACK_FIELDS
        assert d["type"] == "decision" and f["type"] == "feedback"
        assert f["decision_id"] == d["decision_id"]
        assert d["at"].endswith("Z") and f["at"].endswith("Z")
        assert len(d["context"]) == 3
        assert [set(c) for c in d["candidates"]] == [{"id", "retrieval_score", "features"}] * 4
        assert all(len(c["features"]) == 2 for c in d["candidates"])
        assert d["ranking"][0] == d["chosen_id"]
        assert sorted(d["ranking"]) == sorted(c["id"] for c in d["candidates"])
        assert d["exploration"] == {"epsilon": 0.1, "temperature": 0.5}
        assert isinstance(f["success"], bool)
        assert f["seed_key"] == d["seed_key"] == d["decision_id"]
        assert (f["variant"], f["policy_version"]) == (d["variant"], d["policy_version"])


def test_logged_top_item_and_propensity_follow_the_serving_rule() -> None:
    sim = BanditSimulator(SimulatorConfig(n_candidates=6))
    decisions, _ = sim.log_records(50, retrieval_scorer, seed=2)
    for d in decisions:
        scores = np.array([c["retrieval_score"] for c in d["candidates"]], dtype=np.float32)
        probs = action_probabilities(scores)
        top = choose_top(probs, d["decision_id"])
        assert d["chosen_id"] == d["candidates"][top]["id"]
        assert d["propensity"] == pytest.approx(probs[top], rel=1e-9)
        rest = [d["candidates"][j]["id"] for j in np.argsort(-scores, kind="stable") if j != top]
        assert d["ranking"][1:] == rest


def test_joined_records_reproduce_the_logging_probabilities() -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=4, item_dim=3, n_candidates=5))
    decisions, feedback = sim.log_records(200, retrieval_scorer, seed=3)
    data, report = join_logs(decisions, feedback, context_dim=4, item_dim=3)
    assert report.joined == 200
    probs = action_probabilities_flat(retrieval_scorer(data.features), data.offsets)
    np.testing.assert_allclose(probs[data.chosen_rows], data.propensity, rtol=1e-9)


def test_requests_are_reproducible_per_seed() -> None:
    sim = BanditSimulator()
    a, b, c = sim.sample_requests(10, 1), sim.sample_requests(10, 1), sim.sample_requests(10, 2)
    assert np.array_equal(a.features(), b.features())
    assert not np.array_equal(a.features(), c.features())


def test_retrieval_score_is_informative_but_not_the_truth() -> None:
    requests = BanditSimulator().sample_requests(5000, 4)
    corr = np.corrcoef(requests.retrieval.ravel(), requests.expected.ravel())[0, 1]
    assert 0.3 < corr < 0.9


def test_true_policy_values_order_worse_policies_below_retrieval() -> None:
    sim = BanditSimulator()
    retrieval = sim.policy_value(retrieval_scorer, n=5000)
    noisy = sim.policy_value(with_noise(retrieval_scorer, 2.0, seed=0), n=5000)
    reverse = sim.policy_value(negated(retrieval_scorer), n=5000)
    assert reverse < noisy < retrieval


def test_policy_value_is_the_exact_expectation_over_the_top_draw() -> None:
    sim = BanditSimulator(SimulatorConfig(n_candidates=3))
    requests = sim.sample_requests(100, 10_000)
    probs = action_probabilities_flat(retrieval_scorer(requests.features()), requests.offsets)
    expected = float((probs.reshape(100, 3) * requests.expected).sum(axis=1).mean())
    assert sim.policy_value(retrieval_scorer, n=100) == pytest.approx(expected)


def test_fast_logs_match_the_logging_policy_on_average() -> None:
    sim = BanditSimulator()
    data = sim.log_dataset(20_000, retrieval_scorer, seed=5)
    probs = action_probabilities_flat(retrieval_scorer(data.features), data.offsets)
    np.testing.assert_allclose(probs[data.chosen_rows], data.propensity)
    assert data.reward.mean() == pytest.approx(sim.policy_value(retrieval_scorer), abs=0.015)

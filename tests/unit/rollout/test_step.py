"""Every branch of `step`: what it decides for each stage and kind of evidence."""

from __future__ import annotations

import math
from typing import Any

import pytest

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.health import HealthReadFailed, VariantHealth
from policyhub.domain.rollout import PipelineConfig, Stage, StepMetrics, Verdict
from policyhub.domain.rollout_judge import DecisionKind, apply, step
from tests.unit.rollout.builders import (
    DEFAULTS,
    REFERENCE,
    T0,
    at,
    healthy_canary_window,
    in_canary,
    in_shadow,
    in_watch,
    shadow_window,
    variant,
    window,
)

STEP = DEFAULTS.step_seconds
DEADLINE = DEFAULTS.max_step_seconds


# ---- shadow -----------------------------------------------------------------------------------

def test_shadow_advances_to_the_first_canary_step_after_its_time_and_decisions() -> None:
    decision = step(in_shadow(), shadow_window(3600), at(3600))
    assert (decision.kind, decision.verdict) == (DecisionKind.ADVANCE, Verdict.HEALTHY)
    assert decision.next_traffic_percent == DEFAULTS.canary_steps[0]


def test_shadow_holds_before_shadow_seconds_even_with_enough_decisions() -> None:
    decision = step(in_shadow(), shadow_window(3599), at(3599))
    assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)
    assert any("minimum shadow time" in r for r in decision.reasons)


def test_shadow_holds_with_fewer_than_shadow_min_decisions() -> None:
    decision = step(in_shadow(), shadow_window(3600, shadow_decisions=499), at(3600))
    assert decision.kind is DecisionKind.HOLD
    assert any("499 of the 500" in r for r in decision.reasons)


def test_shadow_rolls_back_on_a_single_shadow_error() -> None:
    decision = step(in_shadow(), shadow_window(60, shadow_decisions=10, shadow_errors=1), at(60))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)


def test_shadow_rolls_back_on_a_constraint_violation_by_the_candidate() -> None:
    decision = step(in_shadow(), shadow_window(3600, violations=2), at(3600))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)
    assert any("constitutional constraints 2 times" in r for r in decision.reasons)


def test_shadow_holds_when_production_latency_is_missing() -> None:
    health = window(variant(5000, p95=math.nan),
                    variant(0, shadow_decisions=5000), 3600)
    assert step(in_shadow(), health, at(3600)).kind is DecisionKind.HOLD


def test_shadow_still_short_of_decisions_at_the_deadline_rolls_back() -> None:
    decision = step(in_shadow(), shadow_window(DEADLINE, shadow_decisions=10), at(DEADLINE))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.INCONCLUSIVE)
    assert any("max_step_seconds" in r for r in decision.reasons)


# ---- canary steps -----------------------------------------------------------------------------

def test_a_healthy_canary_step_advances_to_the_next_percentage() -> None:
    decision = step(in_canary(5), healthy_canary_window(STEP), at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.ADVANCE, Verdict.HEALTHY)
    assert (decision.traffic_percent, decision.next_traffic_percent) == (5, 10)
    assert {c.metric: c.verdict for c in decision.checks} == {
        "success_rate": Verdict.HEALTHY, "latency_p95_ratio": Verdict.HEALTHY}


def test_a_healthy_canary_step_holds_until_step_seconds_have_passed() -> None:
    decision = step(in_canary(5), healthy_canary_window(STEP - 1), at(STEP - 1))
    assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)


@pytest.mark.parametrize(("baseline_requests", "candidate_requests"), [(50_000, 199),
                                                                        (199, 50_000)])
def test_a_canary_step_holds_with_fewer_than_min_samples_per_variant(
        baseline_requests: int, candidate_requests: int) -> None:
    health = window(variant(baseline_requests), variant(candidate_requests), STEP * 2)
    decision = step(in_canary(5), health, at(STEP * 2))
    assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)
    assert any("of the 200 decisions a step needs" in r for r in decision.reasons)


def test_too_few_samples_hold_even_when_every_outcome_failed() -> None:
    health = window(variant(50_000), variant(150, success_rate=0.0), STEP)
    assert step(in_canary(5), health, at(STEP)).kind is DecisionKind.HOLD


@pytest.mark.parametrize("p95", [math.nan, None, math.inf, -1.0, 0.0])
def test_a_canary_step_holds_when_a_p95_is_missing_or_not_a_number(p95: float | None) -> None:
    for health in (window(variant(50_000, p95=p95), variant(5000), STEP),
                   window(variant(50_000), variant(5000, p95=p95), STEP)):
        decision = step(in_canary(25), health, at(STEP))
        assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)


def test_a_canary_step_holds_without_any_feedback() -> None:
    silent = VariantHealth(requests=5000, latency_p95_ms=90.0, latency_p50_ms=40.0)
    decision = step(in_canary(5), window(variant(50_000), silent, STEP), at(STEP))
    assert decision.kind is DecisionKind.HOLD
    assert any("no decisions with a known outcome" in r for r in decision.reasons)


def test_a_canary_step_holds_when_the_health_read_failed() -> None:
    failed = HealthReadFailed(window_start=T0, window_end=at(STEP), error="throttled")
    decision = step(in_canary(5), failed, at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)
    assert decision.reasons == ("health could not be read: throttled",)


def test_a_failed_health_read_at_the_deadline_rolls_back() -> None:
    failed = HealthReadFailed(window_start=T0, window_end=at(DEADLINE), error="timeout")
    decision = step(in_canary(5), failed, at(DEADLINE))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.INCONCLUSIVE)


def test_an_inconclusive_canary_step_rolls_back_at_max_step_seconds() -> None:
    health = window(variant(50_000), variant(150), DEADLINE)
    assert step(in_canary(10), health, at(DEADLINE - 1)).kind is DecisionKind.HOLD
    decision = step(in_canary(10), health, at(DEADLINE))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.INCONCLUSIVE)


def test_a_clearly_low_success_rate_rolls_back_before_step_seconds() -> None:
    health = window(variant(50_000), variant(400, success_rate=0.85), 300)
    decision = step(in_canary(5), health, at(300))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)
    success = next(c for c in decision.checks if c.metric == "success_rate")
    assert success.verdict is Verdict.UNHEALTHY
    assert success.upper is not None and success.upper < DEFAULTS.min_success_rate


def test_serving_errors_count_as_failed_outcomes_of_the_candidate() -> None:
    health = window(variant(50_000), variant(1000, success_rate=1.0, errors=150), STEP)
    decision = step(in_canary(5), health, at(STEP))
    assert decision.kind is DecisionKind.ROLLBACK
    assert decision.candidate is not None and decision.candidate.success_rate == 0.85


def test_a_slightly_low_success_rate_on_few_samples_is_not_enough_to_roll_back() -> None:
    health = window(variant(50_000), variant(300, success_rate=0.93), STEP)
    decision = step(in_canary(5), health, at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.HOLD, Verdict.INCONCLUSIVE)


def test_a_clearly_higher_p95_rolls_back() -> None:
    health = window(variant(50_000, p95=90.0), variant(3000, p95=140.0, p50=62.0), STEP)
    decision = step(in_canary(10), health, at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)
    latency = next(c for c in decision.checks if c.metric == "latency_p95_ratio")
    assert latency.verdict is Verdict.UNHEALTHY
    assert latency.lower is not None and latency.lower > 1.2


def test_a_p95_above_the_limit_on_few_samples_holds_rather_than_rolls_back() -> None:
    health = window(variant(50_000), variant(250, p95=115.0, p50=50.0), STEP)
    assert step(in_canary(5), health, at(STEP)).kind is DecisionKind.HOLD


def test_a_candidate_constraint_violation_in_a_canary_step_rolls_back() -> None:
    health = window(variant(50_000), variant(5000, violations=1), STEP)
    assert step(in_canary(50), health, at(STEP)).verdict is Verdict.UNHEALTHY


def test_a_window_starting_before_the_step_is_not_trusted() -> None:
    health = window(variant(50_000), variant(5000), STEP, start=at(-60))
    decision = step(in_canary(10), health, at(STEP))
    assert decision.kind is DecisionKind.HOLD
    assert any("mix steps" in r for r in decision.reasons)


def test_numpy_integer_counts_from_a_reader_are_taken() -> None:
    import numpy as np

    fields: dict[str, Any] = {"requests": np.int64(5000), "feedback_successes": np.int64(4850),
                              "feedback_failures": np.int64(150), "latency_p95_ms": 90.0,
                              "latency_p50_ms": 40.0}
    counts = VariantHealth(**fields)
    decision = step(in_canary(5), window(variant(50_000), counts, STEP), at(STEP))
    assert decision.kind is DecisionKind.ADVANCE


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_a_count_that_is_not_a_count_is_inconclusive(bad: object) -> None:
    fields: dict[str, Any] = {"requests": 5000, "feedback_successes": bad}
    broken = VariantHealth(**fields)
    decision = step(in_canary(10), window(variant(50_000), broken, STEP), at(STEP))
    assert decision.kind is DecisionKind.HOLD
    assert any("not a count" in r for r in decision.reasons)


def test_contradictory_counts_are_inconclusive() -> None:
    broken = VariantHealth(requests=100, errors=101)
    decision = step(in_canary(10), window(variant(50_000), broken, STEP), at(STEP))
    assert decision.kind is DecisionKind.HOLD
    assert any("exceed requests" in r for r in decision.reasons)


# ---- 100 % and the post-promotion watch ---------------------------------------------------------

def test_the_last_step_promotes_when_healthy_against_the_earlier_baseline() -> None:
    health = window(None, variant(5000), STEP)
    decision = step(in_canary(100), health, at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.PROMOTE, Verdict.HEALTHY)
    assert decision.baseline == REFERENCE


def test_at_100_percent_latency_is_judged_against_the_earlier_baseline_numbers() -> None:
    fast_reference = REFERENCE.model_copy(update={"latency_p95_ms": 60.0,
                                                  "latency_p50_ms": 27.0})
    health = window(variant(50_000), variant(20_000), STEP)  # a stray live baseline is ignored
    decision = step(in_canary(100, reference=fast_reference), health, at(STEP))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)


def test_at_100_percent_without_baseline_numbers_the_step_cannot_pass() -> None:
    decision = step(in_canary(100, reference=None), window(None, variant(5000), STEP), at(STEP))
    assert decision.kind is DecisionKind.HOLD
    assert any("no baseline reference" in r for r in decision.reasons)


def test_the_watch_completes_when_it_ends_healthy() -> None:
    end = DEFAULTS.post_promotion_seconds
    decision = step(in_watch(), window(None, variant(30_000), end), at(end))
    assert (decision.kind, decision.verdict) == (DecisionKind.COMPLETE, Verdict.HEALTHY)
    assert decision.stage is Stage.POST_PROMOTION


def test_the_watch_holds_until_post_promotion_seconds_have_passed() -> None:
    end = DEFAULTS.post_promotion_seconds
    assert step(in_watch(), window(None, variant(30_000), end - 1), at(end - 1)).kind is (
        DecisionKind.HOLD)


def test_a_degradation_during_the_watch_rolls_back() -> None:
    health = window(None, variant(8000, success_rate=0.90), 600)
    decision = step(in_watch(), health, at(600))
    assert (decision.kind, decision.verdict) == (DecisionKind.ROLLBACK, Verdict.UNHEALTHY)
    rolled = apply(in_watch(), decision, at(600))
    assert rolled.outcome_reason is not None
    assert "post-promotion watch" in rolled.outcome_reason


def test_a_latency_degradation_during_the_watch_rolls_back() -> None:
    health = window(None, variant(8000, p95=150.0, p50=66.0), 600)
    assert step(in_watch(), health, at(600)).kind is DecisionKind.ROLLBACK


# ---- guards -----------------------------------------------------------------------------------

def test_step_refuses_an_ended_rollout() -> None:
    rolled = apply(in_canary(5), step(in_canary(5), window(variant(50_000),
                   variant(400, success_rate=0.5), 60), at(60)), at(60))
    with pytest.raises(PolicyHubError) as caught:
        step(rolled, healthy_canary_window(STEP), at(STEP))
    assert caught.value.code == "conflict"


def test_step_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        step(in_canary(5), healthy_canary_window(STEP), at(STEP).replace(tzinfo=None))


def test_a_custom_threshold_changes_the_success_verdict() -> None:
    lenient = PipelineConfig(min_success_rate=0.80)
    health = window(variant(50_000), variant(5000, success_rate=0.88), STEP)
    assert step(in_canary(5), health, at(STEP)).kind is DecisionKind.ROLLBACK
    assert step(in_canary(5, config=lenient), health, at(STEP)).kind is DecisionKind.ADVANCE


def test_decision_evidence_is_plain_json() -> None:
    evidence = step(in_canary(5), healthy_canary_window(STEP), at(STEP)).evidence()
    assert evidence["kind"] == "advance"
    assert isinstance(evidence["checks"][0]["lower"], float)
    assert evidence["decided_at"].endswith("Z")


def test_step_metrics_never_hold_nan() -> None:
    decision = step(in_canary(5), window(variant(50_000, p95=math.nan), variant(5000), STEP),
                    at(STEP))
    assert decision.baseline == StepMetrics(requests=50_000, success_rate=0.97,
                                            latency_p95_ms=None, latency_p50_ms=40.0,
                                            outcomes=50_000)

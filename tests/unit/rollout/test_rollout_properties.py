"""Rules that hold for any evidence: hypothesis drives `step` and `apply` with arbitrary health."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.health import Health, HealthReadFailed, HealthWindow, VariantHealth
from policyhub.domain.rollout import Rollout, RolloutState, Stage
from policyhub.domain.rollout_judge import DecisionKind, apply, step
from policyhub.domain.state_changes import abort_rollout
from tests.unit.rollout.builders import DEFAULTS, at, in_canary, in_shadow, in_watch

MOVING_ON = {DecisionKind.ADVANCE, DecisionKind.PROMOTE, DecisionKind.COMPLETE}
MIN = DEFAULTS.min_samples_per_step

counts = st.integers(0, 100_000)
latencies = st.floats(1.0, 5_000.0)
not_numbers = st.sampled_from([math.nan, None, math.inf, -math.inf, -1.0, 0.0])


@st.composite
def variants(draw: st.DrawFn, requests: st.SearchStrategy[int] = counts,
             p95: st.SearchStrategy[float | None] = latencies) -> VariantHealth:
    n = draw(requests)
    answered = draw(st.integers(0, n))
    successes = draw(st.integers(0, answered))
    return VariantHealth(requests=n, errors=draw(st.integers(0, min(n, 50))),
                         feedback_successes=successes, feedback_failures=answered - successes,
                         latency_p95_ms=draw(p95), latency_p50_ms=draw(st.none() | latencies),
                         shadow_decisions=draw(counts))


def rollouts_in_any_stage() -> st.SearchStrategy[Rollout]:
    return st.one_of(st.just(in_shadow()), st.sampled_from(DEFAULTS.canary_steps).map(in_canary),
                     st.just(in_watch()))


elapsed_seconds = st.integers(0, 2 * DEFAULTS.max_step_seconds)


@given(rollout=rollouts_in_any_stage(), seconds=elapsed_seconds, data=st.data())
def test_missing_or_nan_latency_never_lets_a_rollout_move_on(rollout: Rollout, seconds: int,
                                                             data: st.DataObject) -> None:
    stage = rollout.current_step.stage
    full_traffic = stage is Stage.POST_PROMOTION or rollout.traffic_percent == 100
    bad_candidate = stage is not Stage.SHADOW and (full_traffic or data.draw(st.booleans()))
    candidate = data.draw(variants(p95=not_numbers if bad_candidate else latencies))
    baseline = data.draw(variants(p95=latencies if bad_candidate else not_numbers))
    health = HealthWindow(at(0), at(seconds), baseline, candidate)
    assert step(rollout, health, at(seconds)).kind not in MOVING_ON


@given(rollout=rollouts_in_any_stage(), seconds=elapsed_seconds,
       error=st.text(min_size=1, max_size=20))
def test_a_failed_health_read_never_lets_a_rollout_move_on(rollout: Rollout, seconds: int,
                                                           error: str) -> None:
    decision = step(rollout, HealthReadFailed(at(0), at(seconds), error), at(seconds))
    assert decision.kind is (DecisionKind.ROLLBACK if seconds >= DEFAULTS.max_step_seconds
                             else DecisionKind.HOLD)


@given(percent=st.sampled_from(DEFAULTS.canary_steps[:-1]), seconds=elapsed_seconds,
       short_candidate=st.booleans(), data=st.data())
def test_a_canary_step_never_advances_with_fewer_than_min_samples_per_variant(
        percent: int, seconds: int, short_candidate: bool, data: st.DataObject) -> None:
    few, any_count = st.integers(0, MIN - 1), counts
    candidate = data.draw(variants(requests=few if short_candidate else any_count))
    baseline = data.draw(variants(requests=any_count if short_candidate else few))
    health = HealthWindow(at(0), at(seconds), baseline, candidate)
    assert step(in_canary(percent), health, at(seconds)).kind not in MOVING_ON


@given(rollout=st.one_of(st.just(in_canary(100)), st.just(in_watch())),
       seconds=elapsed_seconds, data=st.data())
def test_at_full_traffic_the_candidate_alone_needs_min_samples(rollout: Rollout, seconds: int,
                                                                data: st.DataObject) -> None:
    candidate = data.draw(variants(requests=st.integers(0, MIN - 1)))
    health = HealthWindow(at(0), at(seconds), None, candidate)
    assert step(rollout, health, at(seconds)).kind not in MOVING_ON


@st.composite
def health_at(draw: st.DrawFn, rollout: Rollout, seconds: float) -> Health:
    start, end = rollout.step_started_at, rollout.step_started_at + timedelta(seconds=seconds)
    if draw(st.integers(0, 9)) == 0:
        return HealthReadFailed(start, end, "unavailable")
    stage = rollout.current_step.stage
    scale = draw(st.sampled_from([0.01, 1.0, 100.0]))
    n_total = int(seconds * scale)
    share = 0.0 if stage is Stage.SHADOW else rollout.traffic_percent / 100.0
    rate = draw(st.sampled_from([0.5, 0.9, 0.97, 1.0]))
    slow = draw(st.sampled_from([1.0, 1.1, 2.0]))
    p95 = draw(st.sampled_from([90.0, math.nan]))

    def make(n: int, success: float, latency: float | None, shadow: int = 0) -> VariantHealth:
        return VariantHealth(requests=n, feedback_successes=round(n * success),
                             feedback_failures=n - round(n * success), latency_p95_ms=latency,
                             latency_p50_ms=40.0, shadow_decisions=shadow)

    n_candidate = round(n_total * share)
    baseline = None if share == 1.0 else make(n_total - n_candidate, 0.97, 90.0)
    shadow = n_total if stage is Stage.SHADOW else 0
    candidate = make(n_candidate, rate, None if math.isnan(p95) else p95 * slow, shadow)
    return HealthWindow(start, end, baseline, candidate)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_apply_keeps_revisions_rising_traffic_on_configured_steps_and_endings_final(
        data: st.DataObject) -> None:
    rollout = in_shadow()
    allowed_traffic = {0, *DEFAULTS.canary_steps}
    for _ in range(40):
        seconds = data.draw(st.sampled_from([60.0, 900.0, 3600.0, 7200.0]))
        now = rollout.step_started_at + timedelta(seconds=seconds)
        decision = step(rollout, data.draw(health_at(rollout, seconds)), now)
        following = apply(rollout, decision, now)
        held = decision.kind is DecisionKind.HOLD  # an observation, not a change of state
        assert following.revision == rollout.revision + (0 if held else 1)
        assert following.traffic_percent in allowed_traffic
        assert following.traffic_percent == decision.next_traffic_percent
        assert following.step_index >= rollout.step_index
        if following.state is RolloutState.CANARY and rollout.state is RolloutState.CANARY:
            assert following.traffic_percent >= rollout.traffic_percent
        rollout = following
        if rollout.is_terminal:
            break
    if rollout.is_terminal:
        later = rollout.step_started_at + timedelta(seconds=DEFAULTS.max_step_seconds * 2)
        for attempt in (lambda: step(rollout, HealthReadFailed(later, later, "x"), later),
                        lambda: apply(rollout, decision, later),
                        lambda: abort_rollout(rollout, "late", later)):
            with pytest.raises(PolicyHubError):
                attempt()
        assert rollout.ended_at is not None and rollout.outcome_reason

"""`apply`: the rollout record after each kind of decision."""

from __future__ import annotations

import math

import pytest

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.rollout import RolloutState, Stage, Verdict
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


def test_advancing_closes_the_step_with_its_numbers_and_opens_the_next() -> None:
    rollout = in_canary(5)
    decision = step(rollout, healthy_canary_window(STEP), at(STEP))
    after = apply(rollout, decision, at(STEP))
    closed, opened = after.steps[-2], after.steps[-1]
    assert (closed.verdict, closed.ended_at, closed.traffic_percent) == (
        Verdict.HEALTHY, at(STEP), 5)
    assert closed.candidate == decision.candidate and closed.baseline == decision.baseline
    assert closed.reasons == decision.reasons
    assert (opened.stage, opened.traffic_percent, opened.started_at, opened.verdict) == (
        Stage.CANARY, 10, at(STEP), None)
    assert (after.state, after.traffic_percent, after.step_index) == (RolloutState.CANARY, 10, 1)
    assert after.revision == rollout.revision + 1
    assert after.baseline_reference == decision.baseline


def test_leaving_shadow_opens_the_first_canary_step_and_keeps_production_numbers() -> None:
    rollout = in_shadow()
    after = apply(rollout, step(rollout, shadow_window(3600), at(3600)), at(3600))
    assert (after.state, after.traffic_percent) == (RolloutState.CANARY, 5)
    assert after.steps[0].stage is Stage.SHADOW and after.steps[0].verdict is Verdict.HEALTHY
    assert after.baseline_reference is not None
    assert after.baseline_reference.latency_p95_ms == 90.0


def test_holding_records_the_latest_numbers_but_leaves_the_step_open() -> None:
    rollout = in_canary(25)
    decision = step(rollout, window(variant(50_000), variant(120), 60), at(60))
    after = apply(rollout, decision, at(60))
    assert decision.kind is DecisionKind.HOLD
    assert len(after.steps) == 1
    assert after.current_step.verdict is None and after.current_step.ended_at is None
    assert after.current_step.candidate is not None
    assert after.current_step.candidate.requests == 120
    assert (after.state, after.traffic_percent, after.revision) == (
        RolloutState.CANARY, 25, rollout.revision), "a hold is no change of state"


def test_promoting_moves_to_the_post_promotion_watch() -> None:
    rollout = in_canary(100)
    decision = step(rollout, window(None, variant(5000), STEP), at(STEP))
    after = apply(rollout, decision, at(STEP))
    assert after.state is RolloutState.PROMOTED
    assert (after.promoted_at, after.watching, after.ended_at) == (at(STEP), True, None)
    assert after.watch_until == at(STEP + DEFAULTS.post_promotion_seconds)
    assert after.current_step.stage is Stage.POST_PROMOTION
    assert after.traffic_percent == 100
    assert after.baseline_reference == REFERENCE
    assert not after.is_terminal


def test_completing_ends_the_watch_and_the_rollout() -> None:
    rollout = in_watch()
    end = DEFAULTS.post_promotion_seconds
    after = apply(rollout, step(rollout, window(None, variant(30_000), end), at(end)), at(end))
    assert (after.state, after.watching, after.ended_at) == (RolloutState.PROMOTED, False, at(end))
    assert after.current_step.verdict is Verdict.HEALTHY
    assert after.is_terminal


def test_rolling_back_stops_candidate_traffic_and_says_why() -> None:
    rollout = in_canary(10)
    decision = step(rollout, window(variant(50_000), variant(2000, success_rate=0.80), 300),
                    at(300))
    after = apply(rollout, decision, at(300))
    assert (after.state, after.traffic_percent, after.ended_at) == (
        RolloutState.ROLLED_BACK, 0, at(300))
    assert after.current_step.verdict is Verdict.UNHEALTHY
    assert after.outcome_reason is not None
    assert after.outcome_reason.startswith("rolled back: unhealthy in the 10 % canary step")
    assert after.is_terminal


def test_a_decision_about_an_older_revision_is_refused() -> None:
    rollout = in_canary(5)
    decision = step(rollout, healthy_canary_window(STEP), at(STEP))
    assert decision.kind is DecisionKind.ADVANCE
    moved_on = apply(rollout, decision, at(STEP))
    with pytest.raises(PolicyHubError) as caught:
        apply(moved_on, decision, at(STEP + 1))
    assert caught.value.code == "concurrent_change"


def test_a_decision_about_another_step_is_refused() -> None:
    decision = step(in_canary(5), healthy_canary_window(STEP), at(STEP))
    with pytest.raises(PolicyHubError) as caught:
        apply(in_canary(10), decision, at(STEP))
    assert caught.value.code == "concurrent_change"


def test_a_whole_healthy_rollout_walks_every_configured_step() -> None:
    rollout, now = in_shadow(), 3600.0
    rollout = apply(rollout, step(rollout, shadow_window(now), at(now)), at(now))
    seen = [rollout.traffic_percent]
    while not rollout.watching:
        start = (rollout.step_started_at - T0).total_seconds()
        now = start + STEP
        live = None if rollout.traffic_percent == 100 else variant(50_000)
        health = window(live, variant(5000), now, start=rollout.step_started_at)
        rollout = apply(rollout, step(rollout, health, at(now)), at(now))
        seen.append(rollout.traffic_percent)
    assert seen == [*DEFAULTS.canary_steps, 100]
    assert [s.stage for s in rollout.steps] == [Stage.SHADOW] + [Stage.CANARY] * 5 + [
        Stage.POST_PROMOTION]
    assert rollout.revision == 1 + 6


def test_the_reference_at_100_percent_pools_every_healthy_live_canary_step() -> None:
    rollout, now = in_shadow(), 3600.0
    rollout = apply(rollout, step(rollout, shadow_window(now), at(now)), at(now))
    p95s = {5: 80.0, 10: 90.0, 25: 100.0, 50: 110.0}
    while rollout.traffic_percent < 100:
        start = (rollout.step_started_at - T0).total_seconds()
        now = start + STEP
        live = variant(10_000 * (rollout.traffic_percent // 5), p95=p95s[rollout.traffic_percent])
        health = window(live, variant(5000), now, start=rollout.step_started_at)
        rollout = apply(rollout, step(rollout, health, at(now)), at(now))
    reference = rollout.baseline_reference
    assert reference is not None
    weights = {p: 10_000 * (p // 5) for p in p95s}
    assert reference.requests == sum(weights.values())  # shadow's production is left out
    expected = math.exp(sum(w * math.log(p95s[p]) for p, w in weights.items())
                        / sum(weights.values()))
    assert reference.latency_p95_ms == pytest.approx(expected)


def test_every_look_records_time_samples_and_information_against_what_the_step_needs() -> None:
    rollout = in_canary(5)
    decision = step(rollout, window(variant(50_000), variant(150), 300), at(300))
    held = apply(rollout, decision, at(300)).current_step
    progress = held.progress
    assert progress is not None and held.verdict is None
    assert (progress.elapsed_seconds, progress.minimum_seconds) == (300, DEFAULTS.step_seconds)
    assert progress.deadline_at == at(DEFAULTS.max_step_seconds)
    assert progress.samples_needed == DEFAULTS.min_samples_per_step
    assert progress.information == {}  # no checks below min_samples_per_step
    decision = step(rollout, window(variant(50_000), variant(400), 600), at(600))
    progress = apply(rollout, decision, at(600)).current_step.progress
    assert progress is not None
    assert set(progress.information) == {"success_rate", "latency_p95_ratio"}
    assert all(0.0 < share < 1.0 for share in progress.information.values())

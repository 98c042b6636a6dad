"""Rollouts at a chosen stage and health windows with chosen numbers, for the rollout tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from policyhub.domain.health import HealthWindow, VariantHealth
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutState,
    RolloutStep,
    RolloutStrategy,
    Stage,
    StepMetrics,
)
from policyhub.domain.state_changes import start_rollout

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEFAULTS = PipelineConfig()
REFERENCE = StepMetrics(requests=20_000, success_rate=0.97, latency_p95_ms=90.0,
                        latency_p50_ms=40.0, outcomes=20_000)
"""Production's numbers from an earlier step: the yardstick at 100 % and in the watch."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_rollout(strategy: RolloutStrategy = RolloutStrategy.SAFE,
                config: PipelineConfig = DEFAULTS) -> Rollout:
    return start_rollout(rollout_id="r-1", tenant_id="acme", agent_type="memory_manager",
                         candidate_version="v1.0.2", baseline_version="v1.0.1",
                         strategy=strategy, config=config, now=T0)


def in_shadow(config: PipelineConfig = DEFAULTS) -> Rollout:
    return new_rollout(RolloutStrategy.SAFE, config)


def in_canary(percent: int, config: PipelineConfig = DEFAULTS,
              reference: StepMetrics | None = REFERENCE) -> Rollout:
    """The rollout while the `percent` step is open since T0."""
    step = RolloutStep(stage=Stage.CANARY, traffic_percent=percent, started_at=T0)
    return new_rollout(RolloutStrategy.CANARY, config).model_copy(update={
        "steps": (step,), "traffic_percent": percent, "baseline_reference": reference})


def in_watch(config: PipelineConfig = DEFAULTS,
             reference: StepMetrics | None = REFERENCE) -> Rollout:
    """Promoted at T0; the post-promotion watch runs."""
    step = RolloutStep(stage=Stage.POST_PROMOTION, traffic_percent=100, started_at=T0)
    return new_rollout(RolloutStrategy.CANARY, config).model_copy(update={
        "steps": (step,), "traffic_percent": 100, "state": RolloutState.PROMOTED,
        "promoted_at": T0, "watching": True,
        "watch_until": T0 + timedelta(seconds=config.post_promotion_seconds),
        "baseline_reference": reference})


def variant(requests: int, success_rate: float = 0.97, p95: float | None = 90.0,
            p50: float | None = 40.0, *, errors: int = 0, violations: int = 0,
            shadow_decisions: int = 0, shadow_errors: int = 0) -> VariantHealth:
    """Every decision but the errors got feedback; `success_rate` of them succeeded."""
    answered = requests - errors
    successes = round(success_rate * answered)
    return VariantHealth(requests=requests, errors=errors, feedback_successes=successes,
                         feedback_failures=answered - successes, latency_p95_ms=p95,
                         latency_p50_ms=p50, constraint_violations=violations,
                         shadow_decisions=shadow_decisions, shadow_errors=shadow_errors)


def window(baseline: VariantHealth | None, candidate: VariantHealth | None,
           seconds: float, start: datetime = T0) -> HealthWindow:
    return HealthWindow(window_start=start, window_end=at(seconds), baseline=baseline,
                        candidate=candidate)


def healthy_canary_window(seconds: float, candidate_requests: int = 5_000) -> HealthWindow:
    """Plenty of traffic, candidate equal to production: conclusively healthy."""
    return window(variant(50_000), variant(candidate_requests), seconds)


def shadow_window(seconds: float, shadow_decisions: int = 5_000, *, shadow_errors: int = 0,
                  violations: int = 0) -> HealthWindow:
    return window(variant(shadow_decisions),
                  variant(0, p95=None, p50=None, shadow_decisions=shadow_decisions,
                          shadow_errors=shadow_errors, violations=violations), seconds)

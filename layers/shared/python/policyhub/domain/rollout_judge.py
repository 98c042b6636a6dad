"""The rollout workflow's brain: `step` judges the current step, `apply` records the outcome.

Both are pure. The workflow (Step Functions in AWS, a loop locally) reads the rollout and the
health of the current step's window, calls `step`, stores `apply`'s result with a conditional
write on `revision`, performs the side effects the decision asks for (traffic percent,
production pointer, audit) and waits before the next look.

Rules (decisions 030-034):
- shadow: healthy once the candidate scored at least `shadow_min_decisions` decisions with no
  shadow error and no constraint violation, and production's numbers are there; any shadow
  error or violation is unhealthy at once.
- canary step below 100 %: both variants need `min_samples_per_step` decisions; then the
  success rate and p95-latency checks of `canary_statistics` decide.
- 100 % and the post-promotion watch: the same checks against `rollout.baseline_reference`,
  the baseline's numbers pooled over the live canary steps that concluded healthy.
- each check concludes once it has its planned information (decision 098), so a step ends
  after bounded traffic: unhealthy rolls back at once; healthy moves on once the stage's
  minimum time has passed; anything else holds, and rolls back when the step reaches
  `max_step_seconds` (traffic too thin for the planned information).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from policyhub.domain.canary_statistics import (
    CheckResult,
    LatencyEvidence,
    latency_ratio_check,
    rollback_alpha,
    success_rate_check,
)
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.health import Health, HealthReadFailed, HealthWindow, VariantHealth
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutStep,
    Stage,
    StepMetrics,
    StepProgress,
    Verdict,
    require_active,
    require_aware,
)
from policyhub.domain.state_changes import (
    advance_rollout,
    complete_rollout,
    hold_rollout,
    roll_back_rollout,
)


class DecisionKind(StrEnum):
    ADVANCE = "advance"
    """To the next canary step (from shadow: to the first)."""
    HOLD = "hold"
    PROMOTE = "promote"
    """The last step passed: production moves to the candidate; the watch starts."""
    COMPLETE = "complete"
    """The post-promotion watch ended healthy."""
    ROLLBACK = "rollback"


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DecisionKind
    verdict: Verdict
    stage: Stage
    traffic_percent: int
    """The traffic share of the step that was judged."""
    next_traffic_percent: int
    """The candidate's share once the decision is applied."""
    rollout_revision: int
    """The revision judged; `apply` refuses a decision about another revision."""
    decided_at: datetime
    baseline: StepMetrics | None
    candidate: StepMetrics | None
    checks: tuple[CheckResult, ...]
    reasons: tuple[str, ...]
    progress: StepProgress | None = None

    def evidence(self) -> dict[str, Any]:
        """Plain-JSON form for audit events."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class _Judgement:
    verdict: Verdict
    baseline: StepMetrics | None = None
    candidate: StepMetrics | None = None
    checks: tuple[CheckResult, ...] = ()
    reasons: tuple[str, ...] = ()


def step(rollout: Rollout, health: Health, now: datetime) -> Decision:
    """Judge the rollout's current step from the health of its window at `now`."""
    require_active(rollout)
    require_aware(now)
    config = rollout.config
    current = rollout.current_step
    judgement = _judge(rollout, health)
    elapsed = (now - current.started_at).total_seconds()
    minimum = config.minimum_seconds(current.stage)
    reasons = list(judgement.reasons)
    verdict = judgement.verdict
    if verdict is Verdict.HEALTHY and elapsed < minimum:
        verdict = Verdict.INCONCLUSIVE
        reasons.append(
            f"minimum {current.stage.value} time not yet elapsed ({elapsed:.0f} of {minimum} s)"
        )
    if verdict is Verdict.UNHEALTHY:
        kind = DecisionKind.ROLLBACK
    elif verdict is Verdict.INCONCLUSIVE:
        if elapsed >= config.max_step_seconds:
            kind = DecisionKind.ROLLBACK
            reasons.append(
                f"still inconclusive after max_step_seconds ({config.max_step_seconds} s)"
            )
        else:
            kind = DecisionKind.HOLD
    else:
        kind = _move_on(rollout)
    progress = StepProgress(
        looked_at=now,
        elapsed_seconds=max(0, int(elapsed)),
        minimum_seconds=minimum,
        deadline_at=rollout.step_deadline,
        samples_needed=(
            config.shadow_min_decisions
            if current.stage is Stage.SHADOW
            else config.min_samples_per_step
        ),
        information={
            c.metric: round(c.information, 4)
            for c in judgement.checks
            if c.information is not None
        },
    )
    return Decision(
        kind=kind,
        verdict=verdict,
        stage=current.stage,
        traffic_percent=current.traffic_percent,
        next_traffic_percent=_next_traffic(rollout, kind),
        rollout_revision=rollout.revision,
        decided_at=now,
        baseline=judgement.baseline,
        candidate=judgement.candidate,
        checks=judgement.checks,
        reasons=tuple(reasons),
        progress=progress,
    )


def _move_on(rollout: Rollout) -> DecisionKind:
    stage = rollout.current_step.stage
    if stage is Stage.SHADOW:
        return DecisionKind.ADVANCE
    if stage is Stage.POST_PROMOTION:
        return DecisionKind.COMPLETE
    index = rollout.canary_index
    assert index is not None
    return (
        DecisionKind.PROMOTE
        if index == len(rollout.config.canary_steps) - 1
        else DecisionKind.ADVANCE
    )


def _next_traffic(rollout: Rollout, kind: DecisionKind) -> int:
    current = rollout.current_step
    if kind is DecisionKind.ROLLBACK:
        return 0
    if kind is DecisionKind.ADVANCE:
        index = rollout.canary_index
        return rollout.config.canary_steps[0 if index is None else index + 1]
    if kind in (DecisionKind.PROMOTE, DecisionKind.COMPLETE):
        return 100
    return current.traffic_percent


# ---- judging --------------------------------------------------------------------------------


def _judge(rollout: Rollout, health: Health) -> _Judgement:
    current = rollout.current_step
    if isinstance(health, HealthReadFailed):
        return _Judgement(
            verdict=Verdict.INCONCLUSIVE, reasons=(f"health could not be read: {health.error}",)
        )
    if health.window_start < current.started_at:
        return _Judgement(
            verdict=Verdict.INCONCLUSIVE,
            reasons=("health window starts before the step did; its numbers would mix steps",),
        )
    for label, variant in (("baseline", health.baseline), ("candidate", health.candidate)):
        problems = variant.problems() if variant is not None else []
        if problems:
            return _Judgement(
                verdict=Verdict.INCONCLUSIVE, reasons=tuple(f"{label} {p}" for p in problems)
            )
    if current.stage is Stage.SHADOW:
        return _judge_shadow(rollout.config, health)
    if current.stage is Stage.CANARY and current.traffic_percent < 100:
        baseline = health.baseline
        return _judge_canary(
            rollout.config,
            health.candidate,
            None if baseline is None else _metrics(baseline),
            live_baseline=True,
        )
    return _judge_canary(
        rollout.config, health.candidate, rollout.baseline_reference, live_baseline=False
    )


def _metrics(variant: VariantHealth) -> StepMetrics:
    return StepMetrics(
        requests=variant.requests,
        success_rate=variant.success_rate,
        latency_p95_ms=variant.usable_p95(),
        latency_p50_ms=variant.usable_p50(),
        latency_p93_ms=variant.usable_p93(),
        latency_p97_ms=variant.usable_p97(),
        outcomes=variant.outcomes,
    )


def _hard_failures(candidate: VariantHealth) -> list[str]:
    """Facts that need no statistics: one is enough."""
    found = []
    if candidate.shadow_errors:
        found.append(
            f"candidate failed on {candidate.shadow_errors} of "
            f"{candidate.shadow_decisions} shadow decisions"
        )
    if candidate.constraint_violations:
        found.append(
            f"candidate broke constitutional constraints {candidate.constraint_violations} times"
        )
    return found


def _judge_shadow(config: PipelineConfig, health: HealthWindow) -> _Judgement:
    candidate, baseline = health.candidate, health.baseline
    if candidate is None:
        return _Judgement(verdict=Verdict.INCONCLUSIVE, reasons=("no shadow numbers",))
    measured = _metrics(candidate)
    production = None if baseline is None else _metrics(baseline)
    failures = _hard_failures(candidate)
    if failures:
        return _Judgement(
            verdict=Verdict.UNHEALTHY,
            baseline=production,
            candidate=measured,
            reasons=tuple(failures),
        )
    reasons = []
    if candidate.shadow_decisions < config.shadow_min_decisions:
        reasons.append(
            f"candidate scored {candidate.shadow_decisions} of the "
            f"{config.shadow_min_decisions} shadow decisions needed"
        )
    if baseline is None or baseline.requests == 0 or baseline.usable_p95() is None:
        reasons.append(
            "production's numbers (requests, p95 latency) are missing; they are "
            "the yardstick of the later steps"
        )
    if reasons:
        return _Judgement(
            verdict=Verdict.INCONCLUSIVE,
            baseline=production,
            candidate=measured,
            reasons=tuple(reasons),
        )
    return _Judgement(
        verdict=Verdict.HEALTHY,
        baseline=production,
        candidate=measured,
        reasons=(
            f"{candidate.shadow_decisions} shadow decisions without errors "
            "or constraint violations",
        ),
    )


def _judge_canary(
    config: PipelineConfig,
    candidate: VariantHealth | None,
    baseline: StepMetrics | None,
    *,
    live_baseline: bool,
) -> _Judgement:
    """Success rate and p95 latency of the candidate; `baseline` is the same window's
    production (`live_baseline`) or the reference numbers of an earlier step."""
    source = "baseline" if live_baseline else "baseline reference (from an earlier step)"
    if candidate is None:
        return _Judgement(
            verdict=Verdict.INCONCLUSIVE,
            baseline=baseline,
            reasons=("no numbers for the candidate",),
        )
    measured = _metrics(candidate)
    failures = _hard_failures(candidate)
    if failures:
        return _Judgement(
            verdict=Verdict.UNHEALTHY,
            baseline=baseline,
            candidate=measured,
            reasons=tuple(failures),
        )
    need = config.min_samples_per_step
    gaps = []
    if candidate.requests < need:
        gaps.append(f"candidate has {candidate.requests} of the {need} decisions a step needs")
    if baseline is None:
        gaps.append(f"no {source} numbers")
    elif live_baseline and baseline.requests < need:
        gaps.append(f"baseline has {baseline.requests} of the {need} decisions a step needs")
    if gaps:
        return _Judgement(
            verdict=Verdict.INCONCLUSIVE, baseline=baseline, candidate=measured, reasons=tuple(gaps)
        )
    assert baseline is not None
    alpha = rollback_alpha(config)
    checks = (
        success_rate_check(
            candidate.feedback_successes,
            candidate.outcomes,
            config.min_success_rate,
            rollback_alpha=alpha,
        ),
        _latency_check(config, measured, baseline, source, alpha, live_baseline),
    )
    verdicts = {c.verdict for c in checks}
    if Verdict.UNHEALTHY in verdicts:
        verdict = Verdict.UNHEALTHY
    elif verdicts == {Verdict.HEALTHY}:
        verdict = Verdict.HEALTHY
    else:
        verdict = Verdict.INCONCLUSIVE
    return _Judgement(
        verdict=verdict,
        baseline=baseline,
        candidate=measured,
        checks=checks,
        reasons=tuple(c.reason for c in checks),
    )


def _latency_check(
    config: PipelineConfig,
    candidate: StepMetrics,
    baseline: StepMetrics,
    source: str,
    alpha: float,
    live_baseline: bool,
) -> CheckResult:
    candidate_p95, baseline_p95 = candidate.latency_p95_ms, baseline.latency_p95_ms
    if (
        candidate_p95 is None
        or baseline_p95 is None
        or candidate_p95 <= 0.0
        or baseline_p95 <= 0.0
        or baseline.requests == 0
    ):
        missing = (
            " and ".join(
                label
                for label, value in (("candidate", candidate_p95), (source, baseline_p95))
                if value is None
            )
            or source
        )
        return CheckResult(
            metric="latency_p95_ratio",
            verdict=Verdict.INCONCLUSIVE,
            estimate=None,
            lower=None,
            upper=None,
            threshold=1.0 + config.max_latency_increase,
            samples=candidate.requests,
            reason=f"p95 latency missing or not a number for {missing}",
        )
    return latency_ratio_check(
        _evidence(candidate, candidate_p95),
        _evidence(baseline, baseline_p95),
        config.max_latency_increase,
        rollback_alpha=alpha,
        baseline_is_reference=not live_baseline,
    )


def _evidence(metrics: StepMetrics, p95: float) -> LatencyEvidence:
    return LatencyEvidence(p95, metrics.latency_p50_ms, metrics.requests,
                           metrics.latency_p93_ms, metrics.latency_p97_ms)


# ---- applying -------------------------------------------------------------------------------


def apply(rollout: Rollout, decision: Decision, now: datetime) -> Rollout:
    """The next rollout record: the judged step closed (or, on hold, updated), the next one
    opened, state, traffic and outcome set, `revision` + 1 (a hold keeps it: `hold_rollout`)."""
    require_active(rollout)
    require_aware(now)
    current = rollout.current_step
    if decision.rollout_revision != rollout.revision:
        raise PolicyHubError(
            "concurrent_change",
            f"decision was made on revision {decision.rollout_revision} of "
            f"rollout {rollout.rollout_id}, which is now at {rollout.revision}",
        )
    if (decision.stage, decision.traffic_percent) != (current.stage, current.traffic_percent):
        raise PolicyHubError("concurrent_change", "decision is about another step")
    observed = current.model_copy(
        update={
            "baseline": decision.baseline,
            "candidate": decision.candidate,
            "reasons": decision.reasons,
            "progress": decision.progress,
        }
    )
    if decision.kind is DecisionKind.HOLD:
        return hold_rollout(rollout, observed)
    closed = observed.model_copy(update={"ended_at": now, "verdict": decision.verdict})
    if decision.kind is DecisionKind.ROLLBACK:
        return roll_back_rollout(rollout, closed, _rollback_reason(current, decision), now)
    if decision.kind is DecisionKind.COMPLETE:
        return complete_rollout(rollout, closed, now)
    return advance_rollout(
        rollout,
        closed,
        decision.next_traffic_percent,
        pooled_reference((*rollout.steps[:-1], closed)),
        now,
        promote=decision.kind is DecisionKind.PROMOTE,
    )


def _usable_baseline(step_: RolloutStep) -> StepMetrics | None:
    b = step_.baseline
    if step_.verdict is not Verdict.HEALTHY or b is None or b.requests <= 0:
        return None
    if b.latency_p95_ms is None or not (math.isfinite(b.latency_p95_ms) and b.latency_p95_ms > 0):
        return None
    return b


def pooled_reference(steps: tuple[RolloutStep, ...]) -> StepMetrics | None:
    """Production's numbers pooled over every canary step below 100 % that concluded healthy
    (shadow's when there is none: in shadow production's requests also score the candidate).

    Each step's p95 estimate has a variance of about c / n, so the n-weighted mean of the log
    p95s has the variance c / (sum of n): the pooled reference is as precise as one window
    with all those samples, and the 100 % step and the watch can reach their planned
    information. The price is that it spans the rollout's time (decision 098)."""
    live = [
        b
        for s in steps
        if s.stage is Stage.CANARY and s.traffic_percent < 100 and (b := _usable_baseline(s))
    ]
    if not live:
        live = [b for s in steps if s.stage is Stage.SHADOW and (b := _usable_baseline(s))]
    if len(live) <= 1:
        return live[0] if live else None
    requests = sum(b.requests for b in live)
    with_rate = [b for b in live if b.success_rate is not None and b.outcomes > 0]
    outcomes = sum(b.outcomes for b in with_rate)

    def log_mean(field: str) -> float | None:
        values = [(getattr(b, field), b.requests) for b in live]
        if any(v is None or v <= 0 for v, _ in values):
            return None
        return math.exp(sum(n * math.log(v) for v, n in values) / requests)

    return StepMetrics(
        requests=requests,
        latency_p95_ms=log_mean("latency_p95_ms"),
        latency_p50_ms=log_mean("latency_p50_ms"),
        latency_p93_ms=log_mean("latency_p93_ms"),
        latency_p97_ms=log_mean("latency_p97_ms"),
        success_rate=(
            sum((b.success_rate or 0.0) * b.outcomes for b in with_rate) / outcomes
            if outcomes
            else None
        ),
        outcomes=outcomes,
    )


def _rollback_reason(step_: RolloutStep, decision: Decision) -> str:
    where = (
        "the post-promotion watch"
        if step_.stage is Stage.POST_PROMOTION
        else "shadow"
        if step_.stage is Stage.SHADOW
        else f"the {step_.traffic_percent} % canary step"
    )
    what = "unhealthy" if decision.verdict is Verdict.UNHEALTHY else "inconclusive"
    return f"rolled back: {what} in {where}: " + "; ".join(decision.reasons)

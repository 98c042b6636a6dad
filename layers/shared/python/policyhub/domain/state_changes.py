"""Every state change a promote, a rollback or a rollout makes, in one place (issue 13).

Pure: a service reads the records, calls these, and commits the Transition `transition` builds.
- Rollout records: `start_rollout`, the outcomes of a judged step (`hold_rollout`,
  `advance_rollout`, `complete_rollout`, `roll_back_rollout`, which the judge's `apply` calls and
  the alarm path too), and `abort_rollout`.
- The deployment pointer and the version statuses that move with it: `move_production` (every
  promote and rollback, immediate or by rollout), `end_rollout` (a rollout that ended without
  promoting, its candidate's record, and production back to the baseline if it had moved).
- Which way an audit event points (`toward_candidate`, `away_from_candidate`).

Functions here never bump the deployment's revision: `transition` does that once, from the
revision the service read, whatever was composed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from policyhub.domain.audit import AuditEvent
from policyhub.domain.deployment import PREVIOUS_KEPT, Deployment, PreviousVersion
from policyhub.domain.errors import PolicyHubError, invalid
from policyhub.domain.promotion_rules import after_rollout_without_promotion
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutState,
    RolloutStep,
    RolloutStrategy,
    Stage,
    StepMetrics,
    require_active,
    require_aware,
)
from policyhub.domain.routing import RolloutRoute, ServedPolicy
from policyhub.domain.transition import RolloutWrite, Transition, VersionUpdate
from policyhub.domain.versions import PolicyStatus, PolicyVersion, RolloutOutcome

# ---- the rollout record ---------------------------------------------------------------------


def start_rollout(
    *,
    rollout_id: str,
    tenant_id: str,
    agent_type: str,
    candidate_version: str,
    baseline_version: str | None,
    strategy: RolloutStrategy,
    config: PipelineConfig,
    now: datetime,
) -> Rollout:
    """The first record of a rollout: a shadow step (`safe`) or the first canary step."""
    require_aware(now)
    if strategy is RolloutStrategy.CANARY and len(config.canary_steps) == 1:
        raise invalid(
            "pipeline.canary_steps",
            "with strategy canary there must be a step below 100: the 100 % step is "
            "judged against baseline numbers measured in an earlier step",
        )
    if strategy is RolloutStrategy.SAFE:
        first = RolloutStep(stage=Stage.SHADOW, traffic_percent=0, started_at=now)
        state = RolloutState.SHADOW
    else:
        first = RolloutStep(
            stage=Stage.CANARY, traffic_percent=config.canary_steps[0], started_at=now
        )
        state = RolloutState.CANARY
    return Rollout(
        rollout_id=rollout_id,
        tenant_id=tenant_id,
        agent_type=agent_type,
        candidate_version=candidate_version,
        baseline_version=baseline_version,
        strategy=strategy,
        state=state,
        traffic_percent=first.traffic_percent,
        step_index=0,
        started_at=now,
        steps=(first,),
        config=config,
        revision=1,
    )


def hold_rollout(rollout: Rollout, observed: RolloutStep) -> Rollout:
    """The step goes on; its latest observation (numbers, reasons, progress) replaces the last.

    The revision stays: it counts changes of state, which a hold is not. So an admin's abort or
    rollback, or an alarm, that read the rollout before a hold still commits over it (their
    writes are conditional on the revision they read), instead of losing to a controller that
    looks every second (decision 108); a hold computed before any change of state is refused."""
    return rollout.model_copy(update={"steps": (*rollout.steps[:-1], observed)})


def advance_rollout(
    rollout: Rollout,
    closed: RolloutStep,
    next_percent: int,
    pooled_baseline: StepMetrics | None,
    now: datetime,
    *,
    promote: bool,
) -> Rollout:
    """`closed` concluded healthy: the next canary step opens, or (`promote`) the candidate is
    production and the post-promotion watch opens. `pooled_baseline` is production's reference
    for the steps still to come (None keeps the one the rollout has)."""
    done = (*rollout.steps[:-1], closed)
    stage = Stage.POST_PROMOTION if promote else Stage.CANARY
    opened = RolloutStep(stage=stage, traffic_percent=next_percent, started_at=now)
    changed = rollout.model_copy(
        update={
            "steps": (*done, opened),
            "step_index": rollout.step_index + 1,
            "traffic_percent": next_percent,
            "baseline_reference": pooled_baseline or rollout.baseline_reference,
            "state": RolloutState.PROMOTED if promote else RolloutState.CANARY,
            "revision": rollout.revision + 1,
        }
    )
    if not promote:
        return changed
    return changed.model_copy(
        update={
            "promoted_at": now,
            "watching": True,
            "watch_until": now + timedelta(seconds=rollout.config.post_promotion_seconds),
        }
    )


def complete_rollout(rollout: Rollout, closed: RolloutStep, now: datetime) -> Rollout:
    """The post-promotion watch concluded healthy: the rollout ends, promoted."""
    return rollout.model_copy(
        update={
            "steps": (*rollout.steps[:-1], closed),
            "watching": False,
            "ended_at": now,
            "outcome_reason": "promoted; the post-promotion watch ended healthy",
            "revision": rollout.revision + 1,
        }
    )


def roll_back_rollout(rollout: Rollout, closed: RolloutStep, reason: str, now: datetime) -> Rollout:
    """The rollout ends rolled back, by the judge or by an alarm: no traffic to the candidate."""
    require_active(rollout)
    return rollout.model_copy(
        update={
            "steps": (*rollout.steps[:-1], closed),
            "state": RolloutState.ROLLED_BACK,
            "traffic_percent": 0,
            "ended_at": now,
            "watching": False,
            "outcome_reason": reason,
            "revision": rollout.revision + 1,
        }
    )


def abort_rollout(rollout: Rollout, reason: str, now: datetime) -> Rollout:
    """An admin stops the rollout. During the post-promotion watch production has already
    moved, so the watch ends and the rollout stays `promoted`; otherwise it is `aborted`."""
    require_active(rollout)
    require_aware(now)
    closed = rollout.current_step.model_copy(update={"ended_at": now})
    steps = (*rollout.steps[:-1], closed)
    if rollout.watching:
        return rollout.model_copy(
            update={
                "steps": steps,
                "watching": False,
                "ended_at": now,
                "outcome_reason": f"post-promotion watch aborted: {reason}",
                "revision": rollout.revision + 1,
            }
        )
    return rollout.model_copy(
        update={
            "steps": steps,
            "state": RolloutState.ABORTED,
            "traffic_percent": 0,
            "ended_at": now,
            "outcome_reason": f"aborted: {reason}",
            "revision": rollout.revision + 1,
        }
    )


# ---- the deployment pointer and the versions that move with it ------------------------------


@dataclass(frozen=True)
class PointerChange:
    """A new deployment pointer (revision not yet bumped) and the version records it moves."""

    deployment: Deployment
    version_updates: tuple[VersionUpdate, ...] = ()

    def plus(self, *updates: VersionUpdate) -> PointerChange:
        return PointerChange(self.deployment, (*self.version_updates, *updates))


def concurrent_change(agent_type: str) -> PolicyHubError:
    return PolicyHubError(
        "concurrent_change",
        f"agent {agent_type!r} changed concurrently; read the current state and retry",
    )


def move_production(
    current: Deployment,
    target: PolicyVersion,
    leaving: PolicyVersion | None,
    now: datetime,
    *,
    leaving_as: PolicyVersion | None = None,
) -> PointerChange:
    """Production moves to `target`: promoted now, its last rollout forgotten.

    `leaving` is the version that served until now (None for the agent's first production). It
    is retired and heads the rollback list, unless `leaving_as` is its record instead: a
    candidate rolled back out of production leaves as `rolled_back`, and off the list (only a
    retired version is a rollback target). A pointer and versions read at different moments
    of a race are refused as a concurrent change."""
    serving = leaving.version if leaving is not None else None
    if current.production_version == target.version or current.production_version != serving:
        raise concurrent_change(current.agent_type)
    updates = [
        VersionUpdate(
            target.model_copy(
                update={"status": PolicyStatus.PRODUCTION, "promoted_at": now, "last_rollout": None}
            ),
            target.status,
        )
    ]
    previous = [p for p in current.previous if p.version != target.version]
    if leaving is not None:
        left = leaving_as or leaving.model_copy(update={"status": PolicyStatus.RETIRED})
        updates.append(VersionUpdate(left, PolicyStatus.PRODUCTION))
        if left.status is PolicyStatus.RETIRED:
            previous.insert(
                0,
                PreviousVersion(
                    version=leaving.version,
                    promoted_at=current.promoted_at,
                    feature_schema=leaving.feature_schema,
                ),
            )
    deployment = current.model_copy(
        update={
            "production_version": target.version,
            "production": ServedPolicy.of(target),
            "promoted_at": now,
            "previous": previous[:PREVIOUS_KEPT],
        }
    )
    return PointerChange(deployment, tuple(updates))


def candidate_status(rollout: Rollout) -> PolicyStatus:
    """The candidate's version status follows its rollout's state."""
    if rollout.state is RolloutState.SHADOW:
        return PolicyStatus.SHADOW
    if rollout.state is RolloutState.CANARY:
        return PolicyStatus.CANARY
    if rollout.state is RolloutState.PROMOTED:
        return PolicyStatus.PRODUCTION
    return PolicyStatus.ROLLED_BACK


def route_of(rollout: Rollout, candidate: PolicyVersion) -> RolloutRoute | None:
    """What the rank path needs to split traffic for `rollout` (None once nothing is split)."""
    if rollout.is_terminal or (rollout.state is RolloutState.PROMOTED and not rollout.watching):
        return None
    stages: dict[Stage, Literal["shadow", "canary", "watch"]] = {
        Stage.SHADOW: "shadow",
        Stage.CANARY: "canary",
        Stage.POST_PROMOTION: "watch",
    }
    return RolloutRoute(
        rollout_id=rollout.rollout_id,
        candidate=ServedPolicy.of(candidate),
        stage=stages[rollout.current_step.stage],
        traffic_percent=rollout.traffic_percent,
    )


def follow_rollout(
    current: Deployment, rollout: Rollout, candidate: PolicyVersion
) -> PointerChange:
    """`rollout` started or moved to another step below production: the rank path routes its
    traffic, and the candidate's status follows the rollout's state."""
    deployment = current.model_copy(
        update={
            "active_rollout_id": rollout.rollout_id,
            "rollout_route": route_of(rollout, candidate),
        }
    )
    status = candidate_status(rollout)
    if candidate.status == status:
        return PointerChange(deployment)
    return PointerChange(
        deployment,
        (VersionUpdate(candidate.model_copy(update={"status": status}), candidate.status),),
    )


def promote_candidate(
    current: Deployment,
    promoted: Rollout,
    candidate: PolicyVersion,
    leaving: PolicyVersion | None,
    now: datetime,
) -> PointerChange:
    """The rollout's last step passed: production moves to the candidate, and the rank path
    keeps routing the post-promotion watch."""
    moved = move_production(current, candidate, leaving, now)
    routed = moved.deployment.model_copy(update={"rollout_route": route_of(promoted, candidate)})
    return PointerChange(routed, moved.version_updates)


def without_rollout(current: Deployment) -> Deployment:
    return current.model_copy(update={"active_rollout_id": None, "rollout_route": None})


def end_rollout(
    current: Deployment,
    ended: Rollout,
    candidate: PolicyVersion,
    outcome: RolloutOutcome,
    baseline: PolicyVersion | None,
    now: datetime,
) -> PointerChange:
    """The pointer once `ended` (rolled back or aborted) stops: no rollout route, and the
    candidate's record says why (decision 099). If the candidate had been promoted (rolled back
    in the post-promotion watch), production returns to `baseline`, which the caller read
    (`baseline_to_restore`)."""
    if ended.ended_at is None:
        raise ValueError("only an ended rollout is undone")
    record = after_rollout_without_promotion(
        candidate, ended.rollout_id, outcome, ended.outcome_reason, ended.ended_at
    )
    if current.production_version == candidate.version and baseline is not None:
        moved = move_production(current, baseline, candidate, now, leaving_as=record)
        return PointerChange(without_rollout(moved.deployment), moved.version_updates)
    return PointerChange(without_rollout(current), (VersionUpdate(record, candidate.status),))


def baseline_to_restore(current: Deployment, rollout: Rollout) -> str | None:
    """The version `end_rollout` needs: the baseline, if the candidate is serving."""
    if current.production_version == rollout.candidate_version:
        return rollout.baseline_version
    return None


def next_revision(read: Deployment) -> int:
    return read.revision + 1


def transition(
    tenant_id: str,
    read: Deployment,
    change: PointerChange,
    *,
    audit: tuple[AuditEvent, ...] = (),
    rollouts: tuple[RolloutWrite, ...] = (),
) -> Transition:
    """The commit of `change` over the pointer as it was `read`: one revision later, and only
    if nothing changed since."""
    deployment = change.deployment.model_copy(update={"revision": next_revision(read)})
    return Transition(
        tenant_id,
        read.agent_type,
        read.revision,
        deployment,
        version_updates=change.version_updates,
        audit=audit,
        rollouts=rollouts,
    )


# ---- which way an audit event points --------------------------------------------------------


def toward_candidate(rollout: Rollout) -> tuple[str | None, str | None]:
    """(from, to) of an event that moves traffic to the candidate: start, step, promote."""
    return rollout.baseline_version, rollout.candidate_version


def away_from_candidate(rollout: Rollout) -> tuple[str | None, str | None]:
    """(from, to) of an event that takes traffic back: any rollback, an abort, an alarm."""
    return rollout.candidate_version, rollout.baseline_version

"""Safe deployment: start a rollout, drive it step by step, abort it, roll back around it.

Every change is one conditional Transition (deployment revision, rollout revision, version
statuses), so a manual promote, abort or rollback racing the controller leaves one consistent
state and a 409 for the loser (DESIGN.md invariants 1, 6, 7, 8).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from policyhub.domain.access import Principal
from policyhub.domain.audit import SYSTEM_ACTOR, AuditAction, AuditEvent
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError, invalid
from policyhub.domain.promotion_rules import require_promotable, require_rollback_keeps_serving
from policyhub.domain.rollout import PipelineConfig, Rollout, RolloutState, RolloutStrategy, Verdict
from policyhub.domain.rollout_judge import Decision, DecisionKind, apply, step
from policyhub.domain.state_changes import (
    PointerChange,
    abort_rollout,
    away_from_candidate,
    baseline_to_restore,
    end_rollout,
    follow_rollout,
    move_production,
    next_revision,
    promote_candidate,
    roll_back_rollout,
    start_rollout,
    toward_candidate,
    transition,
    without_rollout,
)
from policyhub.domain.transition import RolloutWrite, Transition
from policyhub.domain.versions import PolicyStatus, PolicyVersion, RolloutOutcome
from policyhub.ports import (
    Clock,
    HealthReader,
    Page,
    PageKey,
    PolicyStore,
    RolloutAlarms,
    RolloutMetrics,
    WorkflowStarter,
)
from policyhub.services.registry import Promotion, Registry

MAX_WAIT_SECONDS = 60
logger = logging.getLogger("policyhub.rollouts")


ADMIN_ATTEMPTS = 3
R = TypeVar("R")


def _outlasting_the_controller(action: Callable[[], R]) -> R:
    """An admin's abort or rollback re-reads and retries when it lost only a race with the
    controller (which rewrites the rollout on every step, holds included); the request is
    re-validated on every attempt, so a state that no longer allows it still ends in 409."""
    for attempt in range(ADMIN_ATTEMPTS):
        try:
            return action()
        except PolicyHubError as err:
            if err.code != "concurrent_change" or attempt == ADMIN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def new_rollout_id(now: datetime) -> str:
    """Time-sortable, so listing by sort key is newest first."""
    return f"ro_{int(now.timestamp() * 1000):013d}{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Tick:
    """What the workflow loop does next."""

    done: bool
    wait_seconds: int
    state: str
    decision: str | None


def _outcome_of(decision: Decision) -> RolloutOutcome:
    """A controller rollback is unhealthy on evidence, else inconclusive at its deadline."""
    if decision.verdict is Verdict.UNHEALTHY:
        return RolloutOutcome.UNHEALTHY
    return RolloutOutcome.INCONCLUSIVE


class RolloutService:
    def __init__(
        self,
        store: PolicyStore,
        registry: Registry,
        health: Callable[[], HealthReader],
        workflows: WorkflowStarter,
        clock: Clock,
        alarms: RolloutAlarms,
        metrics: RolloutMetrics | None = None,
    ) -> None:
        self._alarms = alarms
        self._metrics = metrics
        self._store = store
        self._registry = registry
        # Built at the first look: only the controller judges health, and the functions that
        # promote, roll back or abort lack the log readers' packages (decision 117).
        self._health_reader = health
        self._health: HealthReader | None = None
        self._workflows = workflows
        self._clock = clock

    # ---- reads -------------------------------------------------------------------------
    def get(self, tenant_id: str, agent_type: str, rollout_id: str) -> Rollout:
        found = self._store.get_rollout(tenant_id, agent_type, rollout_id)
        if found is None:
            raise PolicyHubError(
                "rollout_not_found", f"no rollout {rollout_id} of agent {agent_type!r}"
            )
        return found

    def list_page(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[Rollout]:
        return self._store.list_rollouts(tenant_id, agent_type, limit, start)

    def active(self, tenant_id: str, agent_type: str) -> Rollout | None:
        d = self._registry.deployment(tenant_id, agent_type)
        if d.active_rollout_id is None:
            return None
        return self._store.get_rollout(tenant_id, agent_type, d.active_rollout_id)

    # ---- start -------------------------------------------------------------------------
    def start(
        self,
        principal: Principal,
        agent_type: str,
        version: str,
        strategy: RolloutStrategy,
        reason: str | None,
        overrides: dict[str, Any] | None,
        *,
        force: bool = False,
    ) -> Rollout:
        """`force` lets a version an earlier rollout found unhealthy be promoted again."""
        tenant_id = principal.tenant_id
        current = self._registry.deployment(tenant_id, agent_type)
        target = self._registry.version(tenant_id, agent_type, version)
        self._check_startable(current, target, force)
        try:
            config = PipelineConfig.model_validate(overrides or {})
        except ValidationError as exc:
            raise invalid(
                "body.pipeline." + ".".join(str(p) for p in exc.errors()[0]["loc"]),
                exc.errors()[0]["msg"],
            ) from exc
        now = self._clock.now()
        rollout = start_rollout(
            rollout_id=new_rollout_id(now),
            tenant_id=tenant_id,
            agent_type=agent_type,
            candidate_version=version,
            baseline_version=current.production_version,
            strategy=strategy,
            config=config,
            now=now,
        )
        audit = self._event(
            principal.key_id,
            AuditAction.ROLLOUT_START,
            agent_type,
            *toward_candidate(rollout),
            reason,
            {
                "rollout_id": rollout.rollout_id,
                "strategy": strategy.value,
                "pipeline": config.model_dump(mode="json"),
                **({"force": True} if force else {}),
            },
        )
        self._store.commit(
            transition(
                tenant_id,
                current,
                follow_rollout(current, rollout, target),
                audit=(audit,),
                rollouts=(RolloutWrite(rollout, None),),
            )
        )
        try:
            self._workflows.start(tenant_id, agent_type, rollout.rollout_id)
        except Exception as exc:
            logger.exception("the workflow of rollout %s could not be started", rollout.rollout_id)
            if self._cancel_unstarted(rollout, f"its workflow could not be started ({exc})"):
                then = f"so rollout {rollout.rollout_id} was cancelled; retry the promote shortly"
            else:
                rid = rollout.rollout_id
                then = (
                    f"and rollout {rid} could not be cancelled either: abort it "
                    f"(POST /v1/policies/rollouts/{rid}/abort), then retry the promote"
                )
            raise PolicyHubError(
                "service_unavailable", f"the rollout workflow could not be started, {then}"
            ) from exc
        self._best_effort(self._alarms.create, rollout)
        return rollout

    def _cancel_unstarted(self, rollout: Rollout, why: str) -> bool:
        """Nothing drives a rollout whose workflow did not start: end it as aborted, so the
        agent has no active rollout and a retried promote can start a new one. (If the start
        failed only in its answer, the workflow's first look finds the rollout ended.) False
        if the rollout could not be ended either (the store failing too)."""

        def once() -> None:
            latest = self.get(rollout.tenant_id, rollout.agent_type, rollout.rollout_id)
            if latest.is_terminal:  # an admin aborted it meanwhile
                return
            after = abort_rollout(latest, why, self._clock.now())
            current = self._registry.deployment(rollout.tenant_id, rollout.agent_type)
            event = self._abort_event(SYSTEM_ACTOR, latest, why)
            self._store.commit(
                transition(
                    rollout.tenant_id,
                    current,
                    self._abort_change(current, after),
                    audit=(event,),
                    rollouts=(RolloutWrite(after, latest.revision),),
                )
            )

        try:
            _outlasting_the_controller(once)
        except Exception:
            logger.exception("rollout %s could not be cancelled", rollout.rollout_id)
            return False
        return True

    def _best_effort(self, action: Callable[[Rollout], None], rollout: Rollout) -> None:
        """Alarms are an extra trigger; the controller judges without them."""
        try:
            action(rollout)
        except Exception:
            logger.exception("rollout alarms of %s could not be changed", rollout.rollout_id)

    def _count_rollback(self, agent_type: str, cause: str) -> None:
        if self._metrics is not None:
            self._metrics.rollback(agent_type, cause)

    def _ended(self, rollout: Rollout) -> None:
        if rollout.is_terminal:
            self._best_effort(self._alarms.delete, rollout)

    @staticmethod
    def _check_startable(current: Deployment, target: PolicyVersion, force: bool) -> None:
        require_promotable(current, target, force=force)
        if current.production is None:
            raise PolicyHubError(
                "not_promotable",
                "there is no production version to compare "
                "against yet; promote the first version with strategy "
                "immediate",
            )
        if current.production.feature_schema != target.feature_schema:
            raise PolicyHubError(
                "not_promotable",
                f"{target.version} expects other features "
                f"than production {current.production.version}; a canary "
                "would fail every request it serves",
            )

    # ---- the controller step -----------------------------------------------------------
    def tick(self, tenant_id: str, agent_type: str, rollout_id: str) -> Tick:
        """One pass of the workflow loop: judge the current step and apply the decision."""
        rollout = self.get(tenant_id, agent_type, rollout_id)
        if rollout.is_terminal or (rollout.state is RolloutState.PROMOTED and not rollout.watching):
            return Tick(True, 0, rollout.state.value, None)
        now = self._clock.now()
        if self._health is None:
            self._health = self._health_reader()
        health = self._health.read(rollout, rollout.step_started_at, now)
        decision = step(rollout, health, now)
        after = apply(rollout, decision, now)
        self._commit_decision(rollout, after, decision)
        self._ended(after)
        if decision.kind is DecisionKind.ROLLBACK:
            self._count_rollback(agent_type, "auto")
        done = after.is_terminal or (after.state is RolloutState.PROMOTED and not after.watching)
        wait = max(1, min(MAX_WAIT_SECONDS, after.config.step_seconds // 10 or 1))
        return Tick(done, 0 if done else wait, after.state.value, decision.kind.value)

    def _commit_decision(self, before: Rollout, after: Rollout, decision: Decision) -> None:
        tenant_id, agent_type = before.tenant_id, before.agent_type
        write = RolloutWrite(after, before.revision)
        if decision.kind is DecisionKind.HOLD:
            self._store.commit(Transition(tenant_id, agent_type, 0, None, rollouts=(write,)))
            return
        current = self._registry.deployment(tenant_id, agent_type)
        if current.active_rollout_id != before.rollout_id:
            raise PolicyHubError(
                "concurrent_change",
                f"rollout {before.rollout_id} is no longer the agent's active rollout",
            )
        candidate = self._registry.version(tenant_id, agent_type, before.candidate_version)
        direction = toward_candidate(before)
        if decision.kind is DecisionKind.ADVANCE:
            action = AuditAction.ROLLOUT_STEP
            change = follow_rollout(current, after, candidate)
        elif decision.kind is DecisionKind.PROMOTE:
            action = AuditAction.PROMOTE
            leaving = self._registry.production_record(tenant_id, current)
            change = promote_candidate(current, after, candidate, leaving, self._clock.now())
        elif decision.kind is DecisionKind.COMPLETE:
            action = AuditAction.ROLLOUT_STEP
            change = PointerChange(without_rollout(current))
        else:
            action = AuditAction.AUTO_ROLLBACK
            direction = away_from_candidate(before)
            change = self._end(current, after, candidate, _outcome_of(decision))
        audit = self._event(
            SYSTEM_ACTOR,
            action,
            agent_type,
            *direction,
            after.outcome_reason or "; ".join(decision.reasons),
            {
                "rollout_id": before.rollout_id,
                "decision": decision.kind.value,
                **decision.evidence(),
            },
        )
        self._store.commit(
            transition(tenant_id, current, change, audit=(audit,), rollouts=(write,))
        )

    def _end(
        self,
        current: Deployment,
        ended: Rollout,
        candidate: PolicyVersion,
        outcome: RolloutOutcome,
    ) -> PointerChange:
        """`end_rollout`, with the baseline read if production has to return to it."""
        baseline = baseline_to_restore(current, ended)
        restored = (
            self._registry.version(ended.tenant_id, ended.agent_type, baseline)
            if baseline is not None
            else None
        )
        return end_rollout(current, ended, candidate, outcome, restored, self._clock.now())

    # ---- admins ------------------------------------------------------------------------
    def abort(
        self, principal: Principal, agent_type: str, rollout_id: str, reason: str | None
    ) -> Rollout:
        return _outlasting_the_controller(
            lambda: self._abort_once(principal, agent_type, rollout_id, reason)
        )

    def _abort_once(
        self, principal: Principal, agent_type: str, rollout_id: str, reason: str | None
    ) -> Rollout:
        rollout = self.get(principal.tenant_id, agent_type, rollout_id)
        after = abort_rollout(rollout, reason or "aborted by an admin", self._clock.now())
        current = self._registry.deployment(principal.tenant_id, agent_type)
        self._store.commit(
            transition(
                principal.tenant_id,
                current,
                self._abort_change(current, after),
                audit=(self._abort_event(principal.key_id, rollout, reason),),
                rollouts=(RolloutWrite(after, rollout.revision),),
            )
        )
        self._ended(after)
        return after

    def alarm_rollback(
        self, tenant_id: str, agent_type: str, rollout_id: str, alarm: str
    ) -> Rollout | None:
        """A per-rollout CloudWatch alarm fired: roll back at once (no-op once it has ended).

        Like an admin's abort, it re-reads and tries again when it lost a write race with the
        controller's look: an alarm that fires during a step must still roll back."""
        return _outlasting_the_controller(
            lambda: self._alarm_rollback_once(tenant_id, agent_type, rollout_id, alarm)
        )

    def _alarm_rollback_once(
        self, tenant_id: str, agent_type: str, rollout_id: str, alarm: str
    ) -> Rollout | None:
        rollout = self.get(tenant_id, agent_type, rollout_id)
        if rollout.is_terminal:
            return None
        now = self._clock.now()
        reason = f"rolled back: CloudWatch alarm {alarm} is in ALARM"
        closed = rollout.current_step.model_copy(
            update={
                "ended_at": now,
                "verdict": Verdict.UNHEALTHY,
                "reasons": (*rollout.current_step.reasons, reason),
            }
        )
        after = roll_back_rollout(rollout, closed, reason, now)
        current = self._registry.deployment(tenant_id, agent_type)
        candidate = self._registry.version(tenant_id, agent_type, rollout.candidate_version)
        audit = self._event(
            SYSTEM_ACTOR,
            AuditAction.AUTO_ROLLBACK,
            agent_type,
            *away_from_candidate(rollout),
            reason,
            {
                "rollout_id": rollout_id,
                "alarm": alarm,
                "stage": rollout.current_step.stage.value,
                "traffic_percent": rollout.traffic_percent,
            },
        )
        self._store.commit(
            transition(
                tenant_id,
                current,
                self._end(current, after, candidate, RolloutOutcome.UNHEALTHY),
                audit=(audit,),
                rollouts=(RolloutWrite(after, rollout.revision),),
            )
        )
        self._ended(after)
        self._count_rollback(agent_type, "alarm")
        return after

    def _abort_change(self, current: Deployment, aborted: Rollout) -> PointerChange:
        if aborted.state is RolloutState.PROMOTED:  # a watch ends; production already moved
            return PointerChange(without_rollout(current))
        candidate = self._registry.version(
            aborted.tenant_id, aborted.agent_type, aborted.candidate_version
        )
        return self._end(current, aborted, candidate, RolloutOutcome.ABORTED)

    def _abort_event(self, actor: str, rollout: Rollout, reason: str | None) -> AuditEvent:
        return self._event(
            actor,
            AuditAction.ABORT,
            rollout.agent_type,
            *away_from_candidate(rollout),
            reason,
            {
                "rollout_id": rollout.rollout_id,
                "stage": rollout.current_step.stage.value,
                "traffic_percent": rollout.traffic_percent,
            },
        )

    def rollback(
        self,
        principal: Principal,
        agent_type: str,
        version: str,
        reason: str | None,
        *,
        force: bool = False,
    ) -> Promotion:
        """Manual rollback; an active rollout is aborted first, in the same transaction.
        `force` restores a version whose feature schema differs from production's (105)."""
        return _outlasting_the_controller(
            lambda: self._rollback_once(principal, agent_type, version, reason, force)
        )

    def _rollback_once(
        self,
        principal: Principal,
        agent_type: str,
        version: str,
        reason: str | None,
        force: bool,
    ) -> Promotion:
        tenant_id = principal.tenant_id
        current = self._registry.deployment(tenant_id, agent_type)
        if current.active_rollout_id is None:
            done = self._registry.rollback(principal, agent_type, version, reason, force=force)
            self._count_rollback(agent_type, "manual")
            return done
        rollout = self.get(tenant_id, agent_type, current.active_rollout_id)
        target = self._registry.version(tenant_id, agent_type, version)
        now = self._clock.now()
        after = abort_rollout(rollout, f"manual rollback to {version}", now)
        change = self._abort_change(current, after)
        serving = change.deployment.production_version
        assert serving is not None, "a rollout always has a production baseline"
        checked: dict[str, Any] = {"force": True} if force else {}
        if target.version != serving:
            if target.status != PolicyStatus.RETIRED:
                raise PolicyHubError(
                    "not_rollbackable",
                    f"{version} is {target.status.value}; "
                    "only the current production or a retired version can "
                    "be restored",
                )
            checked = require_rollback_keeps_serving(
                self._registry.serving(tenant_id, change.deployment), target, force=force
            )
            leaving = self._registry.production_record(tenant_id, change.deployment)
            moved = move_production(change.deployment, target, leaving, now)
            change = PointerChange(moved.deployment, change.version_updates).plus(
                *moved.version_updates
            )
        event = self._event(
            principal.key_id,
            AuditAction.ROLLBACK,
            agent_type,
            serving,
            target.version,
            reason,
            {
                **checked,
                "aborted_rollout_id": rollout.rollout_id,
                "revision": next_revision(current),
            },
        )
        self._store.commit(
            transition(
                tenant_id,
                current,
                change,
                audit=(self._abort_event(principal.key_id, rollout, reason), event),
                rollouts=(RolloutWrite(after, rollout.revision),),
            )
        )
        self._ended(after)
        self._count_rollback(agent_type, "manual")
        return Promotion(
            target.version,
            agent_type,
            change.deployment.promoted_at or now,
            serving if serving != target.version else None,
            rollout.rollout_id,
        )

    def _event(
        self,
        actor: str,
        action: AuditAction,
        agent_type: str,
        from_version: str | None,
        to_version: str | None,
        reason: str | None,
        details: dict[str, Any],
    ) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=actor,
            action=action,
            agent_type=agent_type,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            details=details,
        )

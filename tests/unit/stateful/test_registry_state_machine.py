"""Hypothesis stateful test of the registry and the pipeline on in-memory fakes.

Random sequences of register, promote (every strategy, with and without force), controller
steps under random health (healthy, unhealthy, inconclusive, NaN, unreadable), duplicate step
deliveries, CloudWatch alarms, abort and rollback. After every step DESIGN.md's invariants 1,
6, 7 and 8 must hold, and every version's record must say how its last rollout that did not
promote it ended, as a model of decision 099 predicts; promote must follow that record.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import AuditAction
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.health import Health, HealthReadFailed, HealthWindow, VariantHealth
from policyhub.domain.rollout import Rollout, RolloutState, RolloutStrategy, Stage, Verdict
from policyhub.domain.rollout_judge import apply, step
from policyhub.domain.versions import FeatureSchema, PolicyStatus, PromoteAgain
from policyhub.ml.onnx_models import random_linear_policy
from policyhub.services.registry import Registry
from policyhub.services.rollouts import RolloutService
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryStore

T, A = "acme", "memory_manager"
ADMIN = Principal(T, "admin-key", Tier.PRO, Role.ADMIN)
SCHEMA = FeatureSchema(context_dim=1, item_dim=1)
CONFIG = {
    "shadow_seconds": 60,
    "shadow_min_decisions": 100,
    "step_seconds": 60,
    "min_samples_per_step": 200,
    "max_step_seconds": 600,
    "post_promotion_seconds": 120,
}
HEALTH_KINDS = ("healthy", "unhealthy", "inconclusive", "nan", "unreadable")


def _variant(kind: str, candidate: bool) -> VariantHealth:
    if kind == "inconclusive":
        return VariantHealth(
            requests=5,
            feedback_successes=5,
            latency_p95_ms=20.0,
            latency_p50_ms=10.0,
            shadow_decisions=5 if candidate else 0,
        )
    bad = kind == "unhealthy" and candidate
    return VariantHealth(
        requests=2000,
        feedback_successes=1400 if bad else 1990,
        feedback_failures=600 if bad else 10,
        latency_p95_ms=math.nan if kind == "nan" else 20.0,
        latency_p50_ms=10.0,
        shadow_decisions=2000 if candidate else 0,
    )


class ScriptedHealth:
    kind = "healthy"

    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
        if self.kind == "unreadable":
            return HealthReadFailed(window_start=start, window_end=end, error="S3 down")
        return HealthWindow(
            window_start=start,
            window_end=end,
            baseline=_variant(self.kind, False),
            candidate=_variant(self.kind, True),
        )


class Nothing:
    def start(self, *args: Any) -> None: ...
    def create(self, *args: Any) -> None: ...
    def delete(self, *args: Any) -> None: ...


class Pipeline(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
        self.registry = Registry(
            self.store, MemoryArtifactStore(), self.clock, lambda data, schema: None, 1 << 20
        )
        self.health = ScriptedHealth()
        self.rollouts = RolloutService(
            self.store, self.registry, lambda: self.health, Nothing(), self.clock, Nothing()
        )
        self.versions: list[str] = []
        self.ever_production: set[str] = set()
        self.expected_audit: Counter[str] = Counter()
        self.seed = 0
        self.last_rollout: dict[str, tuple[str, str]] = {}
        """The model of decision 099: version -> (outcome, rollout id) of the last rollout that
        ended without promoting it; an abort does not replace a rollback; promotion clears."""

    def _try(self, action: Any) -> Any:
        try:
            return action()
        except PolicyHubError as err:
            if err.status not in {404, 409, 422}:
                raise AssertionError(f"unexpected {err}") from err
            return None

    def _pick(self, i: int) -> str | None:
        return self.versions[i % len(self.versions)] if self.versions else None

    @initialize()
    def a_production_and_candidates(self) -> None:
        for _ in range(4):
            self.register()
        self.promote_immediate(0)

    @rule()
    def register(self) -> None:
        self.seed += 1
        v = self.registry.register(ADMIN, T, A, random_linear_policy(3, seed=self.seed), SCHEMA)
        self.versions.append(v.version)
        self.expected_audit["register"] += 1

    # ---- the model of decision 099 -------------------------------------------------------
    def _ended_without_promotion(self, rollout_id: str) -> None:
        """Record how a rollout that just ended (or had its watch aborted) left its candidate."""
        r = self.rollouts.get(T, A, rollout_id)
        if r.state is RolloutState.PROMOTED:
            return  # the watch was aborted: production had moved, nothing to record
        if r.state is RolloutState.ABORTED:
            earlier = self.last_rollout.get(r.candidate_version)
            if earlier is None or earlier[0] == "aborted":
                self.last_rollout[r.candidate_version] = ("aborted", rollout_id)
            return
        assert r.state is RolloutState.ROLLED_BACK
        verdict = r.current_step.verdict
        assert verdict in (Verdict.UNHEALTHY, Verdict.INCONCLUSIVE)
        self.last_rollout[r.candidate_version] = (verdict.value, rollout_id)

    def _after_decision(self, rollout_id: str, decision: str) -> None:
        if decision == "rollback":
            self._ended_without_promotion(rollout_id)
        elif decision == "promote":
            self.last_rollout.pop(self.rollouts.get(T, A, rollout_id).candidate_version, None)

    def _promote(self, v: str, force: bool, action: Any) -> bool:
        """Run a promote; check it was refused exactly when the model says it needs force."""
        d = self.registry.deployment(T, A)
        status = self.registry.version(T, A, v).status
        idle = d.active_rollout_id is None and d.active_experiment_id is None
        outcome, rollout_id = self.last_rollout.get(v, (None, None))
        needs_force = idle and status is PolicyStatus.ROLLED_BACK and outcome == "unhealthy"
        allowed = idle and (
            status is PolicyStatus.CANDIDATE
            or (status is PolicyStatus.ROLLED_BACK and (force or outcome == "inconclusive"))
        )
        refused: PolicyHubError | None = None
        try:
            action()
        except PolicyHubError as err:
            if err.status not in {404, 409, 422}:
                raise AssertionError(f"unexpected {err}") from err
            refused = err
        if refused is None:
            assert not (needs_force and not force), f"{v} promoted without force after {outcome}"
            return True
        assert not allowed, f"{v} ({status}, last rollout {outcome}) refused: {refused}"
        if needs_force and not force:
            assert refused.code == "not_promotable" and str(rollout_id) in refused.message
        return False

    @rule(i=st.integers(0, 50), force=st.booleans())
    def promote_immediate(self, i: int, force: bool = False) -> None:
        v = self._pick(i)
        if v:
            self._immediate(v, force)

    @rule(
        i=st.integers(0, 50), strategy=st.sampled_from(list(RolloutStrategy)), force=st.booleans()
    )
    def start_rollout(self, i: int, strategy: RolloutStrategy, force: bool) -> None:
        v = self._pick(i)
        if v:
            self._start(v, strategy, force)

    @rule(
        i=st.integers(0, 50),
        how=st.sampled_from(["immediate", *RolloutStrategy]),
        force=st.booleans(),
    )
    def promote_again(self, i: int, how: str, force: bool) -> None:
        """Promote a version whose last rollout ended without promoting it."""
        again = sorted(self.last_rollout)
        if not again:
            return
        v = again[i % len(again)]
        if how == "immediate":
            self._immediate(v, force)
        else:
            self._start(v, RolloutStrategy(how), force)

    def _immediate(self, v: str, force: bool) -> None:
        if self._promote(
            v, force, lambda: self.registry.promote_immediate(ADMIN, A, v, None, force=force)
        ):
            self.expected_audit["promote"] += 1
            self.last_rollout.pop(v, None)
            assert self.store.audit[T][-1].details.get("force", False) is force

    def _start(self, v: str, strategy: RolloutStrategy, force: bool) -> None:
        if self._promote(
            v, force, lambda: self.rollouts.start(ADMIN, A, v, strategy, None, CONFIG, force=force)
        ):
            self.expected_audit["rollout_start"] += 1
            assert self.store.audit[T][-1].details.get("force", False) is force

    @rule(kind=st.sampled_from(HEALTH_KINDS), seconds=st.integers(0, 700))
    def controller_step(self, kind: str, seconds: int) -> None:
        rollout_id = self.registry.deployment(T, A).active_rollout_id
        self.clock.current += timedelta(seconds=seconds)
        if rollout_id is None:
            return
        self.health.kind = kind
        tick = self._try(lambda: self.rollouts.tick(T, A, rollout_id))
        if tick is None or tick.decision is None:
            return
        self._after_decision(rollout_id, tick.decision)
        self.expected_audit[
            {
                "advance": "rollout_step",
                "complete": "rollout_step",
                "promote": "promote",
                "rollback": "auto_rollback",
            }.get(tick.decision, "")
        ] += 1

    @rule(steps=st.integers(1, 8))
    def healthy_traffic_for_a_while(self, steps: int) -> None:
        """Good numbers step after step: lets sequences reach promotion and the watch."""
        for _ in range(steps):
            self.controller_step("healthy", 61)

    @rule(kind=st.sampled_from(HEALTH_KINDS))
    def duplicate_delivery(self, kind: str) -> None:
        rollout_id = self.registry.deployment(T, A).active_rollout_id
        if rollout_id is None:
            return
        self.health.kind = kind
        before = self.rollouts.get(T, A, rollout_id)
        now = self.clock.now()
        decision = step(before, self.health.read(before, before.step_started_at, now), now)
        after = apply(before, decision, now)

        def commit() -> bool:
            self.rollouts._commit_decision(before, after, decision)
            return True

        if not self._try(commit):
            return
        self._after_decision(rollout_id, decision.kind.value)
        if decision.kind.value != "hold":
            self.expected_audit[
                {
                    "advance": "rollout_step",
                    "complete": "rollout_step",
                    "promote": "promote",
                    "rollback": "auto_rollback",
                }[decision.kind.value]
            ] += 1
        if decision.kind.value == "hold":  # the same observation again: nothing changes
            self.rollouts._commit_decision(before, after, decision)
            assert self.rollouts.get(T, A, rollout_id) == after
            return
        with pytest.raises(PolicyHubError, match="concurrent"):
            self.rollouts._commit_decision(before, after, decision)

    @rule()
    def abort(self) -> None:
        rollout_id = self.registry.deployment(T, A).active_rollout_id
        if rollout_id and self._try(lambda: self.rollouts.abort(ADMIN, A, rollout_id, "stop")):
            self.expected_audit["abort"] += 1
            self._ended_without_promotion(rollout_id)

    @rule()
    def alarm_fires(self) -> None:
        rollout_id = self.registry.deployment(T, A).active_rollout_id
        if rollout_id and self._try(
            lambda: self.rollouts.alarm_rollback(T, A, rollout_id, "policyhub-rollout-x-success")
        ):
            self.expected_audit["auto_rollback"] += 1
            self._ended_without_promotion(rollout_id)

    @rule(i=st.integers(0, 50))
    def rollback(self, i: int) -> None:
        v = self._pick(i)
        active = self.registry.deployment(T, A).active_rollout_id
        if v and self._try(lambda: self.rollouts.rollback(ADMIN, A, v, "incident")):
            self.expected_audit["rollback"] += 1
            if active:
                self.expected_audit["abort"] += 1
                self._ended_without_promotion(active)

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def one_production_and_at_most_one_active_rollout(self) -> None:
        d = self.registry.deployment(T, A)
        versions = self.store.versions.get((T, A), {})
        production = [v for v in versions.values() if v.status == PolicyStatus.PRODUCTION]
        if d.production_version is None:
            assert production == []
        else:
            assert [v.version for v in production] == [d.production_version]
            assert d.production is not None and d.production.version == d.production_version
            self.ever_production.add(d.production_version)
        rollouts = self.store.rollouts.get((T, A), {}).values()
        active = [r for r in rollouts if not r.is_terminal]
        assert [r.rollout_id for r in active] == (
            [d.active_rollout_id] if d.active_rollout_id else []
        )
        if d.active_rollout_id is None:
            assert d.rollout_route is None

    @invariant()
    def inconclusive_never_advances_and_nan_is_never_healthy(self) -> None:
        for r in self.store.rollouts.get((T, A), {}).values():
            for s in r.steps:
                if s.verdict is Verdict.HEALTHY and s.stage is Stage.CANARY:
                    assert s.candidate is not None
                    assert s.candidate.requests >= CONFIG["min_samples_per_step"]
                    assert s.candidate.latency_p95_ms is not None
                    assert math.isfinite(s.candidate.latency_p95_ms)

    @invariant()
    def earlier_production_versions_stay_available(self) -> None:
        """Retired (a rollback target), or rolled back out of production by its rollout's
        watch; such a version may be in a rollout again (decision 099), never a candidate."""
        d = self.registry.deployment(T, A)
        versions = self.store.versions.get((T, A), {})
        rollout = self.store.rollouts.get((T, A), {}).get(d.active_rollout_id or "")
        for v in self.ever_production - {d.production_version}:
            allowed = {PolicyStatus.RETIRED, PolicyStatus.ROLLED_BACK}
            if rollout is not None and rollout.candidate_version == v:
                allowed |= {PolicyStatus.SHADOW, PolicyStatus.CANARY}
            assert versions[v].status in allowed, v

    @invariant()
    def each_version_says_how_its_last_rollout_ended(self) -> None:
        """Decision 099: the record matches the model, and the status agrees with it."""
        for v in self.store.versions.get((T, A), {}).values():
            last = v.last_rollout
            expected = self.last_rollout.get(v.version)
            assert (None if last is None else (last.outcome.value, last.rollout_id)) == expected
            if last is not None:
                assert (last.promote_again is PromoteAgain.NEEDS_FORCE) == (
                    last.outcome.value == "unhealthy"
                )
            if v.status is PolicyStatus.ROLLED_BACK:
                assert last is not None and last.outcome.value != "aborted", v
            if v.status is PolicyStatus.CANDIDATE:
                assert last is None or last.outcome.value == "aborted", v
            if v.status in (PolicyStatus.PRODUCTION, PolicyStatus.RETIRED):
                assert last is None, v

    @invariant()
    def the_rollback_list_holds_only_retired_versions(self) -> None:
        d = self.registry.deployment(T, A)
        versions = self.store.versions.get((T, A), {})
        for p in d.previous:
            assert p.version != d.production_version
            assert versions[p.version].status is PolicyStatus.RETIRED, p.version

    @invariant()
    def every_rollout_event_points_the_way_traffic_moved(self) -> None:
        """Toward the candidate (start, step, promote) or away from it (rollback, abort),
        whichever path wrote it: the controller, an alarm or an admin."""
        rollouts = self.store.rollouts.get((T, A), {})
        away = {AuditAction.AUTO_ROLLBACK, AuditAction.ABORT}
        for e in self.store.audit.get(T, []):
            r = rollouts.get(e.details.get("rollout_id", ""))
            if r is None:
                continue
            toward = (r.baseline_version, r.candidate_version)
            expected = toward[::-1] if e.action in away else toward
            assert (e.from_version, e.to_version) == expected, e

    @invariant()
    def every_change_is_audited(self) -> None:
        actual = Counter(e.action.value for e in self.store.audit.get(T, []))
        for action, count in self.expected_audit.items():
            if action:
                assert actual[action] == count, (action, actual, self.expected_audit)


TestPipeline = Pipeline.TestCase
TestPipeline.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

"""Promoting again after a rollout that did not promote (decision 099), through the services
on the in-memory fakes: abort, inconclusive and unhealthy controller rollbacks, the alarm path,
the manual rollback's abort; what the version record says and what promote then allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.health import Health, HealthWindow, VariantHealth
from policyhub.domain.rollout import Rollout, RolloutStrategy
from policyhub.domain.versions import FeatureSchema, PolicyStatus, PolicyVersion, RolloutOutcome
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


def _variant(kind: str, candidate: bool) -> VariantHealth:
    if kind == "thin":  # too few samples: inconclusive
        return VariantHealth(
            requests=5, feedback_successes=5, latency_p95_ms=20.0, latency_p50_ms=10.0
        )
    bad = kind == "failing" and candidate
    return VariantHealth(
        requests=2000,
        feedback_successes=1400 if bad else 1990,
        feedback_failures=600 if bad else 10,
        latency_p95_ms=20.0,
        latency_p50_ms=10.0,
        shadow_decisions=2000 if candidate else 0,
    )


class ScriptedHealth:
    kind = "healthy"

    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
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


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
        self.registry = Registry(
            self.store, MemoryArtifactStore(), self.clock, lambda data, schema: None, 1 << 20
        )
        self.health = ScriptedHealth()
        self.rollouts = RolloutService(
            self.store, self.registry, lambda: self.health, Nothing(), self.clock, Nothing()
        )
        for seed in range(3):
            self.registry.register(ADMIN, T, A, random_linear_policy(3, seed=seed), SCHEMA)
        self.registry.promote_immediate(ADMIN, A, "v1.0.0", None)

    def version(self, v: str = "v1.0.1") -> PolicyVersion:
        return self.registry.version(T, A, v)

    def start(self, v: str = "v1.0.1", force: bool = False) -> Rollout:
        return self.rollouts.start(ADMIN, A, v, RolloutStrategy.CANARY, None, CONFIG, force=force)

    def run(self, rollout: Rollout, kind: str, seconds: int = 61, looks: int = 20) -> Rollout:
        """The controller looks every `seconds` with `kind` health until the rollout ends."""
        self.health.kind = kind
        for _ in range(looks):
            self.clock.current += timedelta(seconds=seconds)
            if self.rollouts.tick(T, A, rollout.rollout_id).done:
                break
        return self.rollouts.get(T, A, rollout.rollout_id)

    def last_audit(self, action: AuditAction) -> AuditEvent:
        return [e for e in self.store.audit[T] if e.action is action][-1]


@pytest.fixture
def world() -> World:
    return World()


def test_an_aborted_candidate_is_a_candidate_again_and_promotes_without_force(
    world: World,
) -> None:
    first = world.start()
    world.rollouts.abort(ADMIN, A, first.rollout_id, "wrong build")
    v = world.version()
    assert v.status is PolicyStatus.CANDIDATE
    assert v.last_rollout is not None
    assert (v.last_rollout.rollout_id, v.last_rollout.outcome, v.last_rollout.reason) == (
        first.rollout_id,
        RolloutOutcome.ABORTED,
        "aborted: wrong build",
    )
    assert v.last_rollout.promote_again.value == "allowed"
    again = world.start()
    assert world.version().status is PolicyStatus.CANARY
    assert "force" not in world.last_audit(AuditAction.ROLLOUT_START).details
    assert again.rollout_id != first.rollout_id


def test_a_manual_rollback_during_a_rollout_returns_its_candidate_too(world: World) -> None:
    world.registry.promote_immediate(ADMIN, A, "v1.0.2", None)  # v1.0.0 is now retired
    world.start("v1.0.1")
    done = world.rollouts.rollback(ADMIN, A, "v1.0.0", "incident")
    assert done.aborted_rollout_id is not None
    v = world.version("v1.0.1")
    assert v.status is PolicyStatus.CANDIDATE
    assert v.last_rollout is not None and v.last_rollout.outcome is RolloutOutcome.ABORTED
    assert v.last_rollout.rollout_id == done.aborted_rollout_id
    world.registry.promote_immediate(ADMIN, A, "v1.0.1", None)
    assert world.version("v1.0.1").last_rollout is None, "a promotion clears the record"


def test_an_inconclusive_rollback_may_be_promoted_again_without_force(world: World) -> None:
    ended = world.run(world.start(), "thin")
    assert ended.state.value == "rolled_back"
    v = world.version()
    assert v.status is PolicyStatus.ROLLED_BACK
    assert v.last_rollout is not None
    assert v.last_rollout.outcome is RolloutOutcome.INCONCLUSIVE
    assert v.last_rollout.promote_again.value == "allowed"
    assert v.last_rollout.reason == ended.outcome_reason and "max_step_seconds" in (
        ended.outcome_reason or ""
    )
    # Promoted again, this time with traffic: the rollout promotes it and clears the record.
    final = world.run(world.start(), "healthy")
    assert final.state.value == "promoted"
    v = world.version()
    assert v.status is PolicyStatus.PRODUCTION and v.last_rollout is None


def test_an_unhealthy_rollback_needs_force_to_promote_again(world: World) -> None:
    ended = world.run(world.start(), "failing")
    v = world.version()
    assert v.status is PolicyStatus.ROLLED_BACK and v.last_rollout is not None
    assert v.last_rollout.outcome is RolloutOutcome.UNHEALTHY
    assert v.last_rollout.promote_again.value == "needs_force"

    def immediate() -> object:
        return world.registry.promote_immediate(ADMIN, A, "v1.0.1", None)

    for attempt in (world.start, immediate):
        with pytest.raises(PolicyHubError) as err:
            attempt()
        assert err.value.code == "not_promotable" and err.value.status == 409
        assert ended.rollout_id in err.value.message and "unhealthy" in err.value.message
        assert '"force": true' in err.value.message
    assert world.version().status is PolicyStatus.ROLLED_BACK, "a refused promote changes nothing"
    forced = world.start(force=True)
    assert world.version().status is PolicyStatus.CANARY
    start = world.last_audit(AuditAction.ROLLOUT_START)
    assert start.details["rollout_id"] == forced.rollout_id and start.details["force"] is True


def test_aborting_a_forced_retry_keeps_the_unhealthy_verdict(world: World) -> None:
    first = world.run(world.start(), "failing")
    retry = world.start(force=True)
    world.rollouts.abort(ADMIN, A, retry.rollout_id, "changed my mind")
    v = world.version()
    assert v.status is PolicyStatus.ROLLED_BACK
    assert v.last_rollout is not None and v.last_rollout.rollout_id == first.rollout_id
    with pytest.raises(PolicyHubError):
        world.start()


def test_the_alarm_path_is_unhealthy_and_needs_force(world: World) -> None:
    rollout = world.start()
    world.rollouts.alarm_rollback(T, A, rollout.rollout_id, "policyhub-rollout-x-success")
    v = world.version()
    assert v.status is PolicyStatus.ROLLED_BACK and v.last_rollout is not None
    assert v.last_rollout.outcome is RolloutOutcome.UNHEALTHY
    assert "CloudWatch alarm policyhub-rollout-x-success" in (v.last_rollout.reason or "")
    with pytest.raises(PolicyHubError) as err:
        world.registry.promote_immediate(ADMIN, A, "v1.0.1", None)
    assert rollout.rollout_id in err.value.message
    done = world.registry.promote_immediate(ADMIN, A, "v1.0.1", "fixed the alarm", force=True)
    assert done.version == "v1.0.1"
    v = world.version()
    assert v.status is PolicyStatus.PRODUCTION and v.last_rollout is None
    promote = world.last_audit(AuditAction.PROMOTE)
    assert promote.details["strategy"] == "immediate" and promote.details["force"] is True


def test_a_rollback_in_the_watch_marks_the_once_production_candidate(world: World) -> None:
    rollout = world.start()
    world.health.kind = "healthy"
    while world.rollouts.get(T, A, rollout.rollout_id).state.value != "promoted":
        world.clock.current += timedelta(seconds=61)
        world.rollouts.tick(T, A, rollout.rollout_id)
    assert world.version().status is PolicyStatus.PRODUCTION
    ended = world.run(world.rollouts.get(T, A, rollout.rollout_id), "failing")
    assert ended.state.value == "rolled_back"
    assert world.registry.deployment(T, A).production_version == "v1.0.0"
    v = world.version()
    assert v.status is PolicyStatus.ROLLED_BACK and v.last_rollout is not None
    assert v.last_rollout.outcome is RolloutOutcome.UNHEALTHY
    assert "post-promotion watch" in (v.last_rollout.reason or "")


def test_an_alarm_that_loses_a_write_race_with_a_controller_look_still_rolls_back(
    world: World,
) -> None:
    rollout = world.start()
    world.health.kind = "thin"
    commit = world.store.commit
    raced: list[bool] = []

    def controller_looks_first(transition: Any) -> None:
        if not raced:  # the controller's hold lands between the alarm's read and its write
            raced.append(True)
            world.clock.current += timedelta(seconds=1)
            world.rollouts.tick(T, A, rollout.rollout_id)
        commit(transition)

    world.store.commit = controller_looks_first  # type: ignore[method-assign]
    after = world.rollouts.alarm_rollback(T, A, rollout.rollout_id, "policyhub-rollout-x-p95")
    assert raced and after is not None and after.state.value == "rolled_back"
    assert world.rollouts.get(T, A, rollout.rollout_id).state.value == "rolled_back"
    assert world.last_audit(AuditAction.AUTO_ROLLBACK).details["alarm"] == (
        "policyhub-rollout-x-p95")


def test_an_admin_rollback_wins_over_a_controller_that_holds_between_every_read_and_write(
    world: World,
) -> None:
    """Under load a controller that looks every fraction of a second lands a hold inside every
    attempt of an admin's rollback; holds keep the revision, so the rollback still commits."""
    world.registry.promote_immediate(ADMIN, A, "v1.0.2", None)  # v1.0.0 is now retired
    rollout = world.start("v1.0.1")
    world.health.kind = "thin"
    commit = world.store.commit
    holds: list[str] = []

    def controller_looks_first(transition: Any) -> None:
        if transition.audit and transition.audit[-1].action is AuditAction.ROLLBACK:
            world.clock.current += timedelta(seconds=1)
            holds.append(world.rollouts.tick(T, A, rollout.rollout_id).decision or "")
        commit(transition)

    world.store.commit = controller_looks_first  # type: ignore[method-assign]
    done = world.rollouts.rollback(ADMIN, A, "v1.0.0", "incident")
    assert holds == ["hold"], "one attempt, though a hold landed inside it"
    assert done.version == "v1.0.0" and done.aborted_rollout_id == rollout.rollout_id
    assert world.rollouts.get(T, A, rollout.rollout_id).state.value == "aborted"
    assert world.registry.deployment(T, A).production_version == "v1.0.0"


class Refuses:
    def start(self, *args: Any) -> None:
        raise RuntimeError("StartExecution refused")


def test_a_workflow_that_cannot_start_leaves_no_rollout_active_or_says_how_to_end_it(
    world: World,
) -> None:
    """The promote's 503 says the rollout was cancelled when it was, and when the store failed
    too (so it could not be), which rollout to abort before retrying."""
    world.rollouts._workflows = Refuses()
    with pytest.raises(PolicyHubError) as err:
        world.start()
    assert err.value.code == "service_unavailable" and "was cancelled" in err.value.message
    assert world.registry.deployment(T, A).active_rollout_id is None
    assert world.version().status is PolicyStatus.CANDIDATE

    commit = world.store.commit
    writes: list[Any] = []

    def store_fails_after_the_start(transition: Any) -> None:
        writes.append(transition)
        if len(writes) > 1:
            raise PolicyHubError("service_unavailable", "the store is down")
        commit(transition)

    world.store.commit = store_fails_after_the_start  # type: ignore[method-assign]
    with pytest.raises(PolicyHubError) as err:
        world.start()
    active = world.registry.deployment(T, A).active_rollout_id
    assert active is not None and "could not be cancelled" in err.value.message
    assert f"/v1/policies/rollouts/{active}/abort" in err.value.message

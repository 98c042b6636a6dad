"""A rollback must not break serving (decision 105): a target whose feature schema differs from
production's (what clients send now) is refused with 409 naming both schemas, unless forced,
and the forced rollback is audited with force and the schema change. The rule, then both
rollback paths on the in-memory fakes: the registry's (no rollout) and the rollout service's
(a manual rollback during a rollout)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.promotion_rules import require_rollback_keeps_serving
from policyhub.domain.rollout import RolloutState, RolloutStrategy
from policyhub.domain.routing import ServedPolicy
from policyhub.domain.state_changes import move_production
from policyhub.domain.versions import ArtifactRef, FeatureSchema, PolicyStatus, PolicyVersion
from policyhub.ml.onnx_models import random_linear_policy
from policyhub.services.registry import Registry
from policyhub.services.rollouts import RolloutService
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryStore

T, A = "acme", "memory_manager"
ADMIN = Principal(T, "admin-key", Tier.PRO, Role.ADMIN)
OLD = FeatureSchema(context_dim=4, item_dim=4)
NEW = FeatureSchema(context_dim=8, item_dim=8)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _version(version: str, schema: FeatureSchema, status: PolicyStatus) -> PolicyVersion:
    return PolicyVersion(
        version=version,
        agent_type=A,
        status=status,
        created_at=T0,
        artifact=ArtifactRef(sha256="a" * 64, size_bytes=10),
        feature_schema=schema,
    )


PRODUCTION = ServedPolicy.of(_version("v1.1.1", NEW, PolicyStatus.PRODUCTION))


def test_a_target_with_production_features_is_restored_without_force() -> None:
    target = _version("v1.1.0", NEW, PolicyStatus.RETIRED)
    assert require_rollback_keeps_serving(PRODUCTION, target) == {}
    assert require_rollback_keeps_serving(PRODUCTION, target, force=True) == {"force": True}


def test_a_target_with_other_features_is_409_naming_both_schemas() -> None:
    with pytest.raises(PolicyHubError) as err:
        require_rollback_keeps_serving(PRODUCTION, _version("v1.0.0", OLD, PolicyStatus.RETIRED))
    assert (err.value.code, err.value.status) == ("feature_schema_mismatch", 409)
    message = err.value.message
    assert "v1.0.0 expects context_dim 4, item_dim 4" in message
    assert "production v1.1.1 and its clients use 8/8" in message
    assert "feature_dimension_mismatch" in message and '"force": true' in message
    assert err.value.details[0].field == "body.version"


def test_force_restores_it_and_says_what_changed() -> None:
    details = require_rollback_keeps_serving(
        PRODUCTION, _version("v1.0.0", OLD, PolicyStatus.RETIRED), force=True
    )
    assert details == {
        "force": True,
        "feature_schema_change": {
            "from": {"context_dim": 8, "item_dim": 8},
            "to": {"context_dim": 4, "item_dim": 4},
        },
    }


def test_the_rollback_list_keeps_each_targets_feature_schema() -> None:
    leaving = _version("v1.0.0", OLD, PolicyStatus.PRODUCTION)
    target = _version("v1.1.0", NEW, PolicyStatus.CANDIDATE)
    current = Deployment(agent_type=A, production_version="v1.0.0", promoted_at=T0)
    moved = move_production(current, target, leaving, T0)
    (previous,) = moved.deployment.previous
    assert (previous.version, previous.feature_schema) == ("v1.0.0", OLD)


class Nothing:
    """No workflow to start, no alarms to keep."""

    def start(self, *args: object) -> None: ...
    def create(self, *args: object) -> None: ...
    def delete(self, *args: object) -> None: ...


class World:
    """v1.0.0 (4/4) served first, then v1.1.0 (8/8); v1.1.1 (8/8) is a candidate."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.registry = Registry(
            self.store, MemoryArtifactStore(), FixedClock(T0), lambda data, schema: None, 1 << 20
        )
        nothing = Nothing()
        self.rollouts = RolloutService(
            self.store,
            self.registry,
            lambda: None,  # type: ignore[arg-type,return-value]  # no step is judged here
            nothing,
            FixedClock(T0),
            nothing,
        )
        for i, schema in enumerate((OLD, NEW, NEW)):
            self.registry.register(
                ADMIN, T, A, random_linear_policy(schema.input_dim, seed=i), schema
            )
        self.registry.promote_immediate(ADMIN, A, "v1.0.0", None)
        self.registry.promote_immediate(ADMIN, A, "v1.1.0", None)

    def production(self) -> str | None:
        return self.registry.deployment(T, A).production_version

    def last(self, action: AuditAction) -> AuditEvent:
        return [e for e in self.store.audit[T] if e.action is action][-1]


@pytest.fixture
def world() -> World:
    return World()


def test_the_registry_refuses_a_rollback_that_would_break_serving(world: World) -> None:
    revision = world.registry.deployment(T, A).revision
    with pytest.raises(PolicyHubError) as err:
        world.rollouts.rollback(ADMIN, A, "v1.0.0", "incident")
    assert err.value.code == "feature_schema_mismatch"
    assert "production v1.1.0 and its clients use 8/8" in err.value.message
    assert world.production() == "v1.1.0"
    assert world.registry.deployment(T, A).revision == revision, "nothing was written"


def test_a_forced_rollback_is_restored_and_audited_with_force(world: World) -> None:
    done = world.rollouts.rollback(ADMIN, A, "v1.0.0", "clients moved back", force=True)
    assert (done.version, done.previous_version) == ("v1.0.0", "v1.1.0")
    assert world.production() == "v1.0.0"
    event = world.last(AuditAction.ROLLBACK)
    assert event.details["force"] is True
    assert event.details["feature_schema_change"] == {
        "from": {"context_dim": 8, "item_dim": 8},
        "to": {"context_dim": 4, "item_dim": 4},
    }


def test_a_rollback_during_a_rollout_follows_the_same_rule(world: World) -> None:
    rollout = world.rollouts.start(ADMIN, A, "v1.1.1", RolloutStrategy.CANARY, None, None)
    with pytest.raises(PolicyHubError) as err:
        world.rollouts.rollback(ADMIN, A, "v1.0.0", "incident")
    assert err.value.code == "feature_schema_mismatch"
    assert world.registry.deployment(T, A).active_rollout_id == rollout.rollout_id
    # Back to production itself stays allowed: the rollout is aborted, production serves on.
    done = world.rollouts.rollback(ADMIN, A, "v1.1.0", "incident")
    assert done.version == "v1.1.0" and done.aborted_rollout_id == rollout.rollout_id
    assert world.rollouts.get(T, A, rollout.rollout_id).state is RolloutState.ABORTED


def test_a_forced_rollback_during_a_rollout_aborts_it_and_is_audited(world: World) -> None:
    rollout = world.rollouts.start(ADMIN, A, "v1.1.1", RolloutStrategy.CANARY, None, None)
    done = world.rollouts.rollback(ADMIN, A, "v1.0.0", "incident", force=True)
    assert (done.version, done.aborted_rollout_id) == ("v1.0.0", rollout.rollout_id)
    assert world.production() == "v1.0.0"
    event = world.last(AuditAction.ROLLBACK)
    assert event.details["force"] is True and "feature_schema_change" in event.details

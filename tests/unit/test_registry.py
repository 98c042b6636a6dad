from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import AuditAction
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.versions import FeatureSchema, PolicyStatus
from policyhub.ml.onnx_models import random_linear_policy
from policyhub.ml.validation import validate_policy_artifact
from policyhub.services.registry import Registry
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryStore

SCHEMA = FeatureSchema(context_dim=2, item_dim=2)
ADMIN = Principal("acme", "key1", Tier.PRO, Role.ADMIN)
AGENT = "memory_manager"


def _validate(data: bytes, schema: FeatureSchema) -> None:
    validate_policy_artifact(data, schema.context_dim, schema.item_dim, 1 << 20)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def registry(store: MemoryStore) -> Registry:
    return Registry(
        store,
        MemoryArtifactStore(),
        FixedClock(datetime(2026, 11, 1, tzinfo=UTC)),
        _validate,
        1 << 20,
    )


def _register(registry: Registry, n: int = 1, schema: FeatureSchema = SCHEMA) -> list[str]:
    return [
        registry.register(
            ADMIN, "acme", AGENT, random_linear_policy(schema.input_dim, seed=i), schema
        ).version
        for i in range(n)
    ]


def test_registry_assigns_versions_and_counts_them(registry: Registry) -> None:
    assert _register(registry, 3) == ["v1.0.0", "v1.0.1", "v1.0.2"]
    assert _register(registry, 1, FeatureSchema(context_dim=3, item_dim=2)) == ["v1.1.0"]
    d = registry.deployment("acme", AGENT)
    assert d.total_versions == 4 and d.latest_version == "v1.1.0"


def test_register_refuses_an_artifact_that_is_not_a_policy(registry: Registry) -> None:
    with pytest.raises(PolicyHubError) as err:
        registry.register(ADMIN, "acme", AGENT, b"not onnx", SCHEMA)
    assert err.value.code == "invalid_artifact"
    assert registry.deployment("acme", AGENT).total_versions == 0


def test_register_refuses_a_model_of_another_width(registry: Registry) -> None:
    with pytest.raises(PolicyHubError) as err:
        registry.register(ADMIN, "acme", AGENT, random_linear_policy(9), SCHEMA)
    assert err.value.status == 422


def test_promote_moves_production_and_retires_the_previous(
    registry: Registry, store: MemoryStore
) -> None:
    v1, v2 = _register(registry, 2)
    registry.promote_immediate(ADMIN, AGENT, v1, None)
    done = registry.promote_immediate(ADMIN, AGENT, v2, "better")
    assert done.previous_version == v1
    assert registry.version("acme", AGENT, v1).status == PolicyStatus.RETIRED
    assert registry.version("acme", AGENT, v2).status == PolicyStatus.PRODUCTION
    d = registry.deployment("acme", AGENT)
    assert d.production_version == v2 and [p.version for p in d.previous] == [v1]
    actions = [e.action for e in store.audit["acme"]]
    assert actions.count(AuditAction.PROMOTE) == 2


@pytest.mark.parametrize(
    ("setup", "code"), [("production", "already_production"), ("retired", "not_promotable")]
)
def test_promote_refuses_what_is_not_a_candidate(registry: Registry, setup: str, code: str) -> None:
    v1, v2 = _register(registry, 2)
    registry.promote_immediate(ADMIN, AGENT, v1, None)
    if setup == "retired":
        registry.promote_immediate(ADMIN, AGENT, v2, None)
    with pytest.raises(PolicyHubError) as err:
        registry.promote_immediate(ADMIN, AGENT, v1, None)
    assert err.value.code == code
    assert err.value.status == 409


def test_rollback_restores_a_retired_version_with_audit(
    registry: Registry, store: MemoryStore
) -> None:
    v1, v2 = _register(registry, 2)
    registry.promote_immediate(ADMIN, AGENT, v1, None)
    registry.promote_immediate(ADMIN, AGENT, v2, None)
    done = registry.rollback(ADMIN, AGENT, v1, "regression in retrieval quality")
    assert (done.version, done.previous_version) == (v1, v2)
    assert registry.deployment("acme", AGENT).production_version == v1
    assert registry.version("acme", AGENT, v2).status == PolicyStatus.RETIRED
    last = store.audit["acme"][-1]
    assert (last.action, last.from_version, last.to_version, last.reason, last.actor) == (
        AuditAction.ROLLBACK,
        v2,
        v1,
        "regression in retrieval quality",
        "key1",
    )


def test_rollback_refuses_a_version_that_never_served(registry: Registry) -> None:
    v1, v2 = _register(registry, 2)
    registry.promote_immediate(ADMIN, AGENT, v1, None)
    with pytest.raises(PolicyHubError) as err:
        registry.rollback(ADMIN, AGENT, v2, None)
    assert err.value.code == "not_rollbackable"


def test_unknown_version_is_404(registry: Registry) -> None:
    with pytest.raises(PolicyHubError) as err:
        registry.version("acme", AGENT, "v9.9.9")
    assert err.value.status == 404


def test_a_stale_transition_is_refused_as_concurrent_change(
    registry: Registry, store: MemoryStore
) -> None:
    v1, v2 = _register(registry, 2)
    stale = registry.deployment("acme", AGENT)
    registry.promote_immediate(ADMIN, AGENT, v1, None)
    from policyhub.domain.state_changes import move_production, transition

    moved = move_production(stale, registry.version("acme", AGENT, v2), None, datetime.now(UTC))
    with pytest.raises(PolicyHubError) as err:
        store.commit(transition("acme", stale, moved))
    assert err.value.code == "concurrent_change"
    assert registry.deployment("acme", AGENT).production_version == v1


def test_tenants_do_not_see_each_other(registry: Registry) -> None:
    _register(registry, 2)
    assert registry.list_versions("other", AGENT, None, 10, None).items == []
    with pytest.raises(PolicyHubError):
        registry.version("other", AGENT, "v1.0.0")

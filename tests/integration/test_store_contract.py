"""One contract for the registry's stores: the in-memory fakes and DynamoDB on moto.

Every test runs against both `tests.support.fakes` and the DynamoDB and S3 adapters on moto's
mock_aws (started once for the module; each test gets its own table and bucket, created by the
local stack's own `create_all`). DynamoDB is the reference: where the fake differs, the fake is
wrong (decision 101).
"""

from __future__ import annotations

import ast
import itertools
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from infra.local.resources import create_all
from policyhub.adapters.dynamo_jobs import DynamoJobStore
from policyhub.adapters.dynamo_store import DynamoStore
from policyhub.adapters.s3_artifacts import S3ArtifactStore
from policyhub.domain.access import Role, Tier
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.constraints import Constraints
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.experiment import ArmSpec, Experiment, ExperimentState
from policyhub.domain.keys import ApiKey
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutState,
    RolloutStep,
    RolloutStrategy,
    Stage,
)
from policyhub.domain.routing import (
    ExperimentArm,
    ExperimentRoute,
    RolloutRoute,
    ServedPolicy,
    ServingView,
)
from policyhub.domain.training import ActiveJob, JobStatus, JobTrigger, TrainingJob
from policyhub.domain.transition import ExperimentWrite, RolloutWrite, Transition, VersionUpdate
from policyhub.domain.versions import ArtifactRef, FeatureSchema, PolicyStatus, PolicyVersion
from policyhub.ports import ArtifactStore, KeyStore, Page, PageKey, PolicyStore
from policyhub.resources import ARTIFACT_BUCKET, INTERACTION_BUCKET, REGISTRY_TABLE
from policyhub.services.training import JobStore
from tests.support.fakes import MemoryArtifactStore, MemoryJobStore, MemoryStore

pytestmark = pytest.mark.integration

T, A, B = "acme", "memory_manager", "other_agent"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
SCHEMA = FeatureSchema(context_dim=2, item_dim=3)
M = TypeVar("M")


class Store(PolicyStore, KeyStore, Protocol):
    """What DynamoStore and MemoryStore both are."""


@dataclass
class Backend:
    store: Store
    jobs: JobStore
    artifacts: ArtifactStore


_fresh = itertools.count()


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        memory = MemoryStore()
        return Backend(memory, MemoryJobStore(memory), MemoryArtifactStore())
    request.getfixturevalue("embedded_aws_for_module")
    n = next(_fresh)
    names = {
        REGISTRY_TABLE.env_var: f"contract-registry-{n}",
        ARTIFACT_BUCKET.env_var: f"contract-artifacts-{n}",
        INTERACTION_BUCKET.env_var: f"contract-interactions-{n}",
    }
    create_all(names)
    table = names[REGISTRY_TABLE.env_var]
    return Backend(
        DynamoStore(table), DynamoJobStore(table), S3ArtifactStore(names[ARTIFACT_BUCKET.env_var])
    )


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


# ---- records -----------------------------------------------------------------------------
def _version(
    v: str, status: PolicyStatus = PolicyStatus.CANDIDATE, agent: str = A
) -> PolicyVersion:
    return PolicyVersion(
        version=v,
        agent_type=agent,
        status=status,
        created_at=NOW,
        artifact=ArtifactRef(sha256=v[1:].replace(".", "").rjust(64, "a")[:64], size_bytes=10),
        feature_schema=SCHEMA,
    )


def _served(v: str) -> ServedPolicy:
    return ServedPolicy.of(_version(v))


def _deployment(revision: int, production: str | None = "v1.0.0", agent: str = A) -> Deployment:
    return Deployment(
        agent_type=agent,
        revision=revision,
        production_version=production,
        production=_served(production) if production else None,
        promoted_at=NOW if production else None,
        latest_version=production,
        total_versions=1 if production else 0,
    )


_event_ids = iter(range(1_000_000))


def _audit(
    at: datetime = NOW, agent: str | None = A, event_id: str | None = None, reason: str = "test"
) -> AuditEvent:
    return AuditEvent(
        event_id=event_id or f"ev{next(_event_ids):06d}",
        at=at,
        actor="key1",
        action=AuditAction.PROMOTE,
        agent_type=agent,
        reason=reason,
    )


def _rollout_id(n: int) -> str:
    return f"ro_{int((NOW + timedelta(seconds=n)).timestamp() * 1000):013d}abc{n:03d}"


def _rollout(n: int, revision: int = 1, agent: str = A) -> Rollout:
    return Rollout(
        rollout_id=_rollout_id(n),
        tenant_id=T,
        agent_type=agent,
        candidate_version="v1.0.1",
        baseline_version="v1.0.0",
        strategy=RolloutStrategy.SAFE,
        state=RolloutState.SHADOW,
        traffic_percent=0,
        step_index=0,
        started_at=NOW,
        steps=(RolloutStep(stage=Stage.SHADOW, traffic_percent=0, started_at=NOW),),
        config=PipelineConfig(),
        revision=revision,
    )


def _experiment(n: int, revision: int = 1) -> Experiment:
    return Experiment(
        experiment_id=f"ex_{n:013d}abcdef",
        agent_type=A,
        name=f"experiment {n}",
        state=ExperimentState.RUNNING,
        variants=[
            ArmSpec(version="v1.0.0", traffic_percent=50),
            ArmSpec(version="v1.0.1", traffic_percent=50),
        ],
        started_at=NOW,
        ends_at=None,
        revision=revision,
    )


def _t(
    expected_revision: int = 0,
    deployment: Deployment | None = None,
    *,
    tenant: str = T,
    agent: str = A,
    version_updates: tuple[VersionUpdate, ...] = (),
    new_versions: tuple[PolicyVersion, ...] = (),
    audit: tuple[AuditEvent, ...] = (),
    rollouts: tuple[RolloutWrite, ...] = (),
    experiments: tuple[ExperimentWrite, ...] = (),
) -> Transition:
    return Transition(
        tenant_id=tenant,
        agent_type=agent,
        expected_revision=expected_revision,
        deployment=deployment,
        version_updates=version_updates,
        new_versions=new_versions,
        audit=audit,
        rollouts=rollouts,
        experiments=experiments,
    )


def _conflict(action: Callable[[], object]) -> PolicyHubError:
    with pytest.raises(PolicyHubError) as err:
        action()
    assert err.value.code == "concurrent_change", err.value
    return err.value


def _walk(list_page: Callable[[PageKey | None], Page[M]], limit: int) -> list[list[M]]:
    """Every page of a listing, following `next_key` until it is None."""
    pages: list[list[M]] = []
    start: PageKey | None = None
    while True:
        page = list_page(start)
        assert len(page.items) <= limit
        pages.append(page.items)
        if page.next_key is None:
            return pages
        assert len(page.items) == limit, "a page that says there is more is full"
        start = page.next_key
        assert len(pages) < 100


def _everything(store: Store) -> dict[str, Any]:
    """Every record the tests write, read back through the port."""
    return {
        "deployment": store.get_deployment(T, A),
        "versions": store.list_versions(T, A, None, 1000, None).items,
        "audit": store.list_audit(T, A, 1000, None).items,
        "rollouts": store.list_rollouts(T, A, 1000, None).items,
        "experiments": [store.get_experiment(T, A, _experiment(n).experiment_id) for n in (1, 2)],
        "view": store.get_serving_view(T, A),
        "constraints": store.get_constraints_revision(T, A),
    }


def _seed(store: Store) -> None:
    """Deployment at revision 1, v0.9.0 retired, v1.0.0 in production, v1.0.1 candidate, a
    rollout at 1 and an experiment at 1."""
    store.commit(
        _t(
            0,
            _deployment(1),
            new_versions=(
                _version("v0.9.0", PolicyStatus.RETIRED),
                _version("v1.0.0", PolicyStatus.PRODUCTION),
                _version("v1.0.1"),
            ),
            rollouts=(RolloutWrite(_rollout(1), None),),
            experiments=(ExperimentWrite(_experiment(1), None),),
            audit=(_audit(NOW, event_id="seed-0"), _audit(NOW, event_id="seed-1")),
        )
    )


# ---- reads of nothing --------------------------------------------------------------------
def test_an_empty_registry_reads_as_nothing(store: Store) -> None:
    assert store.get_deployment(T, A) is None
    assert store.get_version(T, A, "v1.0.0") is None
    assert store.get_rollout(T, A, _rollout_id(1)) is None
    assert store.get_experiment(T, A, "ex_1") is None
    for page in (
        store.list_versions(T, A, None, 10, None),
        store.list_versions(T, A, PolicyStatus.CANDIDATE, 10, None),
        store.list_audit(T, A, 10, None),
        store.list_rollouts(T, A, 10, None),
    ):
        assert page.items == [] and page.next_key is None
    assert store.get_serving_view(T, A) == ServingView()
    assert store.get_constraints(T, A) == Constraints()
    assert store.get_constraints_revision(T, A) == (Constraints(), 0)
    assert store.get_key("0123456789abcdef") is None
    assert store.list_keys(T) == []


# ---- commit: what it writes --------------------------------------------------------------
def test_a_commit_writes_every_part_and_reads_back_equal(store: Store) -> None:
    _seed(store)
    assert store.get_deployment(T, A) == _deployment(1)
    assert store.get_version(T, A, "v1.0.0") == _version("v1.0.0", PolicyStatus.PRODUCTION)
    assert store.get_version(T, A, "v1.0.1") == _version("v1.0.1")
    assert store.get_rollout(T, A, _rollout_id(1)) == _rollout(1)
    assert store.get_experiment(T, A, _experiment(1).experiment_id) == _experiment(1)
    assert [e.event_id for e in store.list_audit(T, A, 10, None).items] == ["seed-1", "seed-0"]


def test_the_next_commit_at_the_current_revision_replaces_what_it_names(store: Store) -> None:
    _seed(store)
    promoted = _version("v1.0.1", PolicyStatus.PRODUCTION)
    retired = _version("v1.0.0", PolicyStatus.RETIRED)
    store.commit(
        _t(
            1,
            _deployment(2, "v1.0.1"),
            version_updates=(
                VersionUpdate(promoted, PolicyStatus.CANDIDATE),
                VersionUpdate(retired, PolicyStatus.PRODUCTION),
            ),
            new_versions=(_version("v1.0.2"),),
            rollouts=(RolloutWrite(_rollout(1, revision=2), 1), RolloutWrite(_rollout(2), None)),
            experiments=(ExperimentWrite(_experiment(1, revision=2), 1),),
        )
    )
    assert store.get_deployment(T, A) == _deployment(2, "v1.0.1")
    assert store.get_version(T, A, "v1.0.1") == promoted
    assert store.get_version(T, A, "v1.0.0") == retired
    assert store.get_version(T, A, "v1.0.2") == _version("v1.0.2")
    r1 = store.get_rollout(T, A, _rollout_id(1))
    assert r1 is not None and r1.revision == 2
    assert store.get_rollout(T, A, _rollout_id(2)) == _rollout(2)
    x1 = store.get_experiment(T, A, _experiment(1).experiment_id)
    assert x1 is not None and x1.revision == 2


def test_a_transition_without_a_deployment_leaves_the_pointer_and_its_revision_alone(
    store: Store,
) -> None:
    """`deployment=None`: the pointer is neither written nor a condition (a rollout step)."""
    _seed(store)
    store.commit(_t(7, None, rollouts=(RolloutWrite(_rollout(1, revision=2), 1),)))
    assert store.get_deployment(T, A) == _deployment(1)
    r = store.get_rollout(T, A, _rollout_id(1))
    assert r is not None and r.revision == 2


def test_records_are_per_tenant_and_agent(store: Store) -> None:
    _seed(store)
    for tenant, agent in (("other", A), (T, B)):
        assert store.get_deployment(tenant, agent) is None
        assert store.get_version(tenant, agent, "v1.0.0") is None
        assert store.get_rollout(tenant, agent, _rollout_id(1)) is None
        assert store.get_experiment(tenant, agent, _experiment(1).experiment_id) is None
        assert store.list_versions(tenant, agent, None, 10, None).items == []
        assert store.list_rollouts(tenant, agent, 10, None).items == []
        assert store.get_serving_view(tenant, agent) == ServingView()
    assert store.list_audit("other", A, 10, None).items == []
    # The same records may exist for another agent: nothing collides.
    store.commit(
        _t(0, _deployment(1, agent=B), agent=B, new_versions=(_version("v1.0.0", agent=B),))
    )
    assert store.get_version(T, B, "v1.0.0") == _version("v1.0.0", agent=B)


def test_reads_are_copies_a_caller_cannot_change_the_store_without_a_commit(store: Store) -> None:
    d = _deployment(1)
    v = _version("v1.0.0")
    e = _audit()
    store.commit(_t(0, d, new_versions=(v,), audit=(e,)))
    d.total_versions = 99
    v.notes = "changed after the commit"
    e.details["x"] = 1
    read = store.get_deployment(T, A)
    assert read is not None and read.total_versions == 1
    read.total_versions = 42
    read_version = store.get_version(T, A, "v1.0.0")
    assert read_version is not None and read_version.notes is None
    read_version.notes = "changed after the read"
    assert store.get_deployment(T, A) == _deployment(1)
    assert store.get_version(T, A, "v1.0.0") == _version("v1.0.0")
    assert store.list_audit(T, A, 10, None).items[0].details == {}


# ---- commit: every condition -------------------------------------------------------------
def test_expected_revision_0_means_the_deployment_must_not_exist(store: Store) -> None:
    store.commit(_t(0, _deployment(1)))
    _conflict(lambda: store.commit(_t(0, _deployment(1, "v1.0.1"))))
    assert store.get_deployment(T, A) == _deployment(1)


def test_expected_revision_0_refuses_even_a_deployment_stored_at_revision_0(store: Store) -> None:
    """0 is "no record", not "a record whose revision is 0"."""
    store.commit(_t(0, _deployment(0, production=None)))
    _conflict(lambda: store.commit(_t(0, _deployment(1))))
    assert store.get_deployment(T, A) == _deployment(0, production=None)


@pytest.mark.parametrize("expected", [1, 2, 4])
def test_a_stale_or_future_revision_is_a_concurrent_change(store: Store, expected: int) -> None:
    store.commit(_t(0, _deployment(1)))
    store.commit(_t(1, _deployment(2)))
    store.commit(_t(2, _deployment(3)))
    _conflict(lambda: store.commit(_t(expected, _deployment(expected + 1, "v1.0.1"))))
    assert store.get_deployment(T, A) == _deployment(3)


def test_a_revision_when_no_deployment_exists_is_a_concurrent_change(store: Store) -> None:
    _conflict(lambda: store.commit(_t(1, _deployment(2))))
    assert store.get_deployment(T, A) is None


def test_a_version_whose_status_changed_is_a_concurrent_change(store: Store) -> None:
    _seed(store)
    before = _everything(store)
    update = VersionUpdate(_version("v1.0.1", PolicyStatus.PRODUCTION), PolicyStatus.SHADOW)
    _conflict(lambda: store.commit(_t(1, _deployment(2, "v1.0.1"), version_updates=(update,))))
    assert _everything(store) == before


def test_updating_a_version_that_does_not_exist_is_a_concurrent_change(store: Store) -> None:
    _seed(store)
    before = _everything(store)
    update = VersionUpdate(_version("v1.0.9", PolicyStatus.RETIRED), PolicyStatus.CANDIDATE)
    _conflict(lambda: store.commit(_t(1, _deployment(2), version_updates=(update,))))
    assert _everything(store) == before


def test_a_new_version_that_already_exists_is_a_concurrent_change(store: Store) -> None:
    _seed(store)
    before = _everything(store)
    again = _version("v1.0.1").model_copy(update={"notes": "a second registration"})
    _conflict(lambda: store.commit(_t(1, _deployment(2), new_versions=(again,))))
    assert _everything(store) == before


@pytest.mark.parametrize("expected", [None, 2, 0])
def test_a_rollout_write_over_another_revision_is_a_concurrent_change(
    store: Store, expected: int | None
) -> None:
    """None: the rollout is new but exists; 2 and 0: not the stored revision (1)."""
    _seed(store)
    before = _everything(store)
    write = RolloutWrite(_rollout(1, revision=3), expected)
    _conflict(lambda: store.commit(_t(1, _deployment(2), rollouts=(write,))))
    assert _everything(store) == before


def test_a_rollout_write_with_a_revision_where_none_exists_is_a_concurrent_change(
    store: Store,
) -> None:
    _seed(store)
    before = _everything(store)
    write = RolloutWrite(_rollout(5, revision=2), 1)
    _conflict(lambda: store.commit(_t(1, _deployment(2), rollouts=(write,))))
    assert _everything(store) == before


@pytest.mark.parametrize("expected", [None, 2])
def test_an_experiment_write_over_another_revision_is_a_concurrent_change(
    store: Store, expected: int | None
) -> None:
    _seed(store)
    before = _everything(store)
    write = ExperimentWrite(_experiment(1, revision=3), expected)
    _conflict(lambda: store.commit(_t(1, _deployment(2), experiments=(write,))))
    assert _everything(store) == before
    write = ExperimentWrite(_experiment(2, revision=2), 1)
    _conflict(lambda: store.commit(_t(1, _deployment(2), experiments=(write,))))
    assert _everything(store) == before


def test_an_audit_event_that_already_exists_is_a_concurrent_change(store: Store) -> None:
    """Audit events are written only if new (same time and id): a retried commit cannot
    record its event twice."""
    event = _audit(NOW)
    store.commit(_t(0, _deployment(1), audit=(event,)))
    before = _everything(store)
    _conflict(lambda: store.commit(_t(1, _deployment(2), audit=(event,))))
    assert _everything(store) == before
    _conflict(lambda: store.commit(_t(audit=(event,))))
    assert _everything(store) == before


@pytest.mark.parametrize(
    "failing",
    ["deployment", "version_update", "new_version", "rollout", "experiment", "audit"],
)
def test_a_failed_commit_writes_nothing(store: Store, failing: str) -> None:
    """All or nothing: one failed condition anywhere leaves every record as it was; the same
    transition with that part fixed goes through."""
    _seed(store)
    before = _everything(store)
    good: dict[str, Any] = {
        "expected_revision": 1,
        "version_updates": (
            VersionUpdate(_version("v1.0.1", PolicyStatus.PRODUCTION), PolicyStatus.CANDIDATE),
            VersionUpdate(_version("v1.0.0", PolicyStatus.RETIRED), PolicyStatus.PRODUCTION),
        ),
        "new_versions": (_version("v1.0.2"), _version("v1.1.0")),
        "rollouts": (RolloutWrite(_rollout(2), None), RolloutWrite(_rollout(1, revision=2), 1)),
        "experiments": (
            ExperimentWrite(_experiment(2), None),
            ExperimentWrite(_experiment(1, revision=2), 1),
        ),
        "audit": (_audit(NOW + timedelta(minutes=1)), _audit(NOW + timedelta(minutes=2))),
    }
    stales: dict[str, dict[str, Any]] = {
        "deployment": {"expected_revision": 0},
        "version_update": {
            "version_updates": (
                good["version_updates"][0],
                VersionUpdate(_version("v1.0.0", PolicyStatus.RETIRED), PolicyStatus.CANARY),
            )
        },
        "new_version": {"new_versions": (_version("v1.0.2"), _version("v0.9.0"))},
        "rollout": {
            "rollouts": (RolloutWrite(_rollout(2), None), RolloutWrite(_rollout(1, 2), None))
        },
        "experiment": {
            "experiments": (
                ExperimentWrite(_experiment(2), None),
                ExperimentWrite(_experiment(1, revision=2), 2),
            )
        },
        "audit": {"audit": (good["audit"][0], _audit(NOW, event_id="seed-1"))},
    }
    bad = {**good, **stales[failing]}
    _conflict(lambda: store.commit(_t(deployment=_deployment(2, "v1.0.1"), **bad)))
    assert _everything(store) == before
    store.commit(_t(deployment=_deployment(2, "v1.0.1"), **good))
    after = _everything(store)
    assert after["deployment"] == _deployment(2, "v1.0.1")
    assert len(after["versions"]) == 5 and len(after["rollouts"]) == 2
    assert len(after["audit"]) == 4 and all(after["experiments"])


def test_a_transition_of_one_item_is_conditional_too(store: Store) -> None:
    """DynamoStore sends a one-item transition as one conditional PutItem, not a transaction:
    its conditions and its errors are the same."""
    store.commit(_t(0, _deployment(1)))  # the deployment alone
    _conflict(lambda: store.commit(_t(0, _deployment(1))))
    store.commit(_t(rollouts=(RolloutWrite(_rollout(1), None),)))  # a rollout alone
    _conflict(lambda: store.commit(_t(rollouts=(RolloutWrite(_rollout(1), None),))))
    store.commit(_t(rollouts=(RolloutWrite(_rollout(1, revision=2), 1),)))
    _conflict(lambda: store.commit(_t(rollouts=(RolloutWrite(_rollout(1, revision=3), 1),))))
    store.commit(_t(new_versions=(_version("v1.0.0"),)))  # a version alone
    _conflict(lambda: store.commit(_t(new_versions=(_version("v1.0.0"),))))
    update = VersionUpdate(_version("v1.0.0", PolicyStatus.ARCHIVED), PolicyStatus.CANDIDATE)
    store.commit(_t(version_updates=(update,)))
    _conflict(lambda: store.commit(_t(version_updates=(update,))))
    store.commit(_t(experiments=(ExperimentWrite(_experiment(1), None),)))  # an experiment
    _conflict(lambda: store.commit(_t(experiments=(ExperimentWrite(_experiment(1), None),))))
    event = _audit()
    store.commit(_t(audit=(event,)))  # an audit event alone
    _conflict(lambda: store.commit(_t(audit=(event,))))
    assert store.get_deployment(T, A) == _deployment(1)
    assert store.get_version(T, A, "v1.0.0") == _version("v1.0.0", PolicyStatus.ARCHIVED)
    r = store.get_rollout(T, A, _rollout_id(1))
    assert r is not None and r.revision == 2
    assert store.get_experiment(T, A, _experiment(1).experiment_id) == _experiment(1)
    assert store.list_audit(T, A, 10, None).items == [event]


# ---- commit: requests DynamoDB refuses outright (programming errors, not races) ----------
def test_an_empty_transition_is_refused_before_it_is_sent(store: Store) -> None:
    with pytest.raises(ParamValidationError):
        store.commit(_t())


@pytest.mark.parametrize("twice", ["version", "rollout", "experiment", "audit"])
def test_a_transition_that_writes_one_record_twice_is_refused(store: Store, twice: str) -> None:
    _seed(store)
    before = _everything(store)
    cases: dict[str, dict[str, Any]] = {
        "version": {
            "new_versions": (_version("v1.0.2"),),
            "version_updates": (
                VersionUpdate(_version("v1.0.2", PolicyStatus.ARCHIVED), PolicyStatus.CANDIDATE),
            ),
        },
        "rollout": {
            "rollouts": (
                RolloutWrite(_rollout(1, revision=2), 1),
                RolloutWrite(_rollout(1, revision=3), 2),
            )
        },
        "experiment": {
            "experiments": (
                ExperimentWrite(_experiment(2), None),
                ExperimentWrite(_experiment(2, revision=2), 1),
            )
        },
        "audit": {"audit": (_audit(NOW, event_id="same"), _audit(NOW, event_id="same"))},
    }
    with pytest.raises(ClientError) as err:
        store.commit(_t(1, _deployment(2), **cases[twice]))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert _everything(store) == before


def test_a_transition_of_more_than_100_items_is_refused(store: Store) -> None:
    events = tuple(_audit(NOW + timedelta(seconds=i)) for i in range(100))
    store.commit(_t(audit=events))
    more = tuple(_audit(NOW + timedelta(hours=1, seconds=i)) for i in range(101))
    with pytest.raises(ClientError) as err:
        store.commit(_t(audit=more))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert len(store.list_audit(T, A, 1000, None).items) == 100


# ---- listings ----------------------------------------------------------------------------
VERSIONS = ["v1.0.0", "v1.0.1", "v1.0.2", "v1.1.0", "v1.9.0", "v1.10.0", "v2.0.0", "v10.0.0"]


def _status_of(v: str) -> PolicyStatus:
    return PolicyStatus.RETIRED if VERSIONS.index(v) % 3 == 0 else PolicyStatus.CANDIDATE


def _register_versions(store: Store) -> None:
    for v in VERSIONS:
        store.commit(_t(new_versions=(_version(v, _status_of(v)),)))
    store.commit(_t(new_versions=(_version("v99.0.0", agent=B),), agent=B))


@pytest.mark.parametrize("limit", [1, 2, 3, 8, 50])
def test_versions_list_newest_first_by_version_number_in_pages(store: Store, limit: int) -> None:
    _register_versions(store)
    pages = _walk(partial(store.list_versions, T, A, None, limit), limit)
    listed = [v.version for page in pages for v in page]
    assert listed == list(reversed(VERSIONS))
    assert len(pages) == max(1, -(-len(VERSIONS) // limit))


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
@pytest.mark.parametrize("status", [PolicyStatus.CANDIDATE, PolicyStatus.RETIRED])
def test_a_status_filter_fills_every_page(store: Store, limit: int, status: PolicyStatus) -> None:
    _register_versions(store)
    pages = _walk(partial(store.list_versions, T, A, status, limit), limit)
    listed = [v.version for page in pages for v in page]
    assert listed == [v for v in reversed(VERSIONS) if _status_of(v) == status]
    assert all(v.status == status for page in pages for v in page)


def test_no_next_key_when_the_last_page_is_exactly_full(store: Store) -> None:
    for v in ("v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3"):
        store.commit(_t(new_versions=(_version(v),)))
    first = store.list_versions(T, A, None, 2, None)
    assert first.next_key is not None
    second = store.list_versions(T, A, None, 2, first.next_key)
    assert [v.version for v in second.items] == ["v1.0.1", "v1.0.0"]
    assert second.next_key is None
    everything = store.list_versions(T, A, None, 4, None)
    assert len(everything.items) == 4 and everything.next_key is None


def test_audit_lists_newest_first_with_the_tenant_wide_events_in_pages(store: Store) -> None:
    """An agent's trail holds its events and the tenant's agent-less ones (API keys), newest
    first by time, then by event id; other agents' and tenants' events are not in it."""
    at = [NOW + timedelta(seconds=s) for s in range(6)]
    mine = [
        _audit(at[0], A, "e-a0"),
        _audit(at[2], A, "e-a2"),
        _audit(at[2], A, "e-b2"),  # the same second: the event id orders them
        _audit(at[5], A, "e-a5"),
    ]
    tenant_wide = [_audit(at[1], None, "e-t1"), _audit(at[4], None, "e-t4")]
    others = [_audit(at[3], B, "e-o3"), _audit(at[3], B, "e-o4")]
    store.commit(_t(audit=(mine[0], mine[1])))
    store.commit(_t(audit=(mine[2], tenant_wide[0], others[0])))
    store.commit(_t(audit=(mine[3], tenant_wide[1], others[1]), agent=B))
    store.commit(_t(audit=(_audit(at[5], A, "e-x5"),), tenant="other"))
    expected = ["e-a5", "e-t4", "e-b2", "e-a2", "e-t1", "e-a0"]
    for limit in (1, 2, 4, 6, 10):
        pages = _walk(partial(store.list_audit, T, A, limit), limit)
        assert [e.event_id for page in pages for e in page] == expected
    trail_b = [e.event_id for e in store.list_audit(T, B, 10, None).items]
    assert trail_b == ["e-t4", "e-o4", "e-o3", "e-t1"]


def test_rollouts_list_newest_first_in_pages(store: Store) -> None:
    for n in (3, 1, 4, 2, 5):
        store.commit(_t(rollouts=(RolloutWrite(_rollout(n), None),)))
    store.commit(_t(rollouts=(RolloutWrite(_rollout(9, agent=B), None),), agent=B))
    for limit in (1, 2, 5, 7):
        pages = _walk(partial(store.list_rollouts, T, A, limit), limit)
        listed = [r.rollout_id for page in pages for r in page]
        assert listed == [_rollout_id(n) for n in (5, 4, 3, 2, 1)]


# ---- the serving view --------------------------------------------------------------------
def test_the_serving_view_carries_the_pointer_routes_and_constraints(store: Store) -> None:
    rules = Constraints(max_rank_lift=2, max_items_per_source=3)
    store.put_constraints(T, A, rules, _audit(agent=A), 0)
    assert store.get_serving_view(T, A) == ServingView(constraints=rules)
    d = _deployment(1).model_copy(
        update={
            "rollout_route": RolloutRoute(
                rollout_id=_rollout_id(1),
                candidate=_served("v1.0.1"),
                stage="canary",
                traffic_percent=10,
            ),
            "experiment_route": ExperimentRoute(
                experiment_id="ex_1",
                arms=[
                    ExperimentArm(policy=_served("v1.0.0"), traffic_percent=50),
                    ExperimentArm(policy=_served("v1.0.1"), traffic_percent=50),
                ],
                ends_at=NOW + timedelta(days=1),
            ),
        }
    )
    store.commit(_t(0, d))
    assert store.get_serving_view(T, A) == ServingView(
        production=d.production,
        rollout=d.rollout_route,
        experiment=d.experiment_route,
        constraints=rules,
    )
    assert store.get_serving_view(T, B) == ServingView()


# ---- constraints -------------------------------------------------------------------------
def test_constraints_are_replaced_only_at_their_revision(store: Store) -> None:
    first, second = Constraints(max_rank_lift=1), Constraints(min_retrieval_score=0.5)
    store.put_constraints(T, A, first, _audit(reason="first"), 0)
    assert store.get_constraints_revision(T, A) == (first, 1)
    _conflict(lambda: store.put_constraints(T, A, second, _audit(reason="lost"), 0))
    _conflict(lambda: store.put_constraints(T, A, second, _audit(reason="lost"), 2))
    store.put_constraints(T, A, second, _audit(reason="second"), 1)
    assert store.get_constraints_revision(T, A) == (second, 2)
    assert store.get_constraints(T, A) == second
    assert store.get_constraints(T, B) == Constraints()
    reasons = [e.reason for e in store.list_audit(T, A, 10, None).items]
    assert reasons == ["second", "first"], "a refused change writes no audit event"


def test_a_constraints_change_writes_its_audit_event_unconditionally(store: Store) -> None:
    """Unlike a commit's, this audit item is a plain Put: an event with the same time and id
    is replaced, not refused."""
    store.put_constraints(T, A, Constraints(max_rank_lift=1), _audit(event_id="c", reason="1"), 0)
    store.put_constraints(T, A, Constraints(max_rank_lift=2), _audit(event_id="c", reason="2"), 1)
    assert [(e.event_id, e.reason) for e in store.list_audit(T, A, 10, None).items] == [("c", "2")]


# ---- API keys ----------------------------------------------------------------------------
def _key(n: int, tenant: str = T) -> ApiKey:
    return ApiKey(
        key_id=f"{n:016x}",
        tenant_id=tenant,
        tier=Tier.PRO,
        role=Role.ADMIN,
        secret_hash="0" * 64,
        created_at=NOW + timedelta(minutes=n),
    )


def test_keys_are_stored_listed_oldest_first_per_tenant_and_revoked_once(store: Store) -> None:
    for n in (3, 1, 2):
        store.put_key(T, _key(n), _audit(agent=None, reason=f"create {n}"))
    store.put_key("other", _key(4, "other"), _audit(agent=None))
    assert store.get_key(_key(1).key_id) == _key(1)
    assert [k.key_id for k in store.list_keys(T)] == [_key(n).key_id for n in (1, 2, 3)]
    assert [k.key_id for k in store.list_keys("other")] == [_key(4).key_id]
    at = NOW + timedelta(hours=1)
    revoked = store.revoke_key(_key(2).key_id, at, _audit(agent=None, reason="revoke"))
    assert revoked == _key(2).model_copy(update={"revoked_at": at})
    assert store.get_key(_key(2).key_id) == revoked
    again = store.revoke_key(_key(2).key_id, at + timedelta(hours=1), _audit(agent=None))
    assert again.revoked_at == at, "a second revoke keeps the first time"
    with pytest.raises(PolicyHubError) as err:
        store.revoke_key("ffffffffffffffff", at, _audit(agent=None))
    assert err.value.code == "not_found"
    reasons = [e.reason for e in store.list_audit(T, A, 10, None).items]
    assert {"create 1", "create 2", "create 3", "revoke"} <= set(reasons)


def test_a_key_id_is_stored_once(store: Store) -> None:
    """A duplicate id is a 409, and the key first stored stays as it was."""
    store.put_key(T, _key(1), _audit(agent=None))
    with pytest.raises(PolicyHubError) as err:
        store.put_key(T, _key(1).model_copy(update={"role": Role.MEMBER}), _audit(agent=None))
    assert err.value.code == "concurrent_change"
    assert store.get_key(_key(1).key_id) == _key(1)


def test_of_two_revokes_at_once_the_first_revocation_time_stands(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second revoke read the key before the first landed: it is refused, not applied."""
    if not isinstance(store, DynamoStore):
        pytest.skip("the fake applies each call under one lock: there is no window to race in")
    store.put_key(T, _key(1), _audit(agent=None))
    unrevoked = store.get_key(_key(1).key_id)
    first = store.revoke_key(_key(1).key_id, NOW, _audit(agent=None))
    monkeypatch.setattr(store, "get_key", lambda key_id: unrevoked)
    with pytest.raises(PolicyHubError) as err:
        store.revoke_key(_key(1).key_id, NOW + timedelta(hours=1), _audit(agent=None))
    assert err.value.code == "concurrent_change"
    monkeypatch.undo()
    assert store.get_key(_key(1).key_id) == first


# ---- training jobs (services.training.JobStore) ------------------------------------------
def _job(n: int, status: JobStatus = JobStatus.QUEUED, agent: str = A) -> TrainingJob:
    created = NOW + timedelta(minutes=n)
    return TrainingJob(
        job_id=f"tj-{created.strftime('%Y%m%dT%H%M%S.%f')}-0000{n:04d}",
        agent_type=agent,
        status=status,
        trigger=JobTrigger.API,
        created_at=created,
        window_start=NOW - timedelta(days=7),
        window_end=created,
        requested_by="key1",
    )


def _guard(job: TrainingJob, hours: int = 1) -> ActiveJob:
    return ActiveJob(job_id=job.job_id, lease_until=job.created_at + timedelta(hours=hours))


def test_a_job_takes_the_agents_guard_and_finishes_once(backend: Backend) -> None:
    jobs, store = backend.jobs, backend.store
    job = _job(1)
    jobs.create(T, job, _guard(job), _audit(reason="create"), None)
    assert jobs.get_job(T, A, job.job_id) == job
    assert jobs.find_job(T, job.job_id) == job
    assert jobs.get_job(T, B, job.job_id) is None
    assert jobs.find_job("other", job.job_id) is None
    assert jobs.get_active(T, A) == _guard(job)
    assert jobs.get_active(T, B) is None
    second = _job(2)
    _conflict(lambda: jobs.create(T, second, _guard(second), _audit(reason="lost"), None))
    assert jobs.get_job(T, A, second.job_id) is None
    running = job.running(NOW + timedelta(minutes=5))
    jobs.mark_running(T, running, _guard(job, hours=4))
    assert jobs.get_job(T, A, job.job_id) == running
    assert jobs.get_active(T, A) == _guard(job, hours=4)
    _conflict(lambda: jobs.mark_running(T, running, _guard(job, hours=5)))  # no longer queued
    done = running.succeeded(NOW + timedelta(minutes=30), "v1.0.1", 1234)
    _conflict(lambda: jobs.finish(T, done, JobStatus.QUEUED, _audit(reason="lost"), None))
    cursor = NOW + timedelta(minutes=1)
    jobs.finish(T, done, JobStatus.RUNNING, _audit(reason="finish"), cursor)
    assert jobs.get_job(T, A, job.job_id) == done
    assert jobs.get_active(T, A) is None
    assert jobs.get_cursor(T, A) == cursor
    assert jobs.get_cursor(T, B) is None
    _conflict(lambda: jobs.finish(T, done, JobStatus.SUCCEEDED, _audit(reason="lost"), None))
    reasons = [e.reason for e in store.list_audit(T, A, 10, None).items]
    assert reasons == ["finish", "create"]


def test_a_job_replaces_only_the_job_that_holds_the_guard(backend: Backend) -> None:
    jobs = backend.jobs
    stale = _job(1)
    jobs.create(T, stale, _guard(stale), _audit(), None)
    failed = stale.failed(NOW + timedelta(hours=2), "lease ran out")
    wrong = _job(2)
    # Replacing a job that does not hold the guard (and does not exist).
    _conflict(lambda: jobs.create(T, wrong, _guard(wrong), _audit(), _job(9).failed(NOW, "x")))
    assert jobs.get_job(T, A, wrong.job_id) is None and jobs.get_active(T, A) == _guard(stale)
    new = _job(3)
    jobs.create(T, new, _guard(new), _audit(), failed)
    assert jobs.get_job(T, A, stale.job_id) == failed
    assert jobs.get_job(T, A, new.job_id) == new
    assert jobs.get_active(T, A) == _guard(new)
    # A job cannot replace itself: one transaction would write its item twice.
    with pytest.raises(ClientError) as err:
        jobs.create(T, new, _guard(new), _audit(), new.failed(NOW, "x"))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert jobs.get_job(T, A, new.job_id) == new
    # The replaced job no longer holds the guard: it cannot be replaced again.
    _conflict(lambda: jobs.create(T, _job(4), _guard(_job(4)), _audit(), failed))
    assert jobs.get_job(T, A, _job(4).job_id) is None and jobs.get_active(T, A) == _guard(new)


def test_a_failed_job_write_writes_nothing(backend: Backend) -> None:
    jobs, store = backend.jobs, backend.store
    job = _job(1)
    event = _audit(reason="create")
    jobs.create(T, job, _guard(job), event, None)
    # A second job with a new id but the same audit event: the whole create is refused.
    other = _job(2, agent=B)
    _conflict(lambda: jobs.create(T, other, _guard(other), event, None))
    assert jobs.get_active(T, B) is None and jobs.find_job(T, other.job_id) is None
    # The same job id again (even for another agent).
    _conflict(
        lambda: jobs.create(
            T, job.model_copy(update={"agent_type": B}), _guard(job), _audit(), None
        )
    )
    assert jobs.get_active(T, B) is None
    # A finish whose job is stored as expected but whose guard another job holds (a job
    # replaced while its worker was still running).
    holder = _job(3, agent=B)
    jobs.create(T, holder, _guard(holder), _audit(agent=B), None)
    replaced = _job(4, agent=B)
    jobs.finish(T, holder.failed(NOW, "x"), JobStatus.QUEUED, _audit(agent=B), None)
    jobs.create(T, replaced, _guard(replaced), _audit(agent=B), None)
    newer = _job(5, agent=B)
    jobs.create(T, newer, _guard(newer), _audit(agent=B), replaced.failed(NOW, "stale"))
    # `replaced` is stored failed and not holding: its worker's late finish is refused...
    late = replaced.running(NOW).succeeded(NOW, "v1.0.3", 10)
    _conflict(lambda: jobs.finish(T, late, JobStatus.FAILED, _audit(agent=B), NOW))
    # ...and so is its late start.
    _conflict(lambda: jobs.mark_running(T, replaced.running(NOW), _guard(replaced)))
    assert jobs.get_cursor(T, B) is None
    assert jobs.get_active(T, B) == _guard(newer)
    assert jobs.get_job(T, B, replaced.job_id) == replaced.failed(NOW, "stale")
    assert [e.reason for e in store.list_audit(T, A, 10, None).items] == ["create"]


@pytest.mark.parametrize("limit", [1, 2, 5, 6])
def test_jobs_list_newest_first_in_pages(backend: Backend, limit: int) -> None:
    jobs = backend.jobs
    for n in range(1, 6):
        job = _job(n)
        jobs.create(T, job, _guard(job), _audit(), None)
        jobs.finish(T, job.failed(NOW, "x"), JobStatus.QUEUED, _audit(), None)
    jobs.create(T, _job(9, agent=B), _guard(_job(9, agent=B)), _audit(agent=B), None)
    pages = _walk(partial(jobs.list_jobs, T, A, limit), limit)
    assert [j.job_id for page in pages for j in page] == [_job(n).job_id for n in (5, 4, 3, 2, 1)]


# ---- artifacts ---------------------------------------------------------------------------
def test_artifacts_are_read_back_only_when_they_match(backend: Backend) -> None:
    import hashlib

    artifacts = backend.artifacts
    data = b"onnx bytes" * 10
    sha = hashlib.sha256(data).hexdigest()
    artifacts.put(T, A, sha, data)
    assert artifacts.get(T, A, sha, len(data)) == data
    for tenant, agent, digest, cap in (
        (T, B, sha, 1000),  # another agent's
        ("other", A, sha, 1000),  # another tenant's
        (T, A, "0" * 64, 1000),  # missing
        (T, A, sha, len(data) - 1),  # above the cap
    ):
        with pytest.raises(PolicyHubError) as err:
            artifacts.get(tenant, agent, digest, cap)
        assert err.value.code == "invalid_artifact"
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    artifacts.put(T, A, wrong, data)  # stored under a digest it does not have
    with pytest.raises(PolicyHubError) as err:
        artifacts.get(T, A, wrong, 1000)
    assert err.value.code == "invalid_artifact"


# ---- the layer ships no test code ----------------------------------------------------------
def test_the_lambda_layer_imports_no_test_code() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "layers" / "shared" / "python"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []
    assert not (root / "policyhub" / "adapters" / "memory.py").exists()

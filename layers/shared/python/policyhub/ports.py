"""Protocols the services need; adapters implement them for AWS, the local stack and tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:  # annotations only: the rank path should not import every domain module
    import numpy.typing as npt

    from policyhub.domain.audit import AuditEvent
    from policyhub.domain.constraints import Constraints
    from policyhub.domain.deployment import Deployment
    from policyhub.domain.experiment import Experiment
    from policyhub.domain.health import Health
    from policyhub.domain.holdout import Split
    from policyhub.domain.interaction_records import InteractionRecord
    from policyhub.domain.keys import ApiKey
    from policyhub.domain.rollout import Rollout
    from policyhub.domain.routing import ServingView
    from policyhub.domain.transition import Transition
    from policyhub.domain.versions import PolicyStatus, PolicyVersion

PageKey = dict[str, str]
"""Where a listing stopped; opaque to services, signed into a cursor by the API."""


T = TypeVar("T")


class Page(Generic[T]):
    def __init__(self, items: Sequence[T], next_key: PageKey | None) -> None:
        self.items = list(items)
        self.next_key = next_key


class PolicyStore(Protocol):
    def get_deployment(self, tenant_id: str, agent_type: str) -> Deployment | None: ...

    def get_version(
        self, tenant_id: str, agent_type: str, version: str
    ) -> PolicyVersion | None: ...

    def list_versions(
        self,
        tenant_id: str,
        agent_type: str,
        status: PolicyStatus | None,
        limit: int,
        start: PageKey | None,
    ) -> Page[PolicyVersion]: ...

    def commit(self, transition: Transition) -> None:
        """Apply all of it or none; raise `concurrent_change` if a condition no longer holds."""
        ...

    def list_audit(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[AuditEvent]: ...

    def get_serving_view(self, tenant_id: str, agent_type: str) -> ServingView: ...

    def get_rollout(self, tenant_id: str, agent_type: str, rollout_id: str) -> Rollout | None: ...

    def get_experiment(
        self, tenant_id: str, agent_type: str, experiment_id: str
    ) -> Experiment | None: ...

    def list_rollouts(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[Rollout]: ...

    def get_constraints(self, tenant_id: str, agent_type: str) -> Constraints: ...

    def get_constraints_revision(
        self, tenant_id: str, agent_type: str
    ) -> tuple[Constraints, int]: ...

    def put_constraints(
        self,
        tenant_id: str,
        agent_type: str,
        constraints: Constraints,
        audit: AuditEvent,
        expected_revision: int,
    ) -> None:
        """Replace the constraints if they are still at `expected_revision` (0: none yet)."""
        ...


class KeyStore(Protocol):
    def put_key(self, tenant_id: str, key: ApiKey, audit: AuditEvent) -> None: ...

    def get_key(self, key_id: str) -> ApiKey | None: ...

    def list_keys(self, tenant_id: str) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str, at: datetime, audit: AuditEvent) -> ApiKey: ...


class ArtifactStore(Protocol):
    def put(self, tenant_id: str, agent_type: str, sha256: str, data: bytes) -> None: ...

    def get(self, tenant_id: str, agent_type: str, sha256: str, max_bytes: int) -> bytes:
        """The bytes, verified against `sha256` and the size cap, or an error."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class LogSink(Protocol):
    """Durable delivery of decision and feedback records (Firehose in AWS)."""

    def put(self, record: InteractionRecord) -> None:
        """Hand one record over; never raises: failures are retried, then dead-lettered."""
        ...


SqlParams = Sequence[object] | Mapping[str, object]


class LogTable(Protocol):
    """The records of one window as the SQL view `records` (every column of
    `interaction_columns.COLUMNS`, plus `ord`: the order they were read in)."""

    def execute(self, query: str, params: SqlParams = ()) -> None: ...

    def rows(self, query: str, params: SqlParams = ()) -> list[tuple[Any, ...]]: ...

    def columns(
        self, query: str, params: SqlParams = ()
    ) -> dict[str, npt.NDArray[Any]]: ...

    def close(self) -> None: ...

    def __enter__(self) -> LogTable: ...

    def __exit__(self, *exc: object) -> None: ...


class InteractionLog(Protocol):
    def table(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        splits: frozenset[Split] = ...,
    ) -> LogTable:
        """Records stamped in [since, until]; close the table when done. With `splits`, at
        least every record of those sides of the held-out split (`domain.holdout`)."""
        ...

    def read(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        fields: frozenset[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records stamped in [since, until] (read-only); with `fields`, only those keys."""
        ...


class ServingMetrics(Protocol):
    def decision(
        self,
        agent_type: str,
        variant: str,
        rollout_id: str | None,
        experiment_id: str | None,
        latency_ms: float,
        error: bool,
        violations: int,
        shadow: bool = False,
        shadow_error: bool = False,
    ) -> None:
        """One decision: `variant` as assigned, `error` when the assigned policy failed,
        `violations` the constraint violations of its ranking, `shadow`/`shadow_error` when
        a shadow candidate scored it (and failed)."""
        ...

    def feedback(
        self, agent_type: str, variant: str, rollout_id: str | None, success: bool | None
    ) -> None: ...


class Once(Protocol):
    def run_once(self, key: str, action: Callable[[], None]) -> None:
        """Run `action` the first time `key` is seen; later calls with the key do nothing."""
        ...


class HealthReader(Protocol):
    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
        """Baseline and candidate numbers of the rollout's traffic in [start, end]."""
        ...


class WorkflowStarter(Protocol):
    def start(self, tenant_id: str, agent_type: str, rollout_id: str) -> None:
        """Start driving the rollout (idempotent: a second start of the same id is a no-op)."""
        ...


class JobRunner(Protocol):
    def start(self, tenant_id: str, agent_type: str, job_id: str) -> None:
        """Run the training job's entry point in a worker (returns once it is handed over)."""
        ...


class RolloutAlarms(Protocol):
    def create(self, rollout: Rollout) -> None: ...

    def delete(self, rollout: Rollout) -> None: ...


class RolloutMetrics(Protocol):
    def rollback(self, agent_type: str, cause: str) -> None:
        """Count a rollback (`auto`, `alarm` or `manual`)."""
        ...

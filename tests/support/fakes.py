"""In-memory stores with the same conditional semantics as DynamoDB, for unit tests.

They live with the tests, not in the Lambda layer, and tests/integration/test_store_contract.py
runs one set of tests against them and against DynamoStore on moto (decision 101)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import TypeVar

from botocore.exceptions import ClientError, ParamValidationError
from pydantic import BaseModel

from policyhub.adapters.dynamo_jobs import job_sk
from policyhub.adapters.dynamo_keys import agent_pk, audit_pk, audit_sk, rollout_sk, version_sk
from policyhub.adapters.dynamo_store import concurrent_change
from policyhub.adapters.s3_artifacts import verify_artifact
from policyhub.domain.audit import AuditEvent
from policyhub.domain.constraints import Constraints
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.experiment import Experiment
from policyhub.domain.keys import ApiKey
from policyhub.domain.rollout import Rollout
from policyhub.domain.routing import ServingView
from policyhub.domain.training import ActiveJob, JobStatus, TrainingJob
from policyhub.domain.transition import Transition
from policyhub.domain.versions import PolicyStatus, PolicyVersion
from policyhub.ports import Page, PageKey

_Agent = tuple[str, str]
M = TypeVar("M", bound=BaseModel)
MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit on the actions of one TransactWriteItems."""


def _stored(model: M) -> M:
    """What DynamoDB hands back: a fresh object parsed from the stored JSON, never the caller's
    own (a caller that changes an object it read or wrote changes nothing stored)."""
    if isinstance(model, Rollout):  # stored as DynamoStore stores it: to_dict as JSON
        rollout: M = Rollout.from_dict(json.loads(json.dumps(model.to_dict())))  # type: ignore[assignment]
        return rollout
    return type(model).model_validate_json(model.model_dump_json())


def _validation_error(message: str) -> ClientError:
    """DynamoDB's answer to a transaction it refuses to run (not a 409: a programming error)."""
    return ClientError(
        {"Error": {"Code": "ValidationException", "Message": message}}, "TransactWriteItems"
    )


def _check_transaction(items: Sequence[Hashable]) -> None:
    """The checks DynamoDB makes before it evaluates any condition of a TransactWriteItems."""
    if not items:
        raise ParamValidationError(
            report="Invalid length for parameter TransactItems, value: 0, valid min length: 1"
        )
    if len(items) > MAX_TRANSACTION_ITEMS:
        raise _validation_error("Member must have length less than or equal to 100 (transactItems)")
    if any(n > 1 for n in Counter(items).values()):
        raise _validation_error(
            "Transaction request cannot include multiple operations on one item"
        )


class MemoryStore:
    def __init__(self) -> None:
        # One lock for every write, shared with MemoryJobStore: DynamoDB serialises
        # conflicting writes to the one table (and the tests' moto does too, decision 006).
        self._lock = threading.RLock()
        self.deployments: dict[_Agent, Deployment] = {}
        self.versions: dict[_Agent, dict[str, PolicyVersion]] = {}
        self.audit: dict[str, list[AuditEvent]] = {}
        """Per tenant, in the order written (a rewritten event keeps its place)."""
        self.keys: dict[str, tuple[str, ApiKey]] = {}
        self.constraints: dict[_Agent, tuple[Constraints, int]] = {}
        self.rollouts: dict[_Agent, dict[str, Rollout]] = {}
        self.experiments: dict[_Agent, dict[str, Experiment]] = {}

    # ---- audit items (shared with MemoryJobStore) ----------------------------------------
    def audit_exists(self, tenant_id: str, event: AuditEvent) -> bool:
        key = audit_sk(event.at, event.event_id)
        return any(audit_sk(e.at, e.event_id) == key for e in self.audit.get(tenant_id, []))

    def put_audit(self, tenant_id: str, event: AuditEvent) -> None:
        """Write the event's item; an event with the same time and id is replaced (a Put)."""
        trail = self.audit.setdefault(tenant_id, [])
        key = audit_sk(event.at, event.event_id)
        for i, e in enumerate(trail):
            if audit_sk(e.at, e.event_id) == key:
                trail[i] = _stored(event)
                return
        trail.append(_stored(event))

    # ---- reads -----------------------------------------------------------------------------
    def get_deployment(self, tenant_id: str, agent_type: str) -> Deployment | None:
        d = self.deployments.get((tenant_id, agent_type))
        return None if d is None else _stored(d)

    def get_version(self, tenant_id: str, agent_type: str, version: str) -> PolicyVersion | None:
        v = self.versions.get((tenant_id, agent_type), {}).get(version)
        return None if v is None else _stored(v)

    def list_versions(
        self,
        tenant_id: str,
        agent_type: str,
        status: PolicyStatus | None,
        limit: int,
        start: PageKey | None,
    ) -> Page[PolicyVersion]:
        rows = sorted(
            self.versions.get((tenant_id, agent_type), {}).values(),
            key=lambda v: version_sk(v.version),
            reverse=True,
        )
        if start:
            rows = [v for v in rows if version_sk(v.version) < start["sk"]]
        rows = [v for v in rows if status is None or v.status == status]
        more = len(rows) > limit
        page = [_stored(v) for v in rows[:limit]]
        pk = agent_pk(tenant_id, agent_type)
        return Page(page, {"pk": pk, "sk": version_sk(page[-1].version)} if more and page else None)

    def list_audit(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[AuditEvent]:
        rows = sorted(
            self.audit.get(tenant_id, []), key=lambda e: audit_sk(e.at, e.event_id), reverse=True
        )
        if start:
            rows = [e for e in rows if audit_sk(e.at, e.event_id) < start["sk"]]
        rows = [e for e in rows if e.agent_type in (agent_type, None)]
        more = len(rows) > limit
        page = [_stored(e) for e in rows[:limit]]
        last = page[-1] if page else None
        return Page(
            page,
            {"pk": audit_pk(tenant_id), "sk": audit_sk(last.at, last.event_id)}
            if more and last
            else None,
        )

    def get_serving_view(self, tenant_id: str, agent_type: str) -> ServingView:
        d = self.get_deployment(tenant_id, agent_type)
        return ServingView(
            production=d.production if d else None,
            rollout=d.rollout_route if d else None,
            experiment=d.experiment_route if d else None,
            constraints=self.get_constraints(tenant_id, agent_type),
        )

    def get_constraints(self, tenant_id: str, agent_type: str) -> Constraints:
        return self.get_constraints_revision(tenant_id, agent_type)[0]

    def get_constraints_revision(self, tenant_id: str, agent_type: str) -> tuple[Constraints, int]:
        return self.constraints.get((tenant_id, agent_type), (Constraints(), 0))

    def put_constraints(
        self,
        tenant_id: str,
        agent_type: str,
        constraints: Constraints,
        audit: AuditEvent,
        expected_revision: int,
    ) -> None:
        with self._lock:
            if self.get_constraints_revision(tenant_id, agent_type)[1] != expected_revision:
                raise concurrent_change(f"constraints of {agent_type!r}")
            self.constraints[(tenant_id, agent_type)] = (
                _stored(constraints),
                expected_revision + 1,
            )
            self.put_audit(tenant_id, audit)  # an unconditional Put in DynamoStore

    # ---- the one write path --------------------------------------------------------------
    def commit(self, transition: Transition) -> None:
        t = transition
        agent = (t.tenant_id, t.agent_type)
        with self._lock:
            _check_transaction(
                [("deployment",)] * (t.deployment is not None)
                + [("experiment", x.experiment.experiment_id) for x in t.experiments]
                + [("rollout", w.rollout.rollout_id) for w in t.rollouts]
                + [("version", version_sk(v.version)) for v in t.new_versions]
                + [("version", version_sk(u.updated.version)) for u in t.version_updates]
                + [("audit", audit_sk(e.at, e.event_id)) for e in t.audit]
            )
            current = self.deployments.get(agent)
            if t.deployment is not None and (
                # 0: the record must not exist (whatever revision a stored one has)
                current is not None
                if t.expected_revision == 0
                else current is None or current.revision != t.expected_revision
            ):
                raise concurrent_change(f"agent {t.agent_type!r}")
            rollouts = self.rollouts.setdefault(agent, {})
            for w in t.rollouts:
                old_r = rollouts.get(w.rollout.rollout_id)
                if (old_r.revision if old_r else None) != w.expected_revision:
                    raise concurrent_change(f"rollout {w.rollout.rollout_id}")
            experiments = self.experiments.setdefault(agent, {})
            for x in t.experiments:
                old_x = experiments.get(x.experiment.experiment_id)
                if (old_x.revision if old_x else None) != x.expected_revision:
                    raise concurrent_change(f"experiment {x.experiment.experiment_id}")
            versions = self.versions.setdefault(agent, {})
            for v in t.new_versions:
                if v.version in versions:
                    raise concurrent_change(f"version {v.version}")
            for u in t.version_updates:
                old = versions.get(u.updated.version)
                if old is None or old.status != u.expected:
                    raise concurrent_change(f"version {u.updated.version}")
            for e in t.audit:  # audit items are conditional on not existing
                if self.audit_exists(t.tenant_id, e):
                    raise concurrent_change(f"agent {t.agent_type!r}")
            if t.deployment is not None:
                self.deployments[agent] = _stored(t.deployment)
            for w in t.rollouts:
                rollouts[w.rollout.rollout_id] = _stored(w.rollout)
            for x in t.experiments:
                experiments[x.experiment.experiment_id] = _stored(x.experiment)
            for v in t.new_versions:
                versions[v.version] = _stored(v)
            for u in t.version_updates:
                versions[u.updated.version] = _stored(u.updated)
            for e in t.audit:
                self.put_audit(t.tenant_id, e)

    def get_experiment(
        self, tenant_id: str, agent_type: str, experiment_id: str
    ) -> Experiment | None:
        x = self.experiments.get((tenant_id, agent_type), {}).get(experiment_id)
        return None if x is None else _stored(x)

    def get_rollout(self, tenant_id: str, agent_type: str, rollout_id: str) -> Rollout | None:
        r = self.rollouts.get((tenant_id, agent_type), {}).get(rollout_id)
        return None if r is None else _stored(r)

    def list_rollouts(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[Rollout]:
        rows = sorted(
            self.rollouts.get((tenant_id, agent_type), {}).values(),
            key=lambda r: r.rollout_id,
            reverse=True,
        )
        if start:
            rows = [r for r in rows if rollout_sk(r.rollout_id) < start["sk"]]
        more = len(rows) > limit
        page = [_stored(r) for r in rows[:limit]]
        pk = agent_pk(tenant_id, agent_type)
        return Page(
            page, {"pk": pk, "sk": rollout_sk(page[-1].rollout_id)} if more and page else None
        )

    # ---- API keys (KeyStore) ---------------------------------------------------------------
    def put_key(self, tenant_id: str, key: ApiKey, audit: AuditEvent) -> None:
        with self._lock:
            if key.key_id in self.keys:
                raise concurrent_change(f"API key {key.key_id}")
            self.keys[key.key_id] = (tenant_id, _stored(key))
            self.put_audit(tenant_id, audit)

    def get_key(self, key_id: str) -> ApiKey | None:
        found = self.keys.get(key_id)
        return _stored(found[1]) if found else None

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        """In the order of the tenant-keys index: by `created_at`."""
        keys = [k for t, k in self.keys.values() if t == tenant_id]
        return [_stored(k) for k in sorted(keys, key=lambda k: k.created_at.isoformat())]

    def revoke_key(self, key_id: str, at: datetime, audit: AuditEvent) -> ApiKey:
        with self._lock:
            if key_id not in self.keys:
                raise PolicyHubError("not_found", f"no API key {key_id}")
            tenant_id, key = self.keys[key_id]
            revoked = key.model_copy(update={"revoked_at": key.revoked_at or at})
            self.keys[key_id] = (tenant_id, _stored(revoked))
            self.put_audit(key.tenant_id, audit)
            return revoked


class MemoryArtifactStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], bytes] = {}

    def put(self, tenant_id: str, agent_type: str, sha256: str, data: bytes) -> None:
        self.objects[(tenant_id, agent_type, sha256)] = data

    def get(self, tenant_id: str, agent_type: str, sha256: str, max_bytes: int) -> bytes:
        data = self.objects.get((tenant_id, agent_type, sha256))
        if data is None:
            raise PolicyHubError("invalid_artifact", f"artifact {sha256} is missing")
        return verify_artifact(data, sha256, max_bytes)


class FixedClock:
    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current


class MemoryJobStore:
    """Training jobs, the per-agent guard and cursor, with DynamoJobStore's conditions.

    Audit events go to the `MemoryStore` given, so a test reads one trail. (Jobs and guards are
    frozen models: they are kept as given.)
    """

    def __init__(self, store: MemoryStore) -> None:
        self._lock = store._lock  # one table, one order of writes
        self._store = store
        self.jobs: dict[tuple[str, str], TrainingJob] = {}
        self.active: dict[_Agent, ActiveJob] = {}
        self.cursors: dict[_Agent, datetime] = {}

    def get_job(self, tenant_id: str, agent_type: str, job_id: str) -> TrainingJob | None:
        job = self.jobs.get((tenant_id, job_id))
        return job if job is not None and job.agent_type == agent_type else None

    def find_job(self, tenant_id: str, job_id: str) -> TrainingJob | None:
        return self.jobs.get((tenant_id, job_id))

    def list_jobs(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[TrainingJob]:
        rows = sorted(
            (j for (t, _), j in self.jobs.items() if t == tenant_id and j.agent_type == agent_type),
            key=lambda j: j.job_id,
            reverse=True,
        )
        if start:
            rows = [j for j in rows if job_sk(j.job_id) < start["sk"]]
        page = rows[:limit]
        more = len(rows) > limit and bool(page)
        pk = agent_pk(tenant_id, agent_type)
        return Page(page, {"pk": pk, "sk": job_sk(page[-1].job_id)} if more else None)

    def get_active(self, tenant_id: str, agent_type: str) -> ActiveJob | None:
        return self.active.get((tenant_id, agent_type))

    def get_cursor(self, tenant_id: str, agent_type: str) -> datetime | None:
        return self.cursors.get((tenant_id, agent_type))

    def _holder_is(self, agent: _Agent, job_id: str | None) -> bool:
        held = self.active.get(agent)
        return (held.job_id if held else None) == job_id

    def _audit(self, tenant_id: str, audit: AuditEvent) -> None:
        self._store.put_audit(tenant_id, audit)

    def _require_new_audit(self, tenant_id: str, audit: AuditEvent, what: str) -> None:
        if self._store.audit_exists(tenant_id, audit):  # conditional on not existing
            raise concurrent_change(what)

    def create(
        self,
        tenant_id: str,
        job: TrainingJob,
        guard: ActiveJob,
        audit: AuditEvent,
        replaces: TrainingJob | None,
    ) -> None:
        agent = (tenant_id, job.agent_type)
        with self._lock:
            if replaces is not None and replaces.job_id == job.job_id:
                raise _validation_error(
                    "Transaction request cannot include multiple operations on one item"
                )
            if not self._holder_is(agent, replaces.job_id if replaces else None):
                raise concurrent_change(f"training of agent {job.agent_type!r}")
            self._require_new_audit(tenant_id, audit, f"training of agent {job.agent_type!r}")
            if (tenant_id, job.job_id) in self.jobs:
                raise concurrent_change(f"training job {job.job_id}")
            if replaces is not None:
                old = self.jobs.get((tenant_id, replaces.job_id))
                if old is None or not old.active:
                    raise concurrent_change(f"training job {replaces.job_id}")
                self.jobs[(tenant_id, replaces.job_id)] = replaces
            self.active[agent] = guard
            self.jobs[(tenant_id, job.job_id)] = job
            self._audit(tenant_id, audit)

    def mark_running(self, tenant_id: str, job: TrainingJob, guard: ActiveJob) -> None:
        agent = (tenant_id, job.agent_type)
        with self._lock:
            old = self.jobs.get((tenant_id, job.job_id))
            if (
                old is None
                or old.status is not JobStatus.QUEUED
                or not self._holder_is(agent, job.job_id)
            ):
                raise concurrent_change(f"training job {job.job_id}")
            self.jobs[(tenant_id, job.job_id)] = job
            self.active[agent] = guard

    def finish(
        self,
        tenant_id: str,
        job: TrainingJob,
        expected: JobStatus,
        audit: AuditEvent,
        cursor: datetime | None,
    ) -> None:
        agent = (tenant_id, job.agent_type)
        with self._lock:
            old = self.jobs.get((tenant_id, job.job_id))
            if old is None or old.status is not expected or not self._holder_is(agent, job.job_id):
                raise concurrent_change(f"training job {job.job_id}")
            self._require_new_audit(tenant_id, audit, f"training job {job.job_id}")
            self.jobs[(tenant_id, job.job_id)] = job
            del self.active[agent]
            if cursor is not None:
                self.cursors[agent] = cursor
            self._audit(tenant_id, audit)

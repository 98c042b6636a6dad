"""In-memory stores with the same conditional semantics as DynamoDB, for unit tests.

They live with the tests, not in the Lambda layer, and tests/integration/test_store_contract.py
runs one set of tests against them and against DynamoStore on moto (decision 101)."""

from __future__ import annotations

import threading
from datetime import datetime

from policyhub.adapters.dynamo_keys import audit_sk, version_sk
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


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deployments: dict[_Agent, Deployment] = {}
        self.versions: dict[_Agent, dict[str, PolicyVersion]] = {}
        self.audit: dict[str, list[AuditEvent]] = {}
        self.keys: dict[str, tuple[str, ApiKey]] = {}
        self.constraints: dict[_Agent, tuple[Constraints, int]] = {}
        self.rollouts: dict[_Agent, dict[str, Rollout]] = {}
        self.experiments: dict[_Agent, dict[str, Experiment]] = {}

    def get_deployment(self, tenant_id: str, agent_type: str) -> Deployment | None:
        return self.deployments.get((tenant_id, agent_type))

    def get_version(self, tenant_id: str, agent_type: str, version: str) -> PolicyVersion | None:
        return self.versions.get((tenant_id, agent_type), {}).get(version)

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
        page = rows[:limit]
        return Page(page, {"pk": "-", "sk": version_sk(page[-1].version)} if more else None)

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
        page = rows[:limit]
        last = page[-1] if page else None
        return Page(
            page, {"pk": "-", "sk": audit_sk(last.at, last.event_id)} if more and last else None
        )

    def get_serving_view(self, tenant_id: str, agent_type: str) -> ServingView:
        d = self.deployments.get((tenant_id, agent_type))
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
            self.constraints[(tenant_id, agent_type)] = (constraints, expected_revision + 1)
            self.audit.setdefault(tenant_id, []).append(audit)

    def commit(self, transition: Transition) -> None:
        t = transition
        agent = (t.tenant_id, t.agent_type)
        with self._lock:
            current = self.deployments.get(agent)
            if (
                t.deployment is not None
                and (current.revision if current else 0) != t.expected_revision
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
            if t.deployment is not None:
                self.deployments[agent] = t.deployment
            for w in t.rollouts:
                rollouts[w.rollout.rollout_id] = w.rollout
            for x in t.experiments:
                experiments[x.experiment.experiment_id] = x.experiment
            for v in t.new_versions:
                versions[v.version] = v
            for u in t.version_updates:
                versions[u.updated.version] = u.updated
            self.audit.setdefault(t.tenant_id, []).extend(t.audit)

    def get_experiment(
        self, tenant_id: str, agent_type: str, experiment_id: str
    ) -> Experiment | None:
        return self.experiments.get((tenant_id, agent_type), {}).get(experiment_id)

    def get_rollout(self, tenant_id: str, agent_type: str, rollout_id: str) -> Rollout | None:
        return self.rollouts.get((tenant_id, agent_type), {}).get(rollout_id)

    def list_rollouts(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[Rollout]:
        rows = sorted(
            self.rollouts.get((tenant_id, agent_type), {}).values(),
            key=lambda r: r.rollout_id,
            reverse=True,
        )
        if start:
            rows = [r for r in rows if r.rollout_id < start["sk"]]
        more = len(rows) > limit
        page = rows[:limit]
        return Page(page, {"pk": "-", "sk": page[-1].rollout_id} if more and page else None)

    def put_key(self, tenant_id: str, key: ApiKey, audit: AuditEvent) -> None:
        with self._lock:
            self.keys[key.key_id] = (tenant_id, key)
            self.audit.setdefault(tenant_id, []).append(audit)

    def get_key(self, key_id: str) -> ApiKey | None:
        found = self.keys.get(key_id)
        return found[1] if found else None

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        return [k for t, k in self.keys.values() if t == tenant_id]

    def revoke_key(self, key_id: str, at: datetime, audit: AuditEvent) -> ApiKey:
        with self._lock:
            if key_id not in self.keys:
                raise PolicyHubError("not_found", f"no API key {key_id}")
            tenant_id, key = self.keys[key_id]
            revoked = key.model_copy(update={"revoked_at": key.revoked_at or at})
            self.keys[key_id] = (tenant_id, revoked)
            self.audit.setdefault(tenant_id, []).append(audit)
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

    Audit events go to the `MemoryStore` given, so a test reads one trail.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._lock = threading.Lock()
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
            rows = [j for j in rows if j.job_id < start["sk"]]
        page = rows[:limit]
        more = len(rows) > limit and bool(page)
        return Page(page, {"pk": "-", "sk": page[-1].job_id} if more else None)

    def get_active(self, tenant_id: str, agent_type: str) -> ActiveJob | None:
        return self.active.get((tenant_id, agent_type))

    def get_cursor(self, tenant_id: str, agent_type: str) -> datetime | None:
        return self.cursors.get((tenant_id, agent_type))

    def _holder_is(self, agent: _Agent, job_id: str | None) -> bool:
        held = self.active.get(agent)
        return (held.job_id if held else None) == job_id

    def _audit(self, tenant_id: str, audit: AuditEvent) -> None:
        self._store.audit.setdefault(tenant_id, []).append(audit)

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
            if not self._holder_is(agent, replaces.job_id if replaces else None):
                raise concurrent_change(f"training of agent {job.agent_type!r}")
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
            self.jobs[(tenant_id, job.job_id)] = job
            del self.active[agent]
            if cursor is not None:
                self.cursors[agent] = cursor
            self._audit(tenant_id, audit)

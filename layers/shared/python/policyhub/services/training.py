"""Training orchestration: start a job (API or schedule), run it, keep one job per agent.

`start` decides whether a job may start (enough new feedback-joined decisions since the last
training, unless forced; no other job of the agent queued or running) and hands it to the job
runner (an ECS task in AWS, a background thread locally). `run` is the job body that runs in
that worker: read the window, join, train, register a `candidate` with lineage, record the
outcome. `run_schedule` is the 6-hourly sweep over every agent with logs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from policyhub.domain.access import Principal
from policyhub.domain.audit import SYSTEM_ACTOR, AuditAction, AuditEvent
from policyhub.domain.errors import PolicyHubError, conflict
from policyhub.domain.training import (
    DEFAULT_MIN_NEW_INTERACTIONS,
    DEFAULT_WINDOW_HOURS,
    ActiveJob,
    JobStatus,
    JobTrigger,
    TrainingJob,
    new_job_id,
)
from policyhub.domain.versions import TrainedOn
from policyhub.ml.dataset import LoggedDataset
from policyhub.ports import Clock, InteractionLog, JobRunner, Page, PageKey
from policyhub.services.logged_data import LogWindow
from policyhub.services.registry import Lineage, Registry

if TYPE_CHECKING:  # the trainer (scikit-learn, onnx, skl2onnx) loads only in the job's worker
    from policyhub.ml.trainer import TrainerConfig, TrainingResult

logger = logging.getLogger("policyhub.training")


class Trainer(Protocol):
    """`policyhub.ml.trainer.train_policy`, handed to `run` by the worker that trains."""

    def __call__(self, data: LoggedDataset, config: TrainerConfig | None, /) -> TrainingResult: ...


class JobStore(Protocol):
    def get_job(self, tenant_id: str, agent_type: str, job_id: str) -> TrainingJob | None: ...

    def find_job(self, tenant_id: str, job_id: str) -> TrainingJob | None:
        """The tenant's job with that id, whatever its agent."""
        ...

    def list_jobs(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[TrainingJob]: ...

    def get_active(self, tenant_id: str, agent_type: str) -> ActiveJob | None: ...

    def get_cursor(self, tenant_id: str, agent_type: str) -> datetime | None:
        """The window end of the agent's last successful training."""
        ...

    def create(
        self,
        tenant_id: str,
        job: TrainingJob,
        guard: ActiveJob,
        audit: AuditEvent,
        replaces: TrainingJob | None,
    ) -> None:
        """Store a queued job and take the agent's guard, all or nothing.

        The guard must be free, or held by `replaces` (a stale job, then recorded as failed).
        Raises `concurrent_change` otherwise.
        """
        ...

    def mark_running(self, tenant_id: str, job: TrainingJob, guard: ActiveJob) -> None:
        """Store `job` (now running) if it is still queued; extend the guard's lease."""
        ...

    def finish(
        self,
        tenant_id: str,
        job: TrainingJob,
        expected: JobStatus,
        audit: AuditEvent,
        cursor: datetime | None,
    ) -> None:
        """Store the final job if it is still `expected`, free the guard, move the cursor."""
        ...


class AgentDirectory(Protocol):
    def agents(self) -> Iterable[tuple[str, str]]:
        """Every (tenant_id, agent_type) that has interaction logs."""
        ...


@dataclass(frozen=True)
class TrainingConfig:
    min_new_interactions: int = DEFAULT_MIN_NEW_INTERACTIONS
    window: timedelta = timedelta(hours=DEFAULT_WINDOW_HOURS)
    queued_lease: timedelta = timedelta(hours=1)
    """How long a queued job may wait for its worker before another job may take over."""
    running_lease: timedelta = timedelta(hours=4)
    trainer: TrainerConfig | None = None
    """None: the trainer's defaults."""


@dataclass
class ScheduleReport:
    started: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "skipped": self.skipped, "errors": self.errors}


class TrainingDataError(Exception):
    """The window holds nothing a policy can be trained on."""


class TrainingService:
    def __init__(
        self,
        jobs: JobStore,
        registry: Registry,
        logs: Callable[[], InteractionLog],
        runner: JobRunner,
        agents: AgentDirectory,
        clock: Clock,
        config: TrainingConfig | None = None,
    ) -> None:
        self._jobs = jobs
        self._registry = registry
        # Opened when a job is counted or run: the functions that only list or get jobs lack
        # the log reader's packages (decision 117).
        self._open_logs = logs
        self._runner = runner
        self._agents = agents
        self._clock = clock
        self.config = config or TrainingConfig()

    # ---- reads ---------------------------------------------------------------------------
    def job(self, tenant_id: str, job_id: str) -> TrainingJob:
        found = self._jobs.find_job(tenant_id, job_id)
        if found is None:
            raise PolicyHubError("job_not_found", f"no training job {job_id}")
        return found

    def list_jobs(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[TrainingJob]:
        return self._jobs.list_jobs(tenant_id, agent_type, limit, start)

    def new_interactions(
        self, tenant_id: str, agent_type: str, since: datetime, until: datetime
    ) -> int:
        """Feedback-joined decisions logged in [since, until] (opted-out ones excluded)."""
        with self._open_logs().table(tenant_id, agent_type, since, until) as table:
            return LogWindow(table).joined_count()

    # ---- start -----------------------------------------------------------------------------
    def start(
        self,
        principal: Principal | None,
        tenant_id: str,
        agent_type: str,
        trigger: JobTrigger,
        force: bool = False,
    ) -> TrainingJob:
        now = self._clock.now()
        replaces = self._stale_holder(tenant_id, agent_type, now)
        window_start = now - self.config.window
        new: int | None = None
        if not force:
            cursor = self._jobs.get_cursor(tenant_id, agent_type)
            since = max(cursor, window_start) if cursor else window_start
            new = self.new_interactions(tenant_id, agent_type, since, now)
            if new < self.config.min_new_interactions:
                raise conflict(
                    "insufficient_data",
                    f"{new} new interactions with feedback since "
                    f"{since.strftime('%Y-%m-%dT%H:%M:%SZ')}; training needs "
                    f"{self.config.min_new_interactions} (or force: true)",
                    new_interactions=str(new),
                    min_new_interactions=str(self.config.min_new_interactions),
                )
        actor = principal.key_id if principal else SYSTEM_ACTOR
        job = TrainingJob(
            job_id=new_job_id(now),
            agent_type=agent_type,
            status=JobStatus.QUEUED,
            trigger=trigger,
            created_at=now,
            window_start=window_start,
            window_end=now,
            new_interactions=new,
            requested_by=actor,
        )
        audit = self._audit(
            actor, job, None, {"status": "queued", "trigger": trigger.value, "force": force,
                               "new_interactions": new,
                               "replaced_job_id": replaces.job_id if replaces else None},
        )  # fmt: skip
        guard = ActiveJob(job_id=job.job_id, lease_until=now + self.config.queued_lease)
        try:
            self._jobs.create(tenant_id, job, guard, audit, replaces)
        except PolicyHubError as exc:
            if exc.code != "concurrent_change":
                raise
            holder = self._jobs.get_active(tenant_id, agent_type)
            raise self._job_active(agent_type, holder.job_id if holder else "another job") from exc
        try:
            self._runner.start(tenant_id, agent_type, job.job_id)
        except Exception as exc:
            logger.exception("training job %s could not be started", job.job_id)
            failed = job.failed(self._clock.now(), f"the job could not be started: {exc}")
            self._finish(tenant_id, failed, JobStatus.QUEUED, None)
            raise PolicyHubError(
                "service_unavailable", "the training worker could not be started; retry later"
            ) from exc
        return job

    def _stale_holder(self, tenant_id: str, agent_type: str, now: datetime) -> TrainingJob | None:
        """The job holding the agent, as failed, if its lease ran out; 409 if it is live."""
        active = self._jobs.get_active(tenant_id, agent_type)
        if active is None:
            return None
        if not active.stale(now):
            raise self._job_active(agent_type, active.job_id)
        held = self._jobs.get_job(tenant_id, agent_type, active.job_id)
        if held is None:
            raise PolicyHubError("internal_error", f"guard names unknown job {active.job_id}")
        lease_end = active.lease_until.strftime("%Y-%m-%dT%H:%M:%SZ")
        return held.failed(now, f"abandoned: its worker did not finish by {lease_end}")

    @staticmethod
    def _job_active(agent_type: str, job_id: str) -> PolicyHubError:
        return conflict(
            "job_active",
            f"training job {job_id} of agent {agent_type!r} is already queued or running",
            job_id=job_id,
        )

    # ---- the job body -------------------------------------------------------------------------
    def run(self, tenant_id: str, agent_type: str, job_id: str, train: Trainer) -> TrainingJob:
        """Train with `train`, register the candidate, record the outcome. Runs once per job."""
        job = self._jobs.get_job(tenant_id, agent_type, job_id)
        if job is None:
            raise PolicyHubError("job_not_found", f"no training job {job_id}")
        if job.status is not JobStatus.QUEUED:
            return job  # a retried worker never trains twice
        now = self._clock.now()
        running = job.running(now)
        try:
            self._jobs.mark_running(
                tenant_id, running,
                ActiveJob(job_id=job_id, lease_until=now + self.config.running_lease),
            )  # fmt: skip
        except PolicyHubError as exc:
            if exc.code != "concurrent_change":
                raise
            return self._jobs.get_job(tenant_id, agent_type, job_id) or job
        interactions: int | None = None
        try:
            version, interactions = self._train(tenant_id, agent_type, running, train)
        except Exception as exc:
            logger.warning("training job %s failed: %s", job_id, exc, exc_info=True)
            failed = running.failed(self._clock.now(), _describe(exc), interactions)
            self._finish(tenant_id, failed, JobStatus.RUNNING, None)
            return failed
        done = running.succeeded(self._clock.now(), version, interactions)
        self._finish(tenant_id, done, JobStatus.RUNNING, done.window_end)
        return done

    def _train(
        self, tenant_id: str, agent_type: str, job: TrainingJob, train: Trainer
    ) -> tuple[str, int]:
        logs = self._open_logs()
        with logs.table(tenant_id, agent_type, job.window_start, job.window_end) as table:
            window = LogWindow(table)
            schema = window.dominant_schema()
            if schema is None:
                raise TrainingDataError("the window holds no usable decisions")
            data, report = window.dataset(schema)
        if data.n_decisions == 0:
            raise TrainingDataError(
                f"no decision of the window has feedback ({report.decisions} decisions)"
            )
        result = train(data, self.config.trainer)
        metrics: dict[str, Any] = {
            **result.metrics,
            "decisions_read": report.decisions,
            "decisions_without_feedback": report.without_feedback,
            **{f"skipped_{reason}": n for reason, n in sorted(report.skipped.items())},
        }
        parent = self._registry.deployment(tenant_id, agent_type).production_version
        created = self._registry.register(
            None,
            tenant_id,
            agent_type,
            result.artifact,
            schema,
            notes=f"trained by job {job.job_id}",
            lineage=Lineage(
                parent_version=parent,
                training_job_id=job.job_id,
                trained_on=TrainedOn(
                    interactions=data.n_decisions,
                    window_start=job.window_start,
                    window_end=job.window_end,
                ),
                offline_metrics=metrics,
            ),
        )
        return created.version, data.n_decisions

    def _finish(
        self, tenant_id: str, job: TrainingJob, expected: JobStatus, cursor: datetime | None
    ) -> None:
        details: dict[str, Any] = {
            "status": job.status.value,
            "trigger": job.trigger.value,
            "interactions_used": job.interactions_used,
        }
        if job.error:
            details["error"] = job.error
        audit = self._audit(SYSTEM_ACTOR, job, job.candidate_version, details)
        self._jobs.finish(tenant_id, job, expected, audit, cursor)

    def _audit(
        self, actor: str, job: TrainingJob, to_version: str | None, details: dict[str, Any]
    ) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=actor,
            action=AuditAction.TRAIN,
            agent_type=job.agent_type,
            to_version=to_version,
            reason=f"training job {job.job_id}",
            details={"job_id": job.job_id, **details},
        )

    # ---- the schedule ------------------------------------------------------------------------
    def run_schedule(self) -> ScheduleReport:
        """Start a job for every agent with enough new interactions; safe to run twice."""
        report = ScheduleReport()
        for tenant_id, agent_type in self._agents.agents():
            where = {"tenant_id": tenant_id, "agent_type": agent_type}
            try:
                job = self.start(None, tenant_id, agent_type, JobTrigger.SCHEDULE)
            except PolicyHubError as exc:
                if exc.code in {"insufficient_data", "job_active"}:
                    report.skipped.append({**where, "reason": exc.code})
                else:
                    report.errors.append({**where, "error": str(exc)})
                continue
            except Exception as exc:
                logger.exception("schedule could not start training for %s", where)
                report.errors.append({**where, "error": _describe(exc)})
                continue
            report.started.append({**where, "job_id": job.job_id})
        return report


def _describe(exc: BaseException) -> str:
    if isinstance(exc, PolicyHubError):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"

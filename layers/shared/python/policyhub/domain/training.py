"""Training jobs: one run of the trainer over a window of an agent's logs.

A job is created `queued` (by the API or the schedule), moves to `running` when its worker picks
it up and ends `succeeded` (with the candidate it registered) or `failed` (with its error and
nothing registered). At most one job per agent is queued or running at a time.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

DEFAULT_MIN_NEW_INTERACTIONS = 1000
"""Feedback-joined decisions since the last training that justify a new one."""
DEFAULT_WINDOW_HOURS = 168


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobTrigger(StrEnum):
    API = "api"
    SCHEDULE = "schedule"


ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
MAX_ERROR_CHARS = 1000


def new_job_id(at: datetime) -> str:
    """`tj-<UTC yyyymmddThhmmss.ffffff>-<8 hex>`: sorts by creation time, unique per agent."""
    return f"tj-{at.strftime('%Y%m%dT%H%M%S.%f')}-{secrets.token_hex(4)}"


class TrainingJob(BaseModel):
    """The training-job object of API.md, plus the data window it trains on."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    job_id: str
    """Unique id of the job, sorting by creation time."""
    agent_type: str
    """The agent it trains for."""
    status: JobStatus
    """`queued`, `running`, `succeeded` or `failed`."""
    trigger: JobTrigger
    """`api` (POST /v1/policies/train) or `schedule` (every 6 hours)."""
    created_at: datetime
    """When it was started (UTC)."""
    started_at: datetime | None = None
    """When a worker picked it up; null while queued."""
    finished_at: datetime | None = None
    """When it ended; null until then."""
    interactions_used: int | None = None
    """Decisions with feedback the trainer used; null until known."""
    candidate_version: str | None = None
    """The candidate it registered; null unless it succeeded."""
    error: str | None = None
    """Why it failed; null unless it failed."""
    window_start: datetime
    """Start of the log window it trains on (UTC)."""
    window_end: datetime
    """End of the log window it trains on (UTC)."""
    new_interactions: int | None = None
    """Feedback-joined decisions since the previous training when the job was started
    (None when it was forced without counting)."""
    requested_by: str
    """The API key id, or `system` for the schedule."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def running(self, at: datetime) -> TrainingJob:
        return self.model_copy(update={"status": JobStatus.RUNNING, "started_at": at})

    def succeeded(self, at: datetime, candidate_version: str, interactions: int) -> TrainingJob:
        return self.model_copy(
            update={
                "status": JobStatus.SUCCEEDED,
                "finished_at": at,
                "candidate_version": candidate_version,
                "interactions_used": interactions,
            }
        )

    def failed(self, at: datetime, error: str, interactions: int | None = None) -> TrainingJob:
        return self.model_copy(
            update={
                "status": JobStatus.FAILED,
                "finished_at": at,
                "error": error[:MAX_ERROR_CHARS],
                "interactions_used": interactions,
                "started_at": self.started_at or at,
            }
        )


class ActiveJob(BaseModel):
    """The per-agent guard: which job holds the agent, and until when it may hold it."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    lease_until: datetime

    def stale(self, now: datetime) -> bool:
        """A worker that never started or died leaves its lease to run out."""
        return now >= self.lease_until

"""Training jobs: start one (202), read one, list an agent's jobs newest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.cursor import decode_cursor, encode_cursor
from policyhub.api.models import AGENT_TYPE_DOC, Described
from policyhub.api.params import AgentTypeQuery, CursorQuery, JobIdPath, LimitQuery
from policyhub.domain.training import JobTrigger, TrainingJob
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE


class TrainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"agent_type": "memory_manager", "force": False}]},
    )
    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )
    force: bool = False
    """Train even with fewer new interactions than the minimum (else 409 insufficient_data)."""


class TrainingJobPage(Described):
    items: list[TrainingJob]
    """Training jobs, newest first."""
    has_more: bool
    """True when another page follows."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


def train(body: Annotated[TrainRequest, Body()]) -> TrainingJob:
    p = principal()
    return container.training().start(
        p, p.tenant_id, body.agent_type, JobTrigger.API, force=body.force
    )


def get_training_job(job_id: JobIdPath) -> TrainingJob:
    return container.training().job(principal().tenant_id, job_id)


def list_training_jobs(
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> TrainingJobPage:
    tenant = principal().tenant_id
    scope = {"agent_type": agent_type}
    start = decode_cursor(cursor, "training_jobs", tenant, scope) if cursor else None
    page = container.training().list_jobs(tenant, agent_type, limit, start)
    next_cursor = (
        encode_cursor("training_jobs", tenant, scope, page.next_key) if page.next_key else None
    )
    return TrainingJobPage(
        items=page.items, has_more=next_cursor is not None, next_cursor=next_cursor
    )

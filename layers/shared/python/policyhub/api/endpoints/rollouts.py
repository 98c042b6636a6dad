"""Rollouts: list, get, abort."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.cursor import decode_cursor, encode_cursor
from policyhub.api.models import REASON_DOC, Described
from policyhub.api.params import AgentTypeQuery, CursorQuery, LimitQuery, RolloutIdPath
from policyhub.domain.rollout import Rollout
from policyhub.domain.versions import DEFAULT_AGENT_TYPE


class RolloutPage(Described):
    items: list[Rollout]
    """Rollouts, newest first."""
    has_more: bool
    """True when another page follows."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class AbortRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000, description=REASON_DOC)


def list_rollouts(
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> RolloutPage:
    tenant = principal().tenant_id
    scope = {"agent_type": agent_type}
    start = decode_cursor(cursor, "rollouts", tenant, scope) if cursor else None
    page = container.rollouts().list_page(tenant, agent_type, limit, start)
    next_cursor = encode_cursor("rollouts", tenant, scope, page.next_key) if page.next_key else None
    return RolloutPage(items=page.items, has_more=next_cursor is not None, next_cursor=next_cursor)


def get_rollout(
    rollout_id: RolloutIdPath, agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE
) -> Rollout:
    return container.rollouts().get(principal().tenant_id, agent_type, rollout_id)


def abort_rollout(
    rollout_id: RolloutIdPath,
    body: Annotated[AbortRequest, Body()],
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
) -> Rollout:
    return container.rollouts().abort(principal(), agent_type, rollout_id, body.reason)

"""Query parameters shared by several endpoints."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from policyhub.domain.versions import AGENT_TYPE_PATTERN

AgentTypeQuery = Annotated[
    str, Query(pattern=AGENT_TYPE_PATTERN, description="Agent; defaults to memory_manager.")
]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="Page size, 1..100.")]
CursorQuery = Annotated[
    str | None, Query(max_length=2048, description="next_cursor of the previous page.")
]

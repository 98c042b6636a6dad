"""Query and path parameters shared by several endpoints."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from policyhub.domain.versions import AGENT_TYPE_PATTERN, VERSION_PATTERN

AgentTypeQuery = Annotated[
    str, Query(pattern=AGENT_TYPE_PATTERN, description="Agent; defaults to memory_manager.")
]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="Page size, 1..100.")]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=2048,
        description="`next_cursor` of the previous page; opaque and tamper-proof (400 "
        "invalid_cursor for any other value, or one from another listing).",
    ),
]
ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
"""What a rollout, experiment or training job id looks like (`ro_…`, `ex_…`, `tj-…`): letters,
digits, `_`, `.`, `-`, up to 64. A path segment like this is the same encoded or not, so the
length the service checks is the length the client sent (issue 14)."""
VersionPath = Annotated[
    str, Path(pattern=VERSION_PATTERN, description="A version, `vMAJOR.MINOR.PATCH`.")
]
RolloutIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="A rollout id (`rollout_id` of a Rollout).")
]
ExperimentIdPath = Annotated[
    str,
    Path(pattern=ID_PATTERN, description="An experiment id (`experiment_id` of an experiment)."),
]
JobIdPath = Annotated[
    str, Path(pattern=ID_PATTERN, description="A training job id (`job_id` of a job).")
]

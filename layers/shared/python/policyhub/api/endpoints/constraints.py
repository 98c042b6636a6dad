"""Constitutional constraints per agent."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.models import AGENT_TYPE_DOC
from policyhub.api.params import AgentTypeQuery
from policyhub.domain.constraints import Constraints
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE


class AgentConstraints(Constraints):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"agent_type": "memory_manager", "max_rank_lift": 3, "max_items_per_source": 2}
            ]
        }
    )

    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )


def _out(agent_type: str, c: Constraints) -> AgentConstraints:
    return AgentConstraints(agent_type=agent_type, **c.model_dump())


def get_constraints(agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE) -> AgentConstraints:
    return _out(agent_type, container.constraints().get(principal().tenant_id, agent_type))


def put_constraints(body: Annotated[AgentConstraints, Body()]) -> AgentConstraints:
    rules = Constraints(**body.model_dump(exclude={"agent_type"}))
    return _out(
        body.agent_type, container.constraints().replace(principal(), body.agent_type, rules)
    )

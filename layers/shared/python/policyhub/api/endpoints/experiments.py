"""A/B experiments between policy versions."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.models import AGENT_TYPE_DOC, REASON_DOC, ExperimentView
from policyhub.api.params import AgentTypeQuery, ExperimentIdPath
from policyhub.domain.experiment import ExperimentSpec
from policyhub.domain.schema_rules import rules_of
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE


class StartExperiment(ExperimentSpec):
    model_config = ConfigDict(
        json_schema_extra={
            **rules_of(ExperimentSpec),
            "examples": [
                {
                    "agent_type": "memory_manager",
                    "name": "v1.2.5 vs production",
                    "variants": [
                        {"version": "v1.2.4", "traffic_percent": 50},
                        {"version": "v1.2.5", "traffic_percent": 50},
                    ],
                    "duration_seconds": 86400,
                }
            ],
        }
    )

    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )


class StopExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000, description=REASON_DOC)


def _view(data: dict[str, Any]) -> ExperimentView:
    return ExperimentView.model_validate(data)


def start_experiment(body: Annotated[StartExperiment, Body()]) -> ExperimentView:
    spec = ExperimentSpec.model_validate(body.model_dump(exclude={"agent_type"}))
    e = container.experiments().start(principal(), body.agent_type, spec)
    return _view(
        container.experiments().get(principal().tenant_id, body.agent_type, e.experiment_id)
    )


def get_experiment(
    experiment_id: ExperimentIdPath, agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE
) -> ExperimentView:
    return _view(container.experiments().get(principal().tenant_id, agent_type, experiment_id))


def stop_experiment(
    experiment_id: ExperimentIdPath,
    body: Annotated[StopExperiment, Body()],
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
) -> ExperimentView:
    return _view(container.experiments().stop(principal(), agent_type, experiment_id, body.reason))

"""A/B experiments between policy versions."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.params import AgentTypeQuery
from policyhub.domain.experiment import ArmResult, ExperimentSpec
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE


class StartExperiment(ExperimentSpec):
    agent_type: str = Field(default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN)


class StopExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


class ExperimentView(BaseModel):
    experiment_id: str
    agent_type: str
    name: str
    state: str
    started_at: str
    ends_at: str | None
    stopped_at: str | None
    stop_reason: str | None
    variants: list[ArmResult]
    winner: str | None
    p_value: float | None
    srm_p_value: float | None


def _view(data: dict[str, Any]) -> ExperimentView:
    return ExperimentView.model_validate(data)


def start_experiment(body: Annotated[StartExperiment, Body()]) -> ExperimentView:
    spec = ExperimentSpec.model_validate(body.model_dump(exclude={"agent_type"}))
    e = container.experiments().start(principal(), body.agent_type, spec)
    return _view(
        container.experiments().get(principal().tenant_id, body.agent_type, e.experiment_id)
    )


def get_experiment(
    experiment_id: str, agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE
) -> ExperimentView:
    return _view(container.experiments().get(principal().tenant_id, agent_type, experiment_id))


def stop_experiment(
    experiment_id: str,
    body: Annotated[StopExperiment, Body()],
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
) -> ExperimentView:
    return _view(container.experiments().stop(principal(), agent_type, experiment_id, body.reason))

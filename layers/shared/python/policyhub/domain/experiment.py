"""A/B experiments: arms of policy versions split by sticky assignment."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyhub.domain.versions import VERSION_PATTERN


class ExperimentState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class ArmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(pattern=VERSION_PATTERN)
    traffic_percent: float = Field(gt=0, le=100)


class ExperimentSpec(BaseModel):
    """What an admin asks for; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    variants: list[ArmSpec] = Field(min_length=2, max_length=5)
    duration_seconds: int | None = Field(default=None, ge=1, le=90 * 24 * 3600)

    @model_validator(mode="after")
    def _arms(self) -> ExperimentSpec:
        versions = [a.version for a in self.variants]
        if len(set(versions)) != len(versions):
            raise ValueError("each version may appear in one arm only")
        if abs(sum(a.traffic_percent for a in self.variants) - 100) > 1e-9:
            raise ValueError("traffic_percent of the variants must add up to 100")
        return self


class ArmResult(BaseModel):
    version: str
    traffic_percent: float
    decisions: int
    outcomes: int
    success_rate: float | None
    mean_reward: float | None
    ci_low: float | None
    ci_high: float | None
    latency_p95_ms: float | None


class Experiment(BaseModel):
    experiment_id: str
    agent_type: str
    name: str
    state: ExperimentState
    variants: list[ArmSpec]
    started_at: datetime
    ends_at: datetime | None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    revision: int = 1
    result: dict[str, Any] | None = None
    """The results frozen when the experiment stopped."""

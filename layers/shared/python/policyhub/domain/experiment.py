"""A/B experiments: arms of policy versions split by sticky assignment."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from policyhub.domain.schema_rules import rules
from policyhub.domain.versions import VERSION_PATTERN


class ExperimentState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class ArmSpec(BaseModel):
    """One arm: a version and its share of the agent's traffic."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    version: str = Field(pattern=VERSION_PATTERN)
    """A `candidate`, `production` or `retired` version with production's feature schema."""
    traffic_percent: float = Field(gt=0, le=100)
    """Percent of traffic this arm serves; the arms add up to 100."""


class ExperimentSpec(BaseModel):
    """What an admin asks for; validated before anything is stored."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra=rules(
            variants="each version appears in one arm only, and the arms' traffic_percent add "
            "up to 100"
        ),
    )
    name: str = Field(min_length=1, max_length=200)
    """A name for people."""
    variants: list[ArmSpec] = Field(min_length=2, max_length=5)
    """2 to 5 arms, each version once, their `traffic_percent` adding up to 100."""
    duration_seconds: int | None = Field(default=None, ge=1, le=90 * 24 * 3600)
    """Stop by itself after this long; runs until stopped when left out."""

    @field_validator("variants")
    @classmethod
    def _arms(cls, variants: list[ArmSpec]) -> list[ArmSpec]:
        versions = [a.version for a in variants]
        if len(set(versions)) != len(versions):
            raise ValueError("each version may appear in one arm only")
        if abs(sum(a.traffic_percent for a in variants) - 100) > 1e-9:
            raise ValueError("traffic_percent of the variants must add up to 100")
        return variants


class ArmResult(BaseModel):
    """One arm's results so far."""

    model_config = ConfigDict(use_attribute_docstrings=True)
    version: str
    """The arm's version."""
    traffic_percent: float
    """Percent of traffic it serves."""
    decisions: int
    """Decisions it served."""
    outcomes: int
    """Decisions with a known outcome (feedback) behind `success_rate`."""
    success_rate: float | None
    """Share of outcomes that succeeded; null without outcomes."""
    mean_reward: float | None
    """Mean reward of the outcomes; null without outcomes."""
    ci_low: float | None
    """Lower bound of the 95 % interval of `success_rate`."""
    ci_high: float | None
    """Upper bound of the 95 % interval of `success_rate`."""
    latency_p95_ms: float | None
    """95th percentile of its rank latency in milliseconds."""


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

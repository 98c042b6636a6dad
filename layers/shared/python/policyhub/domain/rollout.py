"""Rollouts: the pipeline settings, the record of every step, and the state rules around them.

A rollout moves one candidate version through shadow -> canary steps -> production and then
watches the new production for a while. The judging lives in `domain.rollout_judge`;
every change to the record is in `domain.state_changes`; this module holds what is stored
(plain dicts via `to_dict`/`from_dict`) and what is terminal.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyhub.domain.errors import PolicyHubError, invalid

MAX_DURATION_SECONDS = 30 * 24 * 3600
MAX_CANARY_STEPS = 20
MAX_LATENCY_INCREASE = 10.0


class RolloutStrategy(StrEnum):
    SAFE = "safe"
    """Shadow first, then the canary steps."""
    CANARY = "canary"
    """Straight to the first canary step."""


class RolloutState(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"
    PROMOTED = "promoted"
    """Production has moved; the post-promotion watch may still be running."""
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


class Stage(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"
    POST_PROMOTION = "post_promotion"


class Verdict(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    INCONCLUSIVE = "inconclusive"


class PipelineConfig(BaseModel):
    """API.md's `pipeline` object with its defaults. Every rule breach names its field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shadow_seconds: int = 3600
    shadow_min_decisions: int = 500
    canary_steps: tuple[int, ...] = (5, 10, 25, 50, 100)
    step_seconds: int = 900
    min_samples_per_step: int = 200
    min_success_rate: float = 0.95
    max_latency_increase: float = 0.20
    max_step_seconds: int = 7200
    post_promotion_seconds: int = 3600

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool):
                    raise invalid(f"pipeline.{name}", "must be a number, not true/false")
        return data

    @model_validator(mode="after")
    def _check_rules(self) -> PipelineConfig:
        for name in ("shadow_seconds", "step_seconds", "max_step_seconds",
                     "post_promotion_seconds"):
            _require_range(name, getattr(self, name), 1, MAX_DURATION_SECONDS)
        _require_range("shadow_min_decisions", self.shadow_min_decisions, 1, 10_000_000)
        _require_range("min_samples_per_step", self.min_samples_per_step, 1, 10_000_000)
        _check_steps(self.canary_steps)
        if not (math.isfinite(self.min_success_rate) and 0.0 < self.min_success_rate < 1.0):
            raise invalid("pipeline.min_success_rate", "must be strictly between 0 and 1")
        if not (math.isfinite(self.max_latency_increase)
                and 0.0 < self.max_latency_increase <= MAX_LATENCY_INCREASE):
            raise invalid("pipeline.max_latency_increase",
                          f"must be above 0 and at most {MAX_LATENCY_INCREASE:g}")
        for name in ("shadow_seconds", "step_seconds", "post_promotion_seconds"):
            if getattr(self, name) > self.max_step_seconds:
                raise invalid("pipeline.max_step_seconds",
                              f"must be at least {name} ({getattr(self, name)}): a stage must "
                              "be allowed to last its minimum time")
        return self

    def minimum_seconds(self, stage: Stage) -> int:
        """How long a stage runs at least before it may conclude healthy."""
        return {Stage.SHADOW: self.shadow_seconds, Stage.CANARY: self.step_seconds,
                Stage.POST_PROMOTION: self.post_promotion_seconds}[stage]


def _require_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise invalid(f"pipeline.{name}", f"must be between {low} and {high}, got {value}")


def _check_steps(steps: tuple[int, ...]) -> None:
    field = "pipeline.canary_steps"
    if not 1 <= len(steps) <= MAX_CANARY_STEPS:
        raise invalid(field, f"must list 1 to {MAX_CANARY_STEPS} traffic percentages")
    if any(not 1 <= p <= 100 for p in steps):
        raise invalid(field, "every step must be a percentage between 1 and 100")
    if any(b <= a for a, b in pairwise(steps)):
        raise invalid(field, "steps must be strictly increasing")
    if steps[-1] != 100:
        raise invalid(field, "the last step must be 100")


class StepMetrics(BaseModel):
    """One variant's numbers over a step's window, as stored and shown (never NaN)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    requests: int = Field(ge=0)
    success_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_p95_ms: float | None = Field(default=None, ge=0.0)
    latency_p50_ms: float | None = Field(default=None, ge=0.0)
    latency_p93_ms: float | None = Field(default=None, ge=0.0)
    latency_p97_ms: float | None = Field(default=None, ge=0.0)
    outcomes: int = Field(default=0, ge=0)
    """Decisions with a known outcome (feedback or a serving error) behind `success_rate`."""


class StepProgress(BaseModel):
    """Where a step stood at its latest look: time against its minimum and deadline, and how
    much of each check's planned information the evidence carried (1.0 = planned)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    looked_at: datetime
    elapsed_seconds: int = Field(ge=0)
    minimum_seconds: int = Field(ge=0)
    """The stage's minimum time; a healthy step holds until it has passed."""
    deadline_at: datetime
    """A step still inconclusive at this time rolls back."""
    samples_needed: int = Field(ge=0)
    """Decisions each variant needs before the checks run (`shadow_min_decisions` in shadow,
    else `min_samples_per_step`; at 100 % and in the watch only the candidate's count)."""
    information: dict[str, float] = Field(default_factory=dict)
    """Per check (`success_rate`, `latency_p95_ratio`): the share of its planned information;
    at 1.0 a check concludes even without proof either way (decision 098)."""


class RolloutStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    traffic_percent: int = Field(ge=0, le=100)
    started_at: datetime
    ended_at: datetime | None = None
    verdict: Verdict | None = None
    """None while the step is open."""
    baseline: StepMetrics | None = None
    """Production's numbers in the same window; at 100 % and in the post-promotion watch the
    earlier baseline numbers the candidate was judged against."""
    candidate: StepMetrics | None = None
    reasons: tuple[str, ...] = ()
    progress: StepProgress | None = None
    """The latest look's progress (for a closed step: its last look)."""


class Rollout(BaseModel):
    """One rollout record. `revision` grows by one with every stored change."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollout_id: str
    tenant_id: str
    agent_type: str
    candidate_version: str
    baseline_version: str | None
    """Production when the rollout started; None when there was none (retrieval order)."""
    strategy: RolloutStrategy
    state: RolloutState
    traffic_percent: int = Field(ge=0, le=100)
    step_index: int = Field(ge=0)
    """Index into `steps` of the current (or, once ended, the last) step."""
    started_at: datetime
    ended_at: datetime | None = None
    steps: tuple[RolloutStep, ...]
    outcome_reason: str | None = None
    config: PipelineConfig
    revision: int = Field(ge=1)
    promoted_at: datetime | None = None
    watching: bool = False
    """True from promotion until the post-promotion watch ends."""
    watch_until: datetime | None = None
    baseline_reference: StepMetrics | None = None
    """The baseline's numbers pooled over the canary steps below 100 % that concluded healthy
    (shadow's when there is none); the yardstick at 100 % (no concurrent baseline) and during
    the post-promotion watch (decision 098)."""

    @model_validator(mode="after")
    def _check_consistency(self) -> Rollout:
        if not self.steps:
            raise ValueError("a rollout has at least one step")
        if self.step_index != len(self.steps) - 1:
            raise ValueError("step_index must point at the last step")
        if self.watching and (self.state is not RolloutState.PROMOTED or self.watch_until is None):
            raise ValueError("only a promoted rollout with a watch deadline can be watching")
        return self

    @property
    def is_terminal(self) -> bool:
        return self.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED) or (
            self.state is RolloutState.PROMOTED and not self.watching)

    @property
    def current_step(self) -> RolloutStep:
        return self.steps[self.step_index]

    @property
    def step_started_at(self) -> datetime:
        return self.current_step.started_at

    @property
    def step_deadline(self) -> datetime:
        """An inconclusive step rolls back once this has passed."""
        return self.step_started_at + timedelta(seconds=self.config.max_step_seconds)

    @property
    def canary_index(self) -> int | None:
        """Position of the current canary step in `config.canary_steps`, None outside canary."""
        step = self.current_step
        if step.stage is not Stage.CANARY:
            return None
        return self.config.canary_steps.index(step.traffic_percent)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (ISO-8601 Z strings for times) for storage and responses."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        return cls.model_validate(data)


def require_active(rollout: Rollout) -> None:
    if rollout.is_terminal:
        raise PolicyHubError("conflict", f"rollout {rollout.rollout_id} has ended "
                             f"({rollout.state.value}); nothing more can happen to it")


def require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware (UTC)")

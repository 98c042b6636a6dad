"""Rollouts: the pipeline settings, the record of every step, and the state rules around them.

A rollout moves one candidate version through shadow -> canary steps -> production and then
watches the new production for a while. The judging lives in `domain.rollout_judge`;
every change to the record is in `domain.state_changes`; this module holds what is stored
(plain dicts via `to_dict`/`from_dict`) and what is terminal.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.schema_rules import rules

MAX_DURATION_SECONDS = 30 * 24 * 3600
MAX_CANARY_STEPS = 20
MAX_LATENCY_INCREASE = 10.0
MAX_COUNT = 10_000_000


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


Seconds = Annotated[int, Field(ge=1, le=MAX_DURATION_SECONDS)]
Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
StepPercent = Annotated[int, Field(ge=1, le=100)]


class PipelineConfig(BaseModel):
    """The `pipeline` object of a promote (API.md), with its defaults. Every rule breach names
    its field. Every field may be left out (its default applies). Ranges are the fields' own;
    the two rules across fields are in `x-rules` and the fields' descriptions."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra=rules(
            canary_steps="strictly increasing, and the last step is 100",
            max_step_seconds="at least shadow_seconds, step_seconds and post_promotion_seconds "
            "(each given or default): a stage must be allowed to last its minimum time",
        ),
    )

    shadow_seconds: Seconds = 3600
    """Minimum time in shadow (strategy `safe`) before it may conclude healthy."""
    shadow_min_decisions: Count = 500
    """Decisions the shadow stage needs before its checks run."""
    canary_steps: tuple[StepPercent, ...] = Field(
        default=(5, 10, 25, 50, 100), min_length=1, max_length=MAX_CANARY_STEPS
    )
    """Percent of traffic the candidate serves at each canary step; strictly increasing, the
    last one 100."""
    step_seconds: Seconds = 900
    """Minimum time of each canary step before it may conclude healthy."""
    min_samples_per_step: Count = 200
    """Decisions each variant needs in a canary step before its checks run."""
    min_success_rate: float = Field(default=0.95, gt=0.0, lt=1.0)
    """A step is unhealthy when the candidate's success rate is below this."""
    max_latency_increase: float = Field(default=0.20, gt=0.0, le=MAX_LATENCY_INCREASE)
    """A step is unhealthy when the candidate's p95 latency is above baseline p95 * (1 + this)."""
    post_promotion_seconds: Seconds = 3600
    """How long the new production is watched after promotion (a regression rolls it back)."""
    max_step_seconds: Seconds = Field(default=7200, validate_default=True)
    """A stage still inconclusive after this long rolls back; at least `shadow_seconds`,
    `step_seconds` and `post_promotion_seconds`."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not true/false")
        return value

    @field_validator("canary_steps")
    @classmethod
    def _steps(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError("steps must be strictly increasing")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100")
        return steps

    @field_validator("max_step_seconds")
    @classmethod
    def _long_enough(cls, value: int, info: ValidationInfo) -> int:
        for name in ("shadow_seconds", "step_seconds", "post_promotion_seconds"):
            minimum = info.data.get(name, cls.model_fields[name].default)
            if minimum > value:
                raise ValueError(
                    f"must be at least {name} ({minimum}): a stage must be allowed to last its "
                    "minimum time"
                )
        return value

    def minimum_seconds(self, stage: Stage) -> int:
        """How long a stage runs at least before it may conclude healthy."""
        return {Stage.SHADOW: self.shadow_seconds, Stage.CANARY: self.step_seconds,
                Stage.POST_PROMOTION: self.post_promotion_seconds}[stage]


class StepMetrics(BaseModel):
    """One variant's numbers over a step's window, as stored and shown (never NaN)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )

    requests: int = Field(ge=0)
    """Decisions this variant served in the window."""
    success_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    """Share of decisions with a known outcome that succeeded; null without outcomes."""
    latency_p95_ms: float | None = Field(default=None, ge=0.0)
    """95th percentile of rank latency in milliseconds; null without decisions."""
    latency_p50_ms: float | None = Field(default=None, ge=0.0)
    """Median rank latency in milliseconds."""
    latency_p93_ms: float | None = Field(default=None, ge=0.0)
    """93rd percentile of rank latency in milliseconds (for the p95's standard error)."""
    latency_p97_ms: float | None = Field(default=None, ge=0.0)
    """97th percentile of rank latency in milliseconds (for the p95's standard error)."""
    outcomes: int = Field(default=0, ge=0)
    """Decisions with a known outcome (feedback or a serving error) behind `success_rate`."""


class StepProgress(BaseModel):
    """Where a step stood at its latest look: time against its minimum and deadline, and how
    much of each check's planned information the evidence carried (1.0 = planned)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )

    looked_at: datetime
    """When the controller last judged the step (UTC)."""
    elapsed_seconds: int = Field(ge=0)
    """Seconds since the step started, at that look."""
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
    """One stage of a rollout (shadow, a canary step, the post-promotion watch) and its numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    stage: Stage
    """`shadow`, `canary` or `post_promotion`."""
    traffic_percent: int = Field(ge=0, le=100)
    """Percent of traffic the candidate serves in this step (0 in shadow)."""
    started_at: datetime
    """When the step started (UTC)."""
    ended_at: datetime | None = None
    """When the step ended (UTC); null while it is open."""
    verdict: Verdict | None = None
    """None while the step is open."""
    baseline: StepMetrics | None = None
    """Production's numbers in the same window; at 100 % and in the post-promotion watch the
    earlier baseline numbers the candidate was judged against."""
    candidate: StepMetrics | None = None
    """The candidate's numbers in the step's window."""
    reasons: tuple[str, ...] = ()
    """Why the verdict is what it is, one sentence per check."""
    progress: StepProgress | None = None
    """The latest look's progress (for a closed step: its last look)."""


class Rollout(BaseModel):
    """One rollout record. `revision` grows by one with every stored change."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    rollout_id: str
    """Unique id of the rollout (the name of its workflow execution in AWS)."""
    tenant_id: str
    """The tenant of the key that started it."""
    agent_type: str
    """The agent whose production it moves."""
    candidate_version: str
    """The version being rolled out."""
    baseline_version: str | None
    """Production when the rollout started; None when there was none (retrieval order)."""
    strategy: RolloutStrategy
    """`safe` (shadow first) or `canary` (straight to the first canary step)."""
    state: RolloutState
    """`shadow`, `canary`, `promoted` (production has moved, also while the post-promotion
    watch runs), `rolled_back` or `aborted`."""
    traffic_percent: int = Field(ge=0, le=100)
    """Percent of traffic the candidate serves now."""
    step_index: int = Field(ge=0)
    """Index into `steps` of the current (or, once ended, the last) step."""
    started_at: datetime
    """When the rollout started (UTC)."""
    ended_at: datetime | None = None
    """When it ended (UTC); null while it runs, including the post-promotion watch."""
    steps: tuple[RolloutStep, ...]
    """Every step so far, oldest first, with its numbers and verdict."""
    outcome_reason: str | None = None
    """Why it ended as it did (promoted, rolled back and why, aborted and why)."""
    config: PipelineConfig
    """The pipeline it runs: the defaults with the promote's `pipeline` overrides."""
    revision: int = Field(ge=1)
    """Grows by one with every stored change."""
    promoted_at: datetime | None = None
    """When production moved to the candidate; null until then."""
    watching: bool = False
    """True from promotion until the post-promotion watch ends."""
    watch_until: datetime | None = None
    """When the post-promotion watch ends; null outside it."""
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

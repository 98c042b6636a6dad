"""POST /v1/policies/compare: baseline vs candidate by off-policy evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE, VERSION_PATTERN
from policyhub.ml.compare import DEFAULT_MIN_SAMPLES
from policyhub.services.comparison import DEFAULT_WINDOW_HOURS


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baseline_version: str = Field(pattern=VERSION_PATTERN)
    candidate_version: str = Field(pattern=VERSION_PATTERN)
    agent_type: str = Field(default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN)
    window_hours: int = Field(default=DEFAULT_WINDOW_HOURS, ge=1, le=24 * 90)
    min_samples: int = Field(default=DEFAULT_MIN_SAMPLES, ge=1, le=10_000_000)


class Estimate(BaseModel):
    estimated_reward: float | None
    ci_low: float | None
    ci_high: float | None
    warnings: list[str] = Field(
        default_factory=list,
        description="Why these numbers need care: an estimate or interval outside the reward "
        "range [0, 1] (no policy can score there), with the effective sample size it rests "
        "on. Empty when there is nothing to say.",
    )


class LiftEstimate(BaseModel):
    absolute: float | None
    relative: float | None
    ci_low: float | None
    ci_high: float | None


class ShadowSummary(BaseModel):
    decisions: int
    top1_agreement: float | None
    rank_correlation: float | None


class SnipsCrossCheck(BaseModel):
    baseline: Estimate
    candidate: Estimate
    lift: LiftEstimate


class CompareResponse(BaseModel):
    agent_type: str
    baseline_version: str
    candidate_version: str
    is_improvement: bool
    recommendation: Literal["promote", "keep_current", "collect_more_data"]
    method: str
    n_samples: int
    effective_sample_size: float
    baseline: Estimate
    candidate: Estimate
    lift: LiftEstimate
    shadow: ShadowSummary | None
    reasons: list[str]
    snips: SnipsCrossCheck | None
    """The same comparison by SNIPS, beside the doubly robust headline."""
    window_hours: int


def compare(body: Annotated[CompareRequest, Body()]) -> CompareResponse:
    result = container.comparisons().compare(
        principal().tenant_id,
        body.agent_type,
        body.baseline_version,
        body.candidate_version,
        window_hours=body.window_hours,
        min_samples=body.min_samples,
    )
    return CompareResponse.model_validate(result.to_dict())

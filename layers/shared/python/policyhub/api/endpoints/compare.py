"""POST /v1/policies/compare: baseline vs candidate by off-policy evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.models import AGENT_TYPE_DOC, Described
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE, VERSION_PATTERN
from policyhub.ml.compare import DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW_HOURS

# Nothing from services.comparison at import: its reward model loads scikit-learn, and the
# OpenAPI document, served by a function of the lean layer, imports every endpoint module.


class CompareRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "baseline_version": "v1.2.4",
                    "candidate_version": "v1.2.5",
                    "agent_type": "memory_manager",
                }
            ]
        },
    )
    baseline_version: str = Field(pattern=VERSION_PATTERN)
    """The version to compare against, usually production."""
    candidate_version: str = Field(pattern=VERSION_PATTERN)
    """The version that might replace it; it must take the same features (422
    feature_dimension_mismatch otherwise)."""
    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )
    window_hours: int = Field(default=DEFAULT_WINDOW_HOURS, ge=1, le=24 * 90)
    """How many hours of logged decisions to evaluate on."""
    min_samples: int = Field(default=DEFAULT_MIN_SAMPLES, ge=1, le=10_000_000)
    """Effective samples needed before the comparison may recommend `promote`."""


class Estimate(Described):
    estimated_reward: float | None
    """The policy's estimated mean reward on the logged decisions; null without data."""
    ci_low: float | None
    """Lower bound of its 95 % bootstrap interval."""
    ci_high: float | None
    """Upper bound of its 95 % bootstrap interval."""
    warnings: list[str] = Field(
        default_factory=list,
        description="Why these numbers need care: an estimate or interval outside the reward "
        "range [0, 1] (no policy can score there), with the effective sample size it rests "
        "on. Empty when there is nothing to say.",
    )


class LiftEstimate(Described):
    absolute: float | None
    """Candidate minus baseline estimated reward."""
    relative: float | None
    """`absolute` divided by the baseline's estimate; null when that is 0 or unknown."""
    ci_low: float | None
    """Lower bound of the 95 % interval of `absolute`."""
    ci_high: float | None
    """Upper bound of the 95 % interval of `absolute`."""


class ShadowSummary(Described):
    decisions: int
    """Decisions the candidate also ranked in shadow."""
    top1_agreement: float | None
    """Share of those where both put the same item on top."""
    rank_correlation: float | None
    """Mean rank correlation of the two rankings."""


class SnipsCrossCheck(Described):
    baseline: Estimate
    """The baseline's SNIPS estimate."""
    candidate: Estimate
    """The candidate's SNIPS estimate."""
    lift: LiftEstimate
    """The SNIPS lift."""


class CompareResponse(Described):
    agent_type: str
    """The agent."""
    baseline_version: str
    """The version compared against."""
    candidate_version: str
    """The version that might replace it."""
    is_improvement: bool
    """True only when the lift's lower confidence bound is above zero with enough effective
    samples."""
    recommendation: Literal["promote", "keep_current", "collect_more_data"]
    """`promote`, `keep_current` or `collect_more_data`."""
    method: str
    """The headline estimator (`doubly_robust`)."""
    n_samples: int
    """Held-out logged decisions evaluated on."""
    effective_sample_size: float
    """How many decisions the importance-weighted estimate is worth."""
    baseline: Estimate
    """The baseline's estimate."""
    candidate: Estimate
    """The candidate's estimate."""
    lift: LiftEstimate
    """Candidate minus baseline."""
    shadow: ShadowSummary | None
    """Agreement with production in shadow, when shadow logs exist; else null."""
    reasons: list[str]
    """Why the recommendation is what it is, one sentence each."""
    snips: SnipsCrossCheck | None
    """The same comparison by SNIPS, beside the doubly robust headline."""
    window_hours: int
    """The window evaluated, in hours."""


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

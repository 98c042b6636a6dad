"""Request and response bodies of API.md that are not domain entities themselves.

Every field says what it is (pydantic takes the docstring under a field as its description),
and every limit the service enforces is a constraint here, so the OpenAPI document states
exactly what is accepted (issue 14). Rules JSON Schema cannot state are `x-rules`
(`policyhub.domain.schema_rules`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from policyhub.api.routes import route
from policyhub.domain.audit import AuditEvent
from policyhub.domain.deployment import PreviousVersion
from policyhub.domain.experiment import ArmResult
from policyhub.domain.rollout import PipelineConfig, Rollout
from policyhub.domain.schema_rules import rules
from policyhub.domain.versions import (
    AGENT_TYPE_PATTERN,
    DEFAULT_AGENT_TYPE,
    VERSION_PATTERN,
    FeatureSchema,
    PolicyVersion,
)

AgentType = Field(default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN)
AGENT_TYPE_DOC = "The agent; `memory_manager` when left out."
REASON_DOC = "Why, in a sentence; kept in the audit trail."
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Standard base64 with its padding, what `base64.b64decode(..., validate=True)` accepts."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Described(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class RegisterRequest(Strict):
    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )
    artifact_base64: str = Field(
        min_length=4,
        max_length=route("register_policy").max_body_bytes,
        pattern=BASE64_PATTERN,
        description="The ONNX model, standard base64 with padding. It must load and map "
        "`features` [N, context_dim + item_dim + 1] to `scores` [N] or [N, 1] (422 "
        "invalid_artifact otherwise); at most POLICYHUB_MAX_ARTIFACT_BYTES (4 MiB by default) "
        "once decoded (413 otherwise).",
    )
    feature_schema: FeatureSchema
    """The features the model scores."""
    notes: str | None = Field(default=None, max_length=2000)
    """Free text kept with the version."""


class PromoteRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            **rules(
                pipeline="only with strategy safe or canary; with canary, canary_steps must "
                "have a step below 100 (the 100 % step is judged against numbers of an earlier "
                "step)"
            ),
            "examples": [
                {
                    "version": "v1.2.5",
                    "agent_type": "memory_manager",
                    "strategy": "safe",
                    "reason": "weekly retrain",
                    "pipeline": {"shadow_seconds": 20, "step_seconds": 20},
                },
                {"version": "v1.2.5", "strategy": "immediate", "reason": "hotfix"},
            ],
        }
    )

    version: str = Field(pattern=VERSION_PATTERN)
    """The version to promote, a `candidate` (409 not_promotable otherwise)."""
    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN, description=AGENT_TYPE_DOC
    )
    strategy: Literal["safe", "canary", "immediate"] = "safe"
    """`safe`: shadow, then the canary steps, then production (202 with the Rollout);
    `canary`: skips shadow (202); `immediate`: straight to production, audited as such (200)."""
    reason: str | None = Field(default=None, max_length=2000, description=REASON_DOC)
    pipeline: PipelineConfig | None = None
    """Overrides of the rollout pipeline's defaults (only with `safe` or `canary`)."""
    force: StrictBool = Field(
        default=False,
        description="Promote a version that an earlier rollout rolled back as unhealthy "
        "(its last_rollout.promote_again is needs_force); decision 099.",
    )

    @field_validator("pipeline")
    @classmethod
    def _pipeline_fits_strategy(
        cls, pipeline: PipelineConfig | None, info: ValidationInfo
    ) -> PipelineConfig | None:
        strategy = info.data.get("strategy")
        if pipeline is not None and strategy == "immediate":
            raise ValueError("only safe and canary promotions run a pipeline")
        if pipeline is not None and strategy == "canary" and len(pipeline.canary_steps) == 1:
            raise ValueError(
                "with strategy canary canary_steps must have a step below 100: the 100 % step "
                "is judged against baseline numbers measured in an earlier step"
            )
        return pipeline


class RollbackRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"version": "v1.2.2", "agent_type": "memory_manager", "reason": "regression"}
            ]
        }
    )

    version: str = Field(pattern=VERSION_PATTERN)
    """The version to restore: a `retired` (earlier production) version, or the current
    production while a rollout runs (the rollout is aborted and production stays)."""
    agent_type: str = Field(pattern=AGENT_TYPE_PATTERN)
    """The agent (required here, so a rollback never lands on a default by mistake)."""
    reason: str | None = Field(default=None, max_length=2000, description=REASON_DOC)
    force: StrictBool = Field(
        default=False,
        description="Restore a version whose feature schema differs from production's (what "
        "clients send now); without it such a rollback is 409 feature_schema_mismatch. "
        "Audited with force; decision 105.",
    )


class ProductionInfo(Described):
    version: str
    """The version in production."""
    promoted_at: datetime | None
    """When it became production (UTC)."""
    metrics: dict[str, Any]
    """Its offline and online metrics (the version's `metrics`)."""
    feature_schema: FeatureSchema = Field(
        description="The features production takes, i.e. what clients send now; a rollback "
        "target with another schema needs force (decision 105).",
    )


class ExperimentView(Described):
    """An A/B experiment with its per-arm results."""

    experiment_id: str
    """Unique id of the experiment."""
    agent_type: str
    """The agent it splits traffic of."""
    name: str
    """The name it was started with."""
    state: Literal["running", "stopped"]
    """`running` or `stopped`."""
    started_at: str
    """When it started (ISO-8601 UTC)."""
    ends_at: str | None
    """When it stops by itself (`duration_seconds` after the start); null without a duration."""
    stopped_at: str | None
    """When it stopped; null while it runs."""
    stop_reason: str | None
    """Why it stopped; null while it runs."""
    variants: list[ArmResult]
    """Per arm: its version, share of traffic and results."""
    winner: str | None
    """The version of the arm that is significantly better, else null."""
    p_value: float | None
    """p-value of the difference in success rate between the arms; null without data."""
    srm_p_value: float | None
    """Sample-ratio mismatch check: p-value of the arms' decision counts against their traffic
    shares (a small value means the split is not what was asked)."""


class StatusResponse(Described):
    agent_type: str
    """The agent."""
    production: ProductionInfo | None
    """The version serving traffic; null before the first promotion."""
    previous: list[PreviousVersion]
    """Earlier production versions, newest first: the rollback targets."""
    rollout: Rollout | None
    """The active rollout, null when none runs."""
    experiment: ExperimentView | None
    """The running A/B experiment, null when none runs."""
    total_versions: int
    """How many versions the agent has."""


class PolicyPage(Described):
    items: list[PolicyVersion]
    """Versions, newest first."""
    has_more: bool
    """True when another page follows."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class AuditPage(Described):
    items: list[AuditEvent]
    """Audit events, newest first."""
    has_more: bool
    """True when another page follows."""
    next_cursor: str | None
    """Pass as `cursor` to get the next page; null on the last page."""


class PromotionResponse(Described):
    version: str
    """The version now in production."""
    agent_type: str
    """The agent."""
    promoted_at: datetime
    """When production moved (UTC)."""
    previous_version: str | None
    """The version that served before; null if there was none."""


class RollbackResponse(PromotionResponse):
    aborted_rollout_id: str | None
    """The rollout this rollback aborted; null when none was active."""


class HealthResponse(Described):
    status: Literal["ok"]
    """Always `ok` when the API answers."""
    version: str
    """The API version (`1`)."""


class ErrorDetailBody(Described):
    field: str
    """Where the problem is, e.g. `body.version` or `query.limit`."""
    issue: str
    """What is wrong with it."""


class ErrorBody(Described):
    code: str
    """Machine-readable, snake_case (the `code` values each response lists)."""
    message: str
    """A human sentence."""
    request_id: str
    """The request's id, also in the `x-request-id` header; quote it when you report a problem."""
    details: list[ErrorDetailBody]
    """Per field, what is wrong; empty when the error is not about one field."""


class ErrorEnvelope(Described):
    """Every error, whatever its status."""

    error: ErrorBody
    """The error."""

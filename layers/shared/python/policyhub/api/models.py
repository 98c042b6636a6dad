"""Request and response bodies of API.md that are not domain entities themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from policyhub.domain.audit import AuditEvent
from policyhub.domain.deployment import PreviousVersion
from policyhub.domain.versions import (
    AGENT_TYPE_PATTERN,
    DEFAULT_AGENT_TYPE,
    VERSION_PATTERN,
    FeatureSchema,
    PolicyVersion,
)

AgentType = Field(default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    agent_type: str = AgentType
    artifact_base64: str = Field(min_length=1)
    feature_schema: FeatureSchema
    notes: str | None = Field(default=None, max_length=2000)


class PromoteRequest(Strict):
    version: str = Field(pattern=VERSION_PATTERN)
    agent_type: str = AgentType
    strategy: Literal["safe", "canary", "immediate"] = "safe"
    reason: str | None = Field(default=None, max_length=2000)
    pipeline: dict[str, Any] | None = None
    force: StrictBool = Field(
        default=False,
        description="Promote a version that an earlier rollout rolled back as unhealthy "
        "(its last_rollout.promote_again is needs_force); decision 099.",
    )


class RollbackRequest(Strict):
    version: str = Field(pattern=VERSION_PATTERN)
    agent_type: str = Field(pattern=AGENT_TYPE_PATTERN)
    reason: str | None = Field(default=None, max_length=2000)
    force: StrictBool = Field(
        default=False,
        description="Restore a version whose feature schema differs from production's (what "
        "clients send now); without it such a rollback is 409 feature_schema_mismatch. "
        "Audited with force; decision 105.",
    )


class ProductionInfo(BaseModel):
    version: str
    promoted_at: datetime | None
    metrics: dict[str, Any]
    feature_schema: FeatureSchema = Field(
        description="The features production takes, i.e. what clients send now; a rollback "
        "target with another schema needs force (decision 105).",
    )


class StatusResponse(BaseModel):
    agent_type: str
    production: ProductionInfo | None
    previous: list[PreviousVersion]
    rollout: dict[str, Any] | None
    experiment: dict[str, Any] | None
    total_versions: int


class PolicyPage(BaseModel):
    items: list[PolicyVersion]
    has_more: bool
    next_cursor: str | None


class AuditPage(BaseModel):
    items: list[AuditEvent]
    has_more: bool
    next_cursor: str | None


class PromotionResponse(BaseModel):
    version: str
    agent_type: str
    promoted_at: datetime
    previous_version: str | None


class RollbackResponse(PromotionResponse):
    aborted_rollout_id: str | None


class HealthResponse(BaseModel):
    status: Literal["ok"]
    version: str

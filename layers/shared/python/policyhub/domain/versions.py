"""Policy versions: their numbers, statuses and the record the registry keeps of each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policyhub.domain.errors import invalid

AGENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
DEFAULT_AGENT_TYPE = "memory_manager"
VERSION_PATTERN = r"^v(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$"
_VERSION_RE = re.compile(VERSION_PATTERN)


class PolicyStatus(StrEnum):
    CANDIDATE = "candidate"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"
    ARCHIVED = "archived"


@dataclass(frozen=True, order=True)
class SemVer:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str, field_path: str = "version") -> SemVer:
        m = _VERSION_RE.match(text)
        if not m:
            raise invalid(field_path, f"{text!r} is not a version like v1.2.3")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def sort_key(self) -> str:
        """Zero-padded so that string order is version order (DynamoDB sort keys)."""
        return f"{self.major:06d}.{self.minor:06d}.{self.patch:06d}"


class FeatureSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    context_dim: int = Field(ge=0, le=4096)
    item_dim: int = Field(ge=0, le=4096)

    @property
    def input_dim(self) -> int:
        """Context ⊕ item features ⊕ retrieval score."""
        return self.context_dim + self.item_dim + 1


def next_version(
    latest: SemVer | None, latest_schema: FeatureSchema | None, schema: FeatureSchema
) -> SemVer:
    """First v1.0.0; the same feature schema bumps PATCH; a schema change bumps MINOR."""
    if latest is None:
        return SemVer(1, 0, 0)
    if latest_schema is not None and latest_schema != schema:
        return SemVer(latest.major, latest.minor + 1, 0)
    return SemVer(latest.major, latest.minor, latest.patch + 1)


class ArtifactRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=1)


class TrainedOn(BaseModel):
    model_config = ConfigDict(frozen=True)
    interactions: int
    window_start: datetime
    window_end: datetime


class PolicyMetrics(BaseModel):
    offline: dict[str, Any] = Field(default_factory=dict)
    online: dict[str, Any] = Field(default_factory=dict)


class RolloutOutcome(StrEnum):
    """How a rollout ended without promoting its candidate."""

    ABORTED = "aborted"
    """Stopped by an admin (abort, or a manual rollback during the rollout): never judged."""
    INCONCLUSIVE = "inconclusive"
    """Rolled back at `max_step_seconds` without enough evidence either way."""
    UNHEALTHY = "unhealthy"
    """Rolled back on evidence: a failed check, a hard failure, or a CloudWatch alarm."""


class PromoteAgain(StrEnum):
    ALLOWED = "allowed"
    NEEDS_FORCE = "needs_force"
    """Promote only with `"force": true`: a rollout found the version unhealthy."""


def promote_again_after(outcome: RolloutOutcome) -> PromoteAgain:
    return PromoteAgain.NEEDS_FORCE if outcome is RolloutOutcome.UNHEALTHY else PromoteAgain.ALLOWED


class LastRollout(BaseModel):
    """The last rollout that ended without promoting a version (decision 099)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollout_id: str
    outcome: RolloutOutcome
    reason: str | None = None
    """The rollout's `outcome_reason`: why it was aborted or rolled back."""
    ended_at: datetime
    promote_again: PromoteAgain
    """Follows from `outcome`: only `unhealthy` needs force."""

    @classmethod
    def of(
        cls, rollout_id: str, outcome: RolloutOutcome, reason: str | None, ended_at: datetime
    ) -> LastRollout:
        return cls(
            rollout_id=rollout_id,
            outcome=outcome,
            reason=reason,
            ended_at=ended_at,
            promote_again=promote_again_after(outcome),
        )

    @model_validator(mode="after")
    def _consistent(self) -> LastRollout:
        if self.promote_again is not promote_again_after(self.outcome):
            raise ValueError(
                f"a rollout that ended {self.outcome.value} cannot leave "
                f"promote_again {self.promote_again.value}"
            )
        return self


class PolicyVersion(BaseModel):
    """The PolicyVersion object of API.md. The tenant is the record's partition, not a field."""

    version: str
    agent_type: str
    status: PolicyStatus
    created_at: datetime
    promoted_at: datetime | None = None
    parent_version: str | None = None
    training_job_id: str | None = None
    artifact: ArtifactRef
    feature_schema: FeatureSchema
    trained_on: TrainedOn | None = None
    metrics: PolicyMetrics = Field(default_factory=PolicyMetrics)
    notes: str | None = None
    last_rollout: LastRollout | None = None
    """The last rollout that ended without promoting this version, except that an abort (which
    judges nothing) never replaces an earlier rollback's verdict. None until such a rollout
    ends, and again once the version is promoted. Decides whether promoting again needs
    `force` (domain.promotion_rules)."""

    @property
    def semver(self) -> SemVer:
        return SemVer.parse(self.version)

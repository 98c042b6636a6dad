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
    """The features a version scores: rank calls must send exactly these many."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
    context_dim: int = Field(ge=0, le=4096)
    """Length of `context.features` in a rank call."""
    item_dim: int = Field(ge=0, le=4096)
    """Length of each candidate's `features` in a rank call."""

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
    """The stored ONNX model; it is loaded only after its bytes hash to `sha256`."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the ONNX bytes."""
    size_bytes: int = Field(ge=1)
    """Size of the ONNX model in bytes."""


class TrainedOn(BaseModel):
    """The logged data a trained version learned from."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)
    interactions: int
    """Decisions with feedback the trainer used."""
    window_start: datetime
    """Start of the log window (UTC)."""
    window_end: datetime
    """End of the log window (UTC)."""


class PolicyMetrics(BaseModel):
    """What is known of a version's quality."""

    model_config = ConfigDict(use_attribute_docstrings=True)
    offline: dict[str, Any] = Field(default_factory=dict)
    """Metrics from training (e.g. held-out error of the reward model); free-form."""
    online: dict[str, Any] = Field(default_factory=dict)
    """Metrics measured on live traffic; free-form."""


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

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    rollout_id: str
    """The rollout that ended."""
    outcome: RolloutOutcome
    """How it ended: `aborted`, `inconclusive` or `unhealthy`."""
    reason: str | None = None
    """The rollout's `outcome_reason`: why it was aborted or rolled back."""
    ended_at: datetime
    """When the rollout ended (UTC)."""
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

    model_config = ConfigDict(use_attribute_docstrings=True)

    version: str
    """`vMAJOR.MINOR.PATCH`, assigned by the registry: first `v1.0.0`, each training bumps
    PATCH, a feature-schema change bumps MINOR."""
    agent_type: str
    """The agent this version ranks for."""
    status: PolicyStatus
    """Where the version stands: `candidate`, `shadow`, `canary`, `production`, `retired` (was
    production; can be rolled back to), `rolled_back` (failed a rollout), `archived`."""
    created_at: datetime
    """When it was registered (UTC)."""
    promoted_at: datetime | None = None
    """When it last became production; null if it never did."""
    parent_version: str | None = None
    """The production version it was trained from; null for an external registration."""
    training_job_id: str | None = None
    """The training job that produced it; null for an external registration."""
    artifact: ArtifactRef
    """The stored ONNX model."""
    feature_schema: FeatureSchema
    """The features it scores."""
    trained_on: TrainedOn | None = None
    """The logged data it learned from; null for an external registration."""
    metrics: PolicyMetrics = Field(default_factory=PolicyMetrics)
    """Offline (training) and online (traffic) metrics."""
    notes: str | None = None
    """Free text given at registration."""
    last_rollout: LastRollout | None = None
    """The last rollout that ended without promoting this version, except that an abort (which
    judges nothing) never replaces an earlier rollback's verdict. None until such a rollout
    ends, and again once the version is promoted. Decides whether promoting again needs
    `force` (domain.promotion_rules)."""

    @property
    def semver(self) -> SemVer:
        return SemVer.parse(self.version)

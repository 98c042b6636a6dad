"""Which policy serves a request: the serving view of an agent and sticky assignment.

`bucket = hash(routing_key, salt) mod 10000`; a canary at p % serves buckets below p·100, so a
user in the canary at 5 % is still in it at 10, 25 and 50 % (DESIGN.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from policyhub.domain.constraints import Constraints
from policyhub.domain.versions import FeatureSchema, PolicyVersion

BUCKETS = 10_000
Variant = Literal["production", "canary", "experiment", "retrieval"]


class ServedPolicy(BaseModel):
    version: str
    sha256: str
    feature_schema: FeatureSchema

    @classmethod
    def of(cls, v: PolicyVersion) -> ServedPolicy:
        return cls(version=v.version, sha256=v.artifact.sha256, feature_schema=v.feature_schema)


class RolloutRoute(BaseModel):
    rollout_id: str
    candidate: ServedPolicy
    stage: Literal["shadow", "canary", "watch"]
    """`watch`: promoted; production serves and its traffic is tagged for the watch."""
    traffic_percent: float = Field(ge=0, le=100)


class ExperimentArm(BaseModel):
    policy: ServedPolicy
    traffic_percent: float = Field(gt=0, le=100)


class ExperimentRoute(BaseModel):
    experiment_id: str
    arms: list[ExperimentArm]
    ends_at: datetime | None = None
    """After this the arms stop serving (production serves) until an admin stops it."""


class ServingView(BaseModel):
    """Everything the rank path needs about an agent, read in one round trip and cached."""

    production: ServedPolicy | None = None
    rollout: RolloutRoute | None = None
    experiment: ExperimentRoute | None = None
    constraints: Constraints = Field(default_factory=Constraints)


@dataclass(frozen=True)
class Assignment:
    variant: Variant
    policy: ServedPolicy | None
    fallback: ServedPolicy | None = None
    """What serves if `policy` fails (production behind a canary)."""
    shadow: ServedPolicy | None = None
    rollout_id: str | None = None
    experiment_id: str | None = None


def bucket(routing_key: str, salt: str) -> int:
    digest = hashlib.sha256(f"{salt}\x00{routing_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(view: ServingView, routing_key: str, now: datetime | None = None) -> Assignment:
    e = view.experiment
    if e is not None and (e.ends_at is None or now is None or now < e.ends_at):
        b = bucket(routing_key, e.experiment_id)
        edge = 0.0
        for arm in e.arms:
            edge += arm.traffic_percent * BUCKETS / 100
            if b < edge:
                return Assignment(
                    "experiment",
                    arm.policy,
                    fallback=view.production,
                    experiment_id=e.experiment_id,
                )
        # Arms that do not sum to 100 % leave the rest on production, outside the experiment.
    if view.production is None:
        return Assignment("retrieval", None)
    r = view.rollout
    if r is None:
        return Assignment("production", view.production)
    if r.stage == "watch":
        return Assignment("production", view.production, rollout_id=r.rollout_id)
    if r.stage == "shadow":
        return Assignment(
            "production", view.production, shadow=r.candidate, rollout_id=r.rollout_id
        )
    if bucket(routing_key, r.rollout_id) < r.traffic_percent * BUCKETS / 100:
        return Assignment("canary", r.candidate, fallback=view.production, rollout_id=r.rollout_id)
    return Assignment("production", view.production, rollout_id=r.rollout_id)

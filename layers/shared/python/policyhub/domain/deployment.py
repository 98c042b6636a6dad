"""The per-agent deployment pointer: which version serves, which can be rolled back to."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from policyhub.domain.routing import ExperimentRoute, RolloutRoute, ServedPolicy
from policyhub.domain.versions import FeatureSchema

PREVIOUS_KEPT = 10
"""How many earlier production versions the pointer lists (every `retired` one stays valid)."""


class PreviousVersion(BaseModel):
    """An earlier production version: a rollback target."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    version: str
    """The version."""
    promoted_at: datetime | None
    """When it last became production (UTC)."""
    feature_schema: FeatureSchema | None = None
    """The features the version takes; a rollback to one that differs from production's is
    refused without `force` (decision 105). Null only on pointers written before it was kept."""


class Deployment(BaseModel):
    """One record per (tenant, agent_type); every change bumps `revision` conditionally."""

    agent_type: str
    revision: int = 0
    production_version: str | None = None
    production: ServedPolicy | None = None
    """The production version's artifact and schema, copied here for the rank path."""
    promoted_at: datetime | None = None
    previous: list[PreviousVersion] = Field(default_factory=list)
    latest_version: str | None = None
    latest_schema: FeatureSchema | None = None
    total_versions: int = 0
    active_rollout_id: str | None = None
    active_experiment_id: str | None = None
    rollout_route: RolloutRoute | None = None
    experiment_route: ExperimentRoute | None = None

"""A state change of one agent's registry, committed all-or-nothing by a PolicyStore.

Services compute a Transition from what they read (domain.state_changes builds them); the store
commits it only if nothing changed since: the deployment's revision (when the pointer is
written), every touched version's status and every rollout's and experiment's revision are
conditions. That is how the loser of a race gets a 409 instead of a half-applied change. A
controller's hold writes only its rollout, at the same revision (decision 108).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from policyhub.domain.audit import AuditEvent
from policyhub.domain.deployment import Deployment

if TYPE_CHECKING:
    from policyhub.domain.experiment import Experiment
    from policyhub.domain.rollout import Rollout
from policyhub.domain.versions import PolicyStatus, PolicyVersion


@dataclass(frozen=True)
class VersionUpdate:
    """Replace a version record, provided its status is still `expected`."""

    updated: PolicyVersion
    expected: PolicyStatus


@dataclass(frozen=True)
class RolloutWrite:
    """Write a rollout record: new (`expected_revision` None) or replacing that revision."""

    rollout: Rollout
    expected_revision: int | None


@dataclass(frozen=True)
class ExperimentWrite:
    experiment: Experiment
    expected_revision: int | None


@dataclass(frozen=True)
class Transition:
    tenant_id: str
    agent_type: str
    expected_revision: int
    """The deployment's revision as read; 0 means the deployment record does not exist yet."""
    deployment: Deployment | None
    """None leaves the pointer alone (a rollout step that changes no routing)."""
    version_updates: tuple[VersionUpdate, ...] = ()
    new_versions: tuple[PolicyVersion, ...] = ()
    audit: tuple[AuditEvent, ...] = ()
    rollouts: tuple[RolloutWrite, ...] = ()
    experiments: tuple[ExperimentWrite, ...] = ()

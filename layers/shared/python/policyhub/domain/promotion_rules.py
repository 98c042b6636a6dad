"""When a version may be promoted at all, whatever the strategy."""

from __future__ import annotations

from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.versions import PolicyStatus, PolicyVersion


def require_promotable(current: Deployment, target: PolicyVersion) -> None:
    """Nothing else is moving traffic, and the target is a candidate (409 otherwise)."""
    require_no_traffic_change(current)
    if target.status == PolicyStatus.PRODUCTION:
        raise PolicyHubError("already_production", f"{target.version} is already in production")
    if target.status != PolicyStatus.CANDIDATE:
        raise PolicyHubError(
            "not_promotable",
            f"{target.version} is {target.status.value}; only a candidate can be promoted "
            "(use rollback for a retired version)",
        )


def require_no_traffic_change(current: Deployment) -> None:
    """One rollout or one experiment at a time per agent, never both (409 otherwise)."""
    if current.active_rollout_id:
        raise PolicyHubError(
            "rollout_active",
            f"rollout {current.active_rollout_id} is active; abort it or let it finish first",
        )
    if current.active_experiment_id:
        raise PolicyHubError(
            "experiment_active",
            f"experiment {current.active_experiment_id} is running; stop it first",
        )

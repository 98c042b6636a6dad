"""When a version may be promoted at all, whatever the strategy, what a rollout that ended
without promoting its candidate leaves on the candidate's record (decision 099), and when a
rollback target may serve the clients production serves now (decision 105)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import ErrorDetail, PolicyHubError
from policyhub.domain.routing import ServedPolicy
from policyhub.domain.versions import (
    FeatureSchema,
    LastRollout,
    PolicyStatus,
    PolicyVersion,
    PromoteAgain,
    RolloutOutcome,
)


def require_promotable(current: Deployment, target: PolicyVersion, *, force: bool = False) -> None:
    """Nothing else is moving traffic, and the target is a candidate, or a version a rollout
    rolled back: as inconclusive freely, as unhealthy only with `force` (409 otherwise)."""
    require_no_traffic_change(current)
    if target.status == PolicyStatus.PRODUCTION:
        raise PolicyHubError("already_production", f"{target.version} is already in production")
    if target.status == PolicyStatus.ROLLED_BACK:
        _require_promotable_again(target, force)
        return
    if target.status != PolicyStatus.CANDIDATE:
        raise PolicyHubError(
            "not_promotable",
            f"{target.version} is {target.status.value}; only a candidate or a rolled-back "
            "version can be promoted (use rollback for a retired version)",
        )


def _require_promotable_again(target: PolicyVersion, force: bool) -> None:
    last = target.last_rollout
    if force or (last is not None and last.promote_again is PromoteAgain.ALLOWED):
        return
    if last is None:
        raise PolicyHubError(
            "not_promotable",
            f"{target.version} was rolled back by a rollout that did not record why; "
            'pass "force": true to promote it again',
        )
    raise PolicyHubError(
        "not_promotable",
        f"{target.version} was rolled back as {last.outcome.value} by rollout "
        f"{last.rollout_id} ({last.reason or 'no reason recorded'}); "
        'pass "force": true to promote it again',
    )


def after_rollout_without_promotion(
    candidate: PolicyVersion,
    rollout_id: str,
    outcome: RolloutOutcome,
    reason: str | None,
    ended_at: datetime,
) -> PolicyVersion:
    """The candidate's record once its rollout ended without promoting it.

    Rolled back (inconclusive or unhealthy): status `rolled_back`, this rollout recorded.
    Aborted: nothing was judged, so the version returns to where it stood before the rollout:
    `candidate` with the abort recorded, or, if an earlier rollout had rolled it back,
    `rolled_back` with that rollout's verdict still in force (an abort never clears the need
    for `force`).
    """
    earlier = candidate.last_rollout
    if outcome is RolloutOutcome.ABORTED:
        if earlier is not None and earlier.outcome is not RolloutOutcome.ABORTED:
            return candidate.model_copy(update={"status": PolicyStatus.ROLLED_BACK})
        status = PolicyStatus.CANDIDATE
    else:
        status = PolicyStatus.ROLLED_BACK
    return candidate.model_copy(
        update={
            "status": status,
            "last_rollout": LastRollout.of(rollout_id, outcome, reason, ended_at),
        }
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


def _dims(schema: FeatureSchema) -> str:
    return f"context_dim {schema.context_dim}, item_dim {schema.item_dim}"


def require_rollback_keeps_serving(
    serving: ServedPolicy | None, target: PolicyVersion, *, force: bool = False
) -> dict[str, Any]:
    """A rollback must not break serving (decision 105): the target must take the features
    that production's clients send now, i.e. production's feature schema, or every rank call
    after the rollback fails with 422 feature_dimension_mismatch. Otherwise 409
    `feature_schema_mismatch` naming both schemas, unless `force` (the clients changed too).

    Returns what the rollback's audit event records about it: `force`, and the schema change
    it forced through."""
    details: dict[str, Any] = {"force": True} if force else {}
    if serving is None or serving.version == target.version:
        return details
    have, want = serving.feature_schema, target.feature_schema
    if have == want:
        return details
    if force:
        return {
            **details,
            "feature_schema_change": {
                "from": have.model_dump(mode="json"),
                "to": want.model_dump(mode="json"),
            },
        }
    issue = (
        f"{target.version} expects {_dims(want)}; production {serving.version} and its "
        f"clients use {have.context_dim}/{have.item_dim}"
    )
    raise PolicyHubError(
        "feature_schema_mismatch",
        f"{issue}: after this rollback every rank call would fail with 422 "
        "feature_dimension_mismatch. Roll back to a version with the same feature schema, or "
        'pass "force": true if the clients now send the features it expects',
        [ErrorDetail("body.version", issue)],
    )

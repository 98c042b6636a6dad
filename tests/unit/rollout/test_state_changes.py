"""The one module of state changes: how production moves, what a rollout that ends without
promoting leaves behind, and that a composed change is committed one revision later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policyhub.domain.deployment import Deployment, PreviousVersion
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.routing import ServedPolicy
from policyhub.domain.state_changes import (
    PointerChange,
    abort_rollout,
    end_rollout,
    move_production,
    roll_back_rollout,
    transition,
)
from policyhub.domain.versions import (
    ArtifactRef,
    FeatureSchema,
    LastRollout,
    PolicyStatus,
    PolicyVersion,
    RolloutOutcome,
)
from tests.unit.rollout.builders import T0, in_canary, in_watch

NOW = T0 + timedelta(hours=1)


def version(v: str, status: PolicyStatus) -> PolicyVersion:
    return PolicyVersion(
        version=v,
        agent_type="memory_manager",
        status=status,
        created_at=datetime(2026, 10, 1, tzinfo=UTC),
        artifact=ArtifactRef(sha256=v[-1] * 64 if v[-1].isdigit() else "0" * 64, size_bytes=8),
        feature_schema=FeatureSchema(context_dim=1, item_dim=1),
    )


def serving(v: PolicyVersion, revision: int = 7, previous: tuple[str, ...] = ()) -> Deployment:
    return Deployment(
        agent_type="memory_manager",
        revision=revision,
        production_version=v.version,
        production=ServedPolicy.of(v),
        promoted_at=T0,
        previous=[PreviousVersion(version=p, promoted_at=None) for p in previous],
    )


def test_production_moves_the_old_version_to_the_head_of_the_rollback_list() -> None:
    old, new = version("v1.0.1", PolicyStatus.PRODUCTION), version("v1.0.2", PolicyStatus.CANARY)
    new = new.model_copy(
        update={"last_rollout": LastRollout.of("ro_1", RolloutOutcome.ABORTED, "x", T0)}
    )
    change = move_production(serving(old, previous=("v1.0.0",)), new, old, NOW)
    d = change.deployment
    assert d.production_version == "v1.0.2" and d.promoted_at == NOW
    assert [p.version for p in d.previous] == ["v1.0.1", "v1.0.0"]
    assert d.previous[0].promoted_at == T0
    target, left = (u.updated for u in change.version_updates)
    assert (target.status, target.promoted_at, target.last_rollout) == (
        PolicyStatus.PRODUCTION,
        NOW,
        None,
    )
    assert left.version == "v1.0.1" and left.status is PolicyStatus.RETIRED
    assert [u.expected for u in change.version_updates] == [
        PolicyStatus.CANARY,
        PolicyStatus.PRODUCTION,
    ]


def test_a_restored_version_leaves_the_rollback_list_and_a_rolled_back_one_never_joins() -> None:
    baseline = version("v1.0.1", PolicyStatus.RETIRED)
    candidate = version("v1.0.2", PolicyStatus.PRODUCTION)
    rolled_back = candidate.model_copy(update={"status": PolicyStatus.ROLLED_BACK})
    current = serving(candidate, previous=("v1.0.1", "v1.0.0"))
    change = move_production(current, baseline, candidate, NOW, leaving_as=rolled_back)
    assert change.deployment.production_version == "v1.0.1"
    assert [p.version for p in change.deployment.previous] == ["v1.0.0"]
    assert change.version_updates[1].updated.status is PolicyStatus.ROLLED_BACK


@pytest.mark.parametrize(
    ("target", "leaving"),
    [("v1.0.3", None), ("v1.0.3", "v1.0.0"), ("v1.0.1", "v1.0.1")],
    ids=["no-leaving-version", "another-leaving-version", "target-already-serves"],
)
def test_a_pointer_and_versions_read_at_different_moments_are_a_concurrent_change(
    target: str, leaving: str | None
) -> None:
    """The pointer says v1.0.1 serves; anything else read means a change landed between reads."""
    current = serving(version("v1.0.1", PolicyStatus.PRODUCTION))
    left = version(leaving, PolicyStatus.PRODUCTION) if leaving else None
    with pytest.raises(PolicyHubError) as err:
        move_production(current, version(target, PolicyStatus.CANDIDATE), left, NOW)
    assert err.value.code == "concurrent_change"


def test_an_ended_canary_returns_its_candidate_and_leaves_production_alone() -> None:
    rollout = in_canary(25)
    candidate = version(rollout.candidate_version, PolicyStatus.CANARY)
    current = serving(version(rollout.baseline_version or "", PolicyStatus.PRODUCTION))
    current = current.model_copy(update={"active_rollout_id": rollout.rollout_id})
    ended = abort_rollout(rollout, "stop", NOW)
    change = end_rollout(current, ended, candidate, RolloutOutcome.ABORTED, None, NOW)
    assert change.deployment.production_version == rollout.baseline_version
    assert change.deployment.active_rollout_id is None and change.deployment.rollout_route is None
    (update,) = change.version_updates
    assert update.updated.status is PolicyStatus.CANDIDATE
    assert update.expected is PolicyStatus.CANARY


def test_a_rollback_in_the_watch_returns_production_to_the_baseline() -> None:
    rollout = in_watch()
    candidate = version(rollout.candidate_version, PolicyStatus.PRODUCTION)
    baseline = version(rollout.baseline_version or "", PolicyStatus.RETIRED)
    current = serving(candidate, previous=(baseline.version,))
    ended = roll_back_rollout(rollout, rollout.current_step, "rolled back: unhealthy", NOW)
    change = end_rollout(current, ended, candidate, RolloutOutcome.UNHEALTHY, baseline, NOW)
    assert change.deployment.production_version == baseline.version
    assert change.deployment.previous == []
    statuses = {u.updated.version: u.updated.status for u in change.version_updates}
    assert statuses == {
        baseline.version: PolicyStatus.PRODUCTION,
        candidate.version: PolicyStatus.ROLLED_BACK,
    }


def test_a_composed_change_is_committed_exactly_one_revision_later() -> None:
    """A manual rollback during a watch ends the watch and moves production in one commit."""
    rollout = in_watch()
    candidate = version(rollout.candidate_version, PolicyStatus.PRODUCTION)
    older = version("v1.0.0", PolicyStatus.RETIRED)
    current = serving(candidate, revision=41, previous=("v1.0.1", "v1.0.0"))
    ended = PointerChange(current.model_copy(update={"active_rollout_id": None}))
    moved = move_production(ended.deployment, older, candidate, NOW)
    composed = PointerChange(moved.deployment, ended.version_updates).plus(*moved.version_updates)
    t = transition("acme", current, composed)
    assert t.expected_revision == 41
    assert t.deployment is not None and t.deployment.revision == 42
    assert t.deployment.production_version == "v1.0.0"

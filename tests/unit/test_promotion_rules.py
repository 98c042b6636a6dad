"""Promoting again after a rollout that did not promote (decision 099): the pure rule.

Each way a rollout can end without promoting (aborted, inconclusive, unhealthy) by force,
and what each leaves on the version's record.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.promotion_rules import after_rollout_without_promotion, require_promotable
from policyhub.domain.versions import (
    ArtifactRef,
    FeatureSchema,
    LastRollout,
    PolicyStatus,
    PolicyVersion,
    PromoteAgain,
    RolloutOutcome,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
IDLE = Deployment(agent_type="memory_manager", revision=3, production_version="v1.0.0")
WHY = {
    RolloutOutcome.ABORTED: "aborted: wrong build",
    RolloutOutcome.INCONCLUSIVE: "rolled back: inconclusive in the 5 % canary step: "
    "candidate has 3 of the 200 decisions a step needs; still inconclusive after "
    "max_step_seconds (7200 s)",
    RolloutOutcome.UNHEALTHY: "rolled back: unhealthy in the 5 % canary step: "
    "success rate 0.62 is below 0.95",
}


def _version(status: PolicyStatus = PolicyStatus.CANDIDATE) -> PolicyVersion:
    return PolicyVersion(
        version="v1.0.1",
        agent_type="memory_manager",
        status=status,
        created_at=T0,
        artifact=ArtifactRef(sha256="a" * 64, size_bytes=10),
        feature_schema=FeatureSchema(context_dim=2, item_dim=2),
    )


def _after(outcome: RolloutOutcome, version: PolicyVersion | None = None) -> PolicyVersion:
    """The version once rollout ro_1 of it (it is in canary) ended with `outcome`."""
    in_canary = (version or _version()).model_copy(update={"status": PolicyStatus.CANARY})
    return after_rollout_without_promotion(in_canary, "ro_1", outcome, WHY[outcome], T1)


@pytest.mark.parametrize(
    ("outcome", "status", "promote_again"),
    [
        (RolloutOutcome.ABORTED, PolicyStatus.CANDIDATE, PromoteAgain.ALLOWED),
        (RolloutOutcome.INCONCLUSIVE, PolicyStatus.ROLLED_BACK, PromoteAgain.ALLOWED),
        (RolloutOutcome.UNHEALTHY, PolicyStatus.ROLLED_BACK, PromoteAgain.NEEDS_FORCE),
    ],
)
def test_the_end_of_a_rollout_that_did_not_promote_is_on_the_version_record(
    outcome: RolloutOutcome, status: PolicyStatus, promote_again: PromoteAgain
) -> None:
    after = _after(outcome)
    assert after.status is status
    assert after.last_rollout == LastRollout(
        rollout_id="ro_1",
        outcome=outcome,
        reason=WHY[outcome],
        ended_at=T1,
        promote_again=promote_again,
    )


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    "outcome", [RolloutOutcome.ABORTED, RolloutOutcome.INCONCLUSIVE, RolloutOutcome.UNHEALTHY]
)
def test_promoting_again_needs_force_only_after_an_unhealthy_rollback(
    outcome: RolloutOutcome, force: bool
) -> None:
    version = _after(outcome)
    if outcome is RolloutOutcome.UNHEALTHY and not force:
        with pytest.raises(PolicyHubError) as err:
            require_promotable(IDLE, version, force=force)
        assert (err.value.code, err.value.status) == ("not_promotable", 409)
        message = err.value.message
        assert "ro_1" in message, "names the rollout"
        assert "success rate 0.62 is below 0.95" in message, "says why it was rolled back"
        assert "unhealthy" in message and '"force": true' in message, "says how to go on"
    else:
        require_promotable(IDLE, version, force=force)


@pytest.mark.parametrize("force", [False, True])
def test_a_fresh_candidate_is_promotable_with_or_without_force(force: bool) -> None:
    require_promotable(IDLE, _version(), force=force)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(
    ("status", "code"),
    [
        (PolicyStatus.PRODUCTION, "already_production"),
        (PolicyStatus.RETIRED, "not_promotable"),
        (PolicyStatus.ARCHIVED, "not_promotable"),
        (PolicyStatus.SHADOW, "not_promotable"),
        (PolicyStatus.CANARY, "not_promotable"),
    ],
)
def test_force_does_not_open_anything_else(status: PolicyStatus, code: str, force: bool) -> None:
    with pytest.raises(PolicyHubError) as err:
        require_promotable(IDLE, _version(status), force=force)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("busy", "code"),
    [
        ({"active_rollout_id": "ro_9"}, "rollout_active"),
        ({"active_experiment_id": "ex_9"}, "experiment_active"),
    ],
)
def test_force_does_not_pass_an_active_rollout_or_experiment(
    busy: dict[str, str], code: str
) -> None:
    with pytest.raises(PolicyHubError) as err:
        require_promotable(
            IDLE.model_copy(update=busy), _after(RolloutOutcome.INCONCLUSIVE), force=True
        )
    assert err.value.code == code


def test_a_rollback_recorded_before_the_reasons_were_kept_needs_force() -> None:
    legacy = _version(PolicyStatus.ROLLED_BACK)
    with pytest.raises(PolicyHubError) as err:
        require_promotable(IDLE, legacy)
    assert err.value.code == "not_promotable" and '"force": true' in err.value.message
    require_promotable(IDLE, legacy, force=True)


@pytest.mark.parametrize("earlier", [RolloutOutcome.INCONCLUSIVE, RolloutOutcome.UNHEALTHY])
def test_an_abort_never_clears_an_earlier_rollback(earlier: RolloutOutcome) -> None:
    """Forcing a rollout of an unhealthy version and aborting it must not make it clean."""
    rolled_back = _after(earlier)
    again = rolled_back.model_copy(update={"status": PolicyStatus.SHADOW})
    aborted = after_rollout_without_promotion(
        again, "ro_2", RolloutOutcome.ABORTED, "aborted: by mistake", T1
    )
    assert aborted.status is PolicyStatus.ROLLED_BACK
    assert aborted.last_rollout == rolled_back.last_rollout
    forced = earlier is RolloutOutcome.UNHEALTHY
    if forced:
        with pytest.raises(PolicyHubError):
            require_promotable(IDLE, aborted)
    require_promotable(IDLE, aborted, force=forced)


def test_an_abort_after_an_abort_records_the_latest() -> None:
    first = _after(RolloutOutcome.ABORTED)
    second = after_rollout_without_promotion(
        first.model_copy(update={"status": PolicyStatus.CANARY}),
        "ro_2",
        RolloutOutcome.ABORTED,
        "aborted: again",
        T1,
    )
    assert second.status is PolicyStatus.CANDIDATE
    assert second.last_rollout is not None and second.last_rollout.rollout_id == "ro_2"


def test_a_later_rollback_replaces_an_earlier_verdict() -> None:
    unhealthy = _after(RolloutOutcome.UNHEALTHY)
    inconclusive = after_rollout_without_promotion(
        unhealthy.model_copy(update={"status": PolicyStatus.CANARY}),
        "ro_2",
        RolloutOutcome.INCONCLUSIVE,
        "rolled back: inconclusive",
        T1,
    )
    assert inconclusive.last_rollout is not None
    assert inconclusive.last_rollout.promote_again is PromoteAgain.ALLOWED
    require_promotable(IDLE, inconclusive)


def test_the_record_round_trips_as_stored_and_refuses_a_contradiction() -> None:
    version = _after(RolloutOutcome.UNHEALTHY)
    text = version.model_dump_json()
    assert PolicyVersion.model_validate_json(text) == version
    shown = version.model_dump(mode="json")["last_rollout"]
    assert shown == {
        "rollout_id": "ro_1",
        "outcome": "unhealthy",
        "reason": WHY[RolloutOutcome.UNHEALTHY],
        "ended_at": "2026-11-01T13:00:00Z",
        "promote_again": "needs_force",
    }
    with pytest.raises(ValidationError):
        LastRollout.model_validate({**shown, "promote_again": "allowed"})
    older = _version().model_dump(mode="json")
    del older["last_rollout"]
    assert PolicyVersion.model_validate(older).last_rollout is None, "records stored before 099"

"""PipelineConfig rules, how a rollout starts and aborts, and its storage form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutState,
    RolloutStrategy,
    Stage,
)
from policyhub.domain.rollout_judge import apply, step
from policyhub.domain.state_changes import abort_rollout
from tests.unit.rollout.builders import (
    DEFAULTS,
    at,
    in_canary,
    in_shadow,
    in_watch,
    new_rollout,
    shadow_window,
    variant,
    window,
)


def test_defaults_are_the_api_contract() -> None:
    assert PipelineConfig().model_dump() == {
        "shadow_seconds": 3600, "shadow_min_decisions": 500,
        "canary_steps": (5, 10, 25, 50, 100), "step_seconds": 900,
        "min_samples_per_step": 200, "min_success_rate": 0.95, "max_latency_increase": 0.20,
        "max_step_seconds": 7200, "post_promotion_seconds": 3600}


def test_overrides_from_a_request_body_are_taken() -> None:
    config = PipelineConfig.model_validate({"shadow_seconds": 5, "step_seconds": 2,
                                            "canary_steps": [50, 100], "max_step_seconds": 30,
                                            "post_promotion_seconds": 3})
    assert config.canary_steps == (50, 100) and config.min_samples_per_step == 200


@pytest.mark.parametrize(("override", "field"), [
    ({"canary_steps": [5, 10, 10, 100]}, "canary_steps"),
    ({"canary_steps": [10, 5, 100]}, "canary_steps"),
    ({"canary_steps": [5, 50]}, "canary_steps"),
    ({"canary_steps": [0, 100]}, "canary_steps"),
    ({"canary_steps": [5, 101]}, "canary_steps"),
    ({"canary_steps": []}, "canary_steps"),
    ({"shadow_seconds": 0}, "shadow_seconds"),
    ({"step_seconds": -5}, "step_seconds"),
    ({"max_step_seconds": 0}, "max_step_seconds"),
    ({"post_promotion_seconds": 0}, "post_promotion_seconds"),
    ({"shadow_min_decisions": 0}, "shadow_min_decisions"),
    ({"min_samples_per_step": 0}, "min_samples_per_step"),
    ({"min_success_rate": 0.0}, "min_success_rate"),
    ({"min_success_rate": 1.0}, "min_success_rate"),
    ({"min_success_rate": float("nan")}, "min_success_rate"),
    ({"max_latency_increase": 0.0}, "max_latency_increase"),
    ({"max_latency_increase": float("inf")}, "max_latency_increase"),
    ({"step_seconds": 8000}, "max_step_seconds"),
    ({"shadow_seconds": 7201}, "max_step_seconds"),
    ({"step_seconds": True}, "step_seconds"),
])
def test_a_broken_rule_is_a_validation_error_naming_its_field(override: dict[str, Any],
                                                              field: str) -> None:
    # The constraints are the model's own, so the OpenAPI document states them (issue 14);
    # the API answers 422 naming body.pipeline.<field>.
    with pytest.raises(ValidationError) as caught:
        PipelineConfig.model_validate(override)
    assert [e["loc"][0] for e in caught.value.errors()] == [field]  # an item adds its index


def test_a_safe_rollout_starts_in_shadow_without_candidate_traffic() -> None:
    rollout = new_rollout(RolloutStrategy.SAFE)
    assert (rollout.state, rollout.traffic_percent, rollout.step_index, rollout.revision) == (
        RolloutState.SHADOW, 0, 0, 1)
    assert rollout.current_step.stage is Stage.SHADOW and rollout.ended_at is None


def test_a_canary_rollout_starts_at_the_first_canary_step() -> None:
    rollout = new_rollout(RolloutStrategy.CANARY)
    assert (rollout.state, rollout.traffic_percent) == (RolloutState.CANARY, 5)


def test_a_canary_rollout_needs_a_step_below_100() -> None:
    with pytest.raises(PolicyHubError) as caught:
        new_rollout(RolloutStrategy.CANARY, PipelineConfig(canary_steps=(100,)))
    assert caught.value.details[0].field == "pipeline.canary_steps"
    assert new_rollout(RolloutStrategy.SAFE, PipelineConfig(canary_steps=(100,)))


def test_a_rollout_survives_a_round_trip_through_plain_json() -> None:
    rollout = in_shadow()
    rollout = apply(rollout, step(rollout, shadow_window(3600), at(3600)), at(3600))
    rollout = apply(rollout, step(rollout, window(variant(9000), variant(120), 3700,
                                                  start=at(3600)), at(3700)), at(3700))
    stored = json.loads(json.dumps(rollout.to_dict(), allow_nan=False))
    assert Rollout.from_dict(stored) == rollout
    assert stored["started_at"] == "2026-11-01T12:00:00Z"
    assert stored["steps"][0]["verdict"] == "healthy" and stored["steps"][1]["verdict"] is None
    assert stored["config"] == json.loads(DEFAULTS.model_dump_json())


def test_aborting_stops_the_rollout() -> None:
    rollout = in_canary(25)
    aborted = abort_rollout(rollout, "operator asked", at(100))
    assert (aborted.state, aborted.traffic_percent, aborted.ended_at) == (
        RolloutState.ABORTED, 0, at(100))
    assert aborted.outcome_reason == "aborted: operator asked"
    assert aborted.current_step.ended_at == at(100)
    assert aborted.revision == rollout.revision + 1 and aborted.is_terminal


def test_aborting_during_the_watch_ends_the_watch_and_keeps_the_promotion() -> None:
    aborted = abort_rollout(in_watch(), "enough", at(100))
    assert (aborted.state, aborted.watching, aborted.traffic_percent) == (
        RolloutState.PROMOTED, False, 100)
    assert aborted.is_terminal


def test_an_ended_rollout_cannot_be_aborted_again() -> None:
    aborted = abort_rollout(in_canary(5), "stop", at(1))
    with pytest.raises(PolicyHubError) as caught:
        abort_rollout(aborted, "again", at(2))
    assert caught.value.code == "conflict"

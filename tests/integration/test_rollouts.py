"""The safe pipeline through the handlers on moto, with compressed time and the local runner."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infra.local.seed import seed_demo
from policyhub.adapters.workflows import LocalRolloutRunner
from policyhub.api import container
from policyhub.domain.errors import PolicyHubError
from tests.integration.test_serving import rank_body
from tests.support.api import Api, error_code
from tests.support.traffic import COMPRESSED_PIPELINE, balanced_users, drive_until, send

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("rollouts")]

FAST = COMPRESSED_PIPELINE


@pytest.fixture
def demo(embedded_aws: None, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0")
    monkeypatch.setenv("POLICYHUB_LOCAL_TICK_SECONDS", "0.2")
    container.reset()
    return Api(seed_demo(None).admin_key)


def _start_even_experiment(demo: Api, name: str, first: str, second: str) -> Any:
    """POST /v1/policies/experiments splitting traffic 50/50 between two versions."""
    return demo.post(
        "/policies/experiments",
        {
            "name": name,
            "variants": [
                {"version": first, "traffic_percent": 50},
                {"version": second, "traffic_percent": 50},
            ],
        },
    )


def test_a_good_candidate_goes_all_the_way_to_production(demo: Api) -> None:
    r = demo.post(
        "/policies/promote", {"version": "v1.2.5", "pipeline": FAST, "reason": "better offline"}
    )
    assert r.status == 202, r.body
    rollout = r.json()
    assert (rollout["state"], rollout["strategy"]) == ("shadow", "safe")
    assert demo.get("/policies/status").json()["rollout"]["rollout_id"] == rollout["rollout_id"]
    assert demo.get("/policies/v1.2.5").json()["status"] == "shadow"
    final = drive_until(
        demo,
        rollout["rollout_id"],
        {"promoted", "rolled_back", "aborted"},
        lambda users: send(demo, rank_body, users, 40),
    )
    assert final["state"] == "promoted", final["outcome_reason"]
    stages = [(s["stage"], s["traffic_percent"]) for s in final["steps"]]
    assert stages[:6] == [
        ("shadow", 0),
        ("canary", 5),
        ("canary", 10),
        ("canary", 25),
        ("canary", 50),
        ("canary", 100),
    ]
    for s in final["steps"][:6]:
        assert s["verdict"] == "healthy" and s["candidate"]["requests"] > 0 and s["reasons"]
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.5"
    assert demo.get("/policies/v1.2.4").json()["status"] == "retired"
    actions = [e["action"] for e in demo.get("/policies/audit", limit=20).json()["items"]]
    assert "promote" in actions and "rollout_start" in actions
    assert actions.count("rollout_step") >= 5


def test_a_candidate_users_dislike_is_rolled_back_at_its_first_canary_step(demo: Api) -> None:
    fast = {**FAST, "shadow_seconds": 1}
    rollout = demo.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": fast}
    ).json()

    def traffic(users: Any) -> None:
        send(demo, rank_body, users, 40, success=lambda d: d["variant"] != "canary")

    final = drive_until(
        demo, rollout["rollout_id"], {"promoted", "rolled_back", "aborted"}, traffic
    )
    assert final["state"] == "rolled_back"
    assert final["steps"][-1]["traffic_percent"] == 5
    assert final["steps"][-1]["verdict"] == "unhealthy"
    assert "success" in final["outcome_reason"]
    status = demo.get("/policies/status").json()
    assert status["production"]["version"] == "v1.2.4" and status["rollout"] is None
    assert demo.get("/policies/v1.2.5").json()["status"] == "rolled_back"
    top = demo.get("/policies/audit").json()["items"][0]
    assert (
        top["action"] == "auto_rollback" and top["details"]["rollout_id"] == rollout["rollout_id"]
    )


def test_no_traffic_never_advances_and_rolls_back_at_the_deadline(demo: Api) -> None:
    rollout = demo.post(
        "/policies/promote",
        {"version": "v1.2.5", "strategy": "canary", "pipeline": {**FAST, "max_step_seconds": 3}},
    ).json()
    final = drive_until(
        demo,
        rollout["rollout_id"],
        {"promoted", "rolled_back", "aborted"},
        lambda users: time.sleep(0.3),
        timeout=30,
    )
    assert final["state"] == "rolled_back" and len(final["steps"]) == 1
    assert final["steps"][0]["verdict"] == "inconclusive"
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.4"


def test_manual_rollback_during_a_rollout_aborts_it_first(demo: Api) -> None:
    rollout = demo.post(
        "/policies/promote",
        {
            "version": "v1.2.5",
            "strategy": "canary",
            "pipeline": {**FAST, "step_seconds": 600, "max_step_seconds": 1200},
        },
    ).json()
    r = demo.post(
        "/policies/rollback",
        {"version": "v1.2.2", "agent_type": "memory_manager", "reason": "incident"},
    )
    assert r.status == 200, r.body
    assert r.json()["aborted_rollout_id"] == rollout["rollout_id"]
    assert r.json()["version"] == "v1.2.2" and r.json()["previous_version"] == "v1.2.4"
    got = demo.get(f"/policies/rollouts/{rollout['rollout_id']}").json()
    assert got["state"] == "aborted"
    status = demo.get("/policies/status").json()
    assert status["production"]["version"] == "v1.2.2" and status["rollout"] is None
    candidate = demo.get("/policies/v1.2.5").json()
    assert candidate["status"] == "candidate", "never judged: a candidate again (decision 099)"
    assert candidate["last_rollout"]["rollout_id"] == rollout["rollout_id"]
    assert candidate["last_rollout"]["outcome"] == "aborted"
    actions = [e["action"] for e in demo.get("/policies/audit").json()["items"][:2]]
    assert sorted(actions) == ["abort", "rollback"]


def test_promote_and_abort_conflicts_are_409(demo: Api) -> None:
    rollout = demo.post(
        "/policies/promote",
        {
            "version": "v1.2.5",
            "strategy": "canary",
            "pipeline": {**FAST, "step_seconds": 600, "max_step_seconds": 1200},
        },
    ).json()
    r = demo.post("/policies/promote", {"version": "v1.2.6", "strategy": "immediate"})
    assert (r.status, error_code(r)) == (409, "rollout_active")
    r = demo.post("/policies/promote", {"version": "v1.2.6"})
    assert (r.status, error_code(r)) == (409, "rollout_active")
    aborted = demo.post(f"/policies/rollouts/{rollout['rollout_id']}/abort", {"reason": "no"})
    assert aborted.status == 200 and aborted.json()["state"] == "aborted"
    again = demo.post(f"/policies/rollouts/{rollout['rollout_id']}/abort", {})
    assert again.status == 409
    assert demo.get("/policies/rollouts/ro_missing").status == 404


@pytest.mark.parametrize(
    ("pipeline", "field"),
    [
        ({"canary_steps": [5, 3, 100]}, "pipeline.canary_steps"),
        ({"min_success_rate": 1.5}, "pipeline.min_success_rate"),
        ({"step_seconds": -1}, "pipeline.step_seconds"),
        ({"nonsense": 1}, None),
    ],
)
def test_bad_pipeline_overrides_are_422(
    demo: Api, pipeline: dict[str, Any], field: str | None
) -> None:
    r = demo.post("/policies/promote", {"version": "v1.2.5", "pipeline": pipeline})
    assert r.status == 422, r.body
    assert demo.get("/policies/status").json()["rollout"] is None


def test_each_rollout_has_alarms_and_an_alarm_event_rolls_it_back(demo: Api) -> None:
    from infra.local.events import LambdaContext
    from infra.local.functions import load_handler
    from policyhub.adapters import aws

    rollout = demo.post(
        "/policies/promote",
        {
            "version": "v1.2.5",
            "strategy": "canary",
            "pipeline": {**FAST, "step_seconds": 600, "max_step_seconds": 1200},
        },
    ).json()
    alarms = aws.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"policyhub-rollout-{rollout['rollout_id']}"
    )["MetricAlarms"]
    assert sorted(a["AlarmName"].rsplit("-", 1)[1] for a in alarms) == ["latency", "success"]
    success = next(a for a in alarms if a["AlarmName"].endswith("success"))
    assert success["Threshold"] == FAST["min_success_rate"]
    event = {
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": success["AlarmName"],
            "state": {"value": "ALARM"},
            "configuration": {"description": success["AlarmDescription"]},
        },
    }
    out = load_handler("rollout_alarm")(event, LambdaContext("rollout_alarm"))
    assert out["rolled_back"] is True
    got = demo.get(f"/policies/rollouts/{rollout['rollout_id']}").json()
    assert got["state"] == "rolled_back" and "CloudWatch alarm" in got["outcome_reason"]
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.4"
    assert demo.get("/policies/audit").json()["items"][0]["action"] == "auto_rollback"
    # A second delivery of the same event changes nothing; the alarms are gone.
    assert (
        load_handler("rollout_alarm")(event, LambdaContext("rollout_alarm"))["rolled_back"] is False
    )
    assert not aws.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=f"policyhub-rollout-{rollout['rollout_id']}"
    )["MetricAlarms"]


def test_an_ab_experiment_splits_traffic_and_names_a_significant_winner(demo: Api) -> None:
    r = _start_even_experiment(demo, "v1.2.5 vs production", "v1.2.4", "v1.2.5")
    assert r.status == 201, r.body
    exp = r.json()
    assert (
        demo.get("/policies/status").json()["experiment"]["experiment_id"] == exp["experiment_id"]
    )
    blocked = demo.post("/policies/promote", {"version": "v1.2.6"})
    assert (blocked.status, error_code(blocked)) == (409, "experiment_active")
    users = (f"user-{i}" for i in range(100_000))
    served = send(
        demo,
        rank_body,
        users,
        400,
        success=lambda d: d["policy_version"] == "v1.2.5" or int(d["decision_id"][:2], 16) % 4 == 0,
    )
    assert {d["variant"] for d in served} == {"experiment"}
    live = demo.get(f"/policies/experiments/{exp['experiment_id']}").json()
    arms = {v["version"]: v for v in live["variants"]}
    assert 150 < arms["v1.2.5"]["decisions"] < 250
    assert arms["v1.2.5"]["success_rate"] == 1.0 and arms["v1.2.4"]["success_rate"] < 0.5
    assert arms["v1.2.5"]["ci_low"] > arms["v1.2.4"]["ci_high"]
    assert live["winner"] == "v1.2.5" and live["p_value"] < 0.05
    assert live["srm_p_value"] > 0.001
    stopped = demo.post(
        f"/policies/experiments/{exp['experiment_id']}/stop", {"reason": "enough data"}
    ).json()
    assert stopped["state"] == "stopped" and stopped["winner"] == "v1.2.5"
    assert demo.get("/policies/status").json()["experiment"] is None
    assert demo.post("/rank", rank_body()).json()["variant"] == "production"
    actions = [e["action"] for e in demo.get("/policies/audit").json()["items"][:2]]
    assert actions == ["experiment_stop", "experiment_start"]


def test_experiment_requests_are_validated(demo: Api) -> None:
    bad = [
        {
            "name": "x",
            "variants": [
                {"version": "v1.2.4", "traffic_percent": 60},
                {"version": "v1.2.5", "traffic_percent": 60},
            ],
        },
        {"name": "x", "variants": [{"version": "v1.2.4", "traffic_percent": 100}]},
        {
            "name": "x",
            "variants": [
                {"version": "v1.2.4", "traffic_percent": 50},
                {"version": "v1.2.4", "traffic_percent": 50},
            ],
        },
    ]
    for body in bad:
        assert demo.post("/policies/experiments", body).status == 422
    r = _start_even_experiment(demo, "x", "v1.0.0", "v1.2.5")
    assert r.status == 422, r.body
    assert demo.get("/policies/experiments/ex_nope").status == 404


def test_an_abort_while_the_controller_is_mid_step_leaves_one_consistent_state(demo: Api) -> None:
    from policyhub.domain.rollout_judge import apply, step

    rollout = demo.post(
        "/policies/promote",
        {"version": "v1.2.5", "strategy": "canary", "pipeline": {**FAST, "max_step_seconds": 1200}},
    ).json()
    send(demo, rank_body, balanced_users(rollout["rollout_id"]), 60)
    service = container.rollouts()
    before = service.get("demo", "memory_manager", rollout["rollout_id"])
    now = before.started_at.__class__.now(before.started_at.tzinfo)
    health = container.health_reader().read(before, before.step_started_at, now)
    decision = step(before, health, now)  # the controller has judged …
    assert (
        demo.post(
            f"/policies/rollouts/{rollout['rollout_id']}/abort", {"reason": "incident"}
        ).status
        == 200
    )  # … and an admin aborts meanwhile
    with pytest.raises(PolicyHubError) as lost:
        service._commit_decision(before, apply(before, decision, now), decision)
    assert lost.value.code == "concurrent_change" and lost.value.status == 409
    got = demo.get(f"/policies/rollouts/{rollout['rollout_id']}").json()
    assert got["state"] == "aborted"
    status = demo.get("/policies/status").json()
    assert status["production"]["version"] == "v1.2.4" and status["rollout"] is None
    listed = demo.get("/policies", limit=100).json()["items"]
    assert [p["version"] for p in listed if p["status"] == "production"] == ["v1.2.4"]


def test_a_step_delivered_twice_is_applied_once(demo: Api) -> None:
    import threading

    rollout = demo.post(
        "/policies/promote",
        {"version": "v1.2.5", "strategy": "canary", "pipeline": {**FAST, "max_step_seconds": 1200}},
    ).json()
    rid = rollout["rollout_id"]
    runner = container.workflows()
    assert isinstance(runner, LocalRolloutRunner)
    runner.stop()  # drive the steps by hand, like duplicate deliveries would
    send(demo, rank_body, balanced_users(rid), 80)
    time.sleep(1.1)
    revision = demo.get(f"/policies/rollouts/{rid}").json()["revision"]
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            outcomes.append(
                container.rollouts().tick("demo", "memory_manager", rid).decision or "done"
            )
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = demo.get(f"/policies/rollouts/{rid}").json()
    applied = [o for o in outcomes if o in {"advance", "hold", "rollback"}]
    assert len(applied) >= 1, outcomes
    if "advance" in applied:
        assert applied.count("advance") == 1
        assert [s["traffic_percent"] for s in got["steps"]] == [5, 10]
    assert got["revision"] == revision + len([a for a in applied if a != "hold"])


def test_a_regression_after_promotion_rolls_back_to_the_previous_version(demo: Api) -> None:
    watch = {**FAST, "post_promotion_seconds": 600, "max_step_seconds": 1200}
    rollout = demo.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": watch}
    ).json()
    rid = rollout["rollout_id"]
    users = balanced_users(rid)
    deadline = time.monotonic() + 180
    while demo.get(f"/policies/rollouts/{rid}").json()["state"] != "promoted":
        assert time.monotonic() < deadline
        send(demo, rank_body, users, 40)
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.5"
    while True:  # the new production starts failing its users
        got = demo.get(f"/policies/rollouts/{rid}").json()
        if got["state"] == "rolled_back":
            break
        assert time.monotonic() < deadline + 120, got
        send(demo, rank_body, users, 40, success=lambda d: False)
    assert got["steps"][-1]["stage"] == "post_promotion"
    status = demo.get("/policies/status").json()
    assert status["production"]["version"] == "v1.2.4" and status["rollout"] is None
    assert demo.get("/policies/v1.2.5").json()["status"] == "rolled_back"
    assert demo.get("/policies/audit").json()["items"][0]["action"] == "auto_rollback"


def test_an_immediate_promote_waits_for_a_running_experiment(demo: Api) -> None:
    r = _start_even_experiment(demo, "ab", "v1.2.4", "v1.2.5")
    assert r.status == 201
    blocked = demo.post("/policies/promote", {"version": "v1.2.6", "strategy": "immediate"})
    assert (blocked.status, error_code(blocked)) == (409, "experiment_active")


# ---- promoting again after a rollout that did not promote (decision 099) -------------------

SLOW = {**FAST, "step_seconds": 600, "max_step_seconds": 1200}
"""A rollout that stays in its first canary step until something ends it."""


def _promote(demo: Api, version: str, **body: Any) -> Any:
    return demo.post("/policies/promote", {"version": version, **body})


def test_after_an_abort_the_same_version_is_promoted_again(demo: Api) -> None:
    first = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW).json()
    r = demo.post(f"/policies/rollouts/{first['rollout_id']}/abort", {"reason": "wrong build"})
    assert r.status == 200 and r.json()["state"] == "aborted"
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "candidate"
    assert v["last_rollout"] == {
        "rollout_id": first["rollout_id"],
        "outcome": "aborted",
        "reason": "aborted: wrong build",
        "ended_at": r.json()["ended_at"],
        "promote_again": "allowed",
    }
    listed = demo.get("/policies", status="candidate").json()["items"]
    assert "v1.2.5" in [p["version"] for p in listed]
    again = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW)
    assert again.status == 202, again.body
    assert again.json()["rollout_id"] != first["rollout_id"]
    assert demo.get("/policies/v1.2.5").json()["status"] == "canary"
    start = demo.get("/policies/audit").json()["items"][0]
    assert start["action"] == "rollout_start" and "force" not in start["details"]


def test_after_an_inconclusive_rollback_the_version_is_promoted_again_without_force(
    demo: Api,
) -> None:
    first = _promote(
        demo, "v1.2.5", strategy="canary", pipeline={**FAST, "max_step_seconds": 3}
    ).json()
    final = drive_until(
        demo,
        first["rollout_id"],
        {"promoted", "rolled_back", "aborted"},
        lambda users: time.sleep(0.3),
        timeout=30,
    )
    assert final["state"] == "rolled_back" and final["steps"][0]["verdict"] == "inconclusive"
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "rolled_back"
    last = v["last_rollout"]
    assert (last["rollout_id"], last["outcome"], last["promote_again"]) == (
        first["rollout_id"],
        "inconclusive",
        "allowed",
    )
    assert last["reason"] == final["outcome_reason"] and "max_step_seconds" in last["reason"]
    again = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW)
    assert again.status == 202, again.body


def test_after_an_unhealthy_rollback_promoting_again_needs_force(demo: Api) -> None:
    first = _promote(demo, "v1.2.5", strategy="canary", pipeline=FAST).json()

    def traffic(users: Any) -> None:
        send(demo, rank_body, users, 40, success=lambda d: d["variant"] != "canary")

    final = drive_until(demo, first["rollout_id"], {"promoted", "rolled_back", "aborted"}, traffic)
    assert final["state"] == "rolled_back" and final["steps"][-1]["verdict"] == "unhealthy"
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "rolled_back"
    assert (v["last_rollout"]["outcome"], v["last_rollout"]["promote_again"]) == (
        "unhealthy",
        "needs_force",
    )
    for strategy in ("safe", "canary", "immediate"):
        refused = _promote(demo, "v1.2.5", strategy=strategy)
        assert (refused.status, error_code(refused)) == (409, "not_promotable")
        message = refused.json()["error"]["message"]
        assert first["rollout_id"] in message, "names the rollout"
        assert final["outcome_reason"] in message, "says why it was rolled back"
        assert '"force": true' in message, "says how to try again"
    assert demo.get("/policies/v1.2.5").json()["status"] == "rolled_back"
    forced = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW, force=True)
    assert forced.status == 202, forced.body
    start = demo.get("/policies/audit").json()["items"][0]
    assert start["action"] == "rollout_start" and start["details"]["force"] is True
    assert start["details"]["rollout_id"] == forced.json()["rollout_id"]


def test_after_an_alarm_rollback_promoting_again_needs_force(demo: Api) -> None:
    from infra.local.events import LambdaContext
    from infra.local.functions import load_handler
    from policyhub.adapters import aws

    rollout = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW).json()
    success = next(
        a
        for a in aws.client("cloudwatch").describe_alarms(
            AlarmNamePrefix=f"policyhub-rollout-{rollout['rollout_id']}"
        )["MetricAlarms"]
        if a["AlarmName"].endswith("success")
    )
    alarm = success["AlarmName"]
    event = {
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": alarm,
            "state": {"value": "ALARM"},
            "configuration": {"description": success["AlarmDescription"]},
        },
    }
    assert load_handler("rollout_alarm")(event, LambdaContext("rollout_alarm"))["rolled_back"]
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "rolled_back"
    assert (v["last_rollout"]["outcome"], v["last_rollout"]["promote_again"]) == (
        "unhealthy",
        "needs_force",
    )
    assert alarm in v["last_rollout"]["reason"]
    refused = _promote(demo, "v1.2.5", strategy="immediate")
    assert (refused.status, error_code(refused)) == (409, "not_promotable")
    assert rollout["rollout_id"] in refused.json()["error"]["message"]
    done = _promote(demo, "v1.2.5", strategy="immediate", force=True, reason="alarm was noise")
    assert done.status == 200, done.body
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.5"
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "production" and v["last_rollout"] is None
    promote = demo.get("/policies/audit").json()["items"][0]
    assert promote["action"] == "promote" and promote["details"]["force"] is True


@pytest.mark.parametrize("force", ["yes", 1, None])
def test_force_must_be_a_boolean(demo: Api, force: Any) -> None:
    r = _promote(demo, "v1.2.5", strategy="immediate", force=force)
    assert r.status == 422, r.body
    assert demo.get("/policies/v1.2.5").json()["status"] == "candidate"


def test_a_promote_whose_workflow_cannot_start_leaves_nothing_active_and_can_be_retried(
    demo: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions refuses StartExecution (here: the state machine does not exist): the
    client gets a 503, and the rollout it would have left behind, with nothing driving it, is
    ended, so the retried promote starts instead of answering 409 rollout_active."""
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:policyhub-missing"
    monkeypatch.setenv("POLICYHUB_ROLLOUT_STATE_MACHINE", missing)
    container.reset()
    r = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW)
    assert (r.status, error_code(r)) == (503, "service_unavailable"), r.body
    assert "retry" in r.json()["error"]["message"]
    status = demo.get("/policies/status").json()
    assert status["rollout"] is None and status["production"]["version"] == "v1.2.4"
    v = demo.get("/policies/v1.2.5").json()
    assert v["status"] == "candidate" and v["last_rollout"]["outcome"] == "aborted"
    assert "workflow could not be started" in v["last_rollout"]["reason"]
    cancelled = demo.get("/policies/rollouts/" + v["last_rollout"]["rollout_id"]).json()
    assert cancelled["state"] == "aborted" and cancelled["traffic_percent"] == 0
    audit = demo.get("/policies/audit", limit=2).json()["items"]
    assert [e["action"] for e in audit] == ["abort", "rollout_start"]
    assert audit[0]["actor"] == "system" and audit[1]["actor"] != "system"

    monkeypatch.delenv("POLICYHUB_ROLLOUT_STATE_MACHINE")
    container.reset()
    again = _promote(demo, "v1.2.5", strategy="canary", pipeline=SLOW)
    assert again.status == 202, again.body
    assert demo.get("/policies/status").json()["rollout"]["rollout_id"] == (
        again.json()["rollout_id"]
    )

"""Serving and the safe pipeline over HTTP against the local stack, with compressed time.

Each test works on its own agent, so the shared stack's `memory_manager` history (which the
product-page examples rely on) is left alone.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from policyhub.domain.routing import bucket
from policyhub.ml.onnx_models import random_mlp_policy, repeated_layer_policy
from tests.e2e.conftest import LocalStack, logged_records

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
CTX, ITEM = 8, 8
D = CTX + ITEM + 1
FAST = {
    "shadow_seconds": 1,
    "shadow_min_decisions": 30,
    "canary_steps": [5, 10, 25, 50, 100],
    "step_seconds": 1,
    "min_samples_per_step": 30,
    "max_step_seconds": 120,
    "post_promotion_seconds": 1,
    "min_success_rate": 0.6,
    # The local stack shares 2 cores with the test run, so its latency tail is wide; the
    # latency rule itself is exercised by the slow-candidate test with the default limit.
    "max_latency_increase": 9.0,
}


class Agent:
    def __init__(self, stack: LocalStack, name: str) -> None:
        self.stack, self.name = stack, name
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {stack.admin_key}"

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.http.request(
            method,
            f"{self.stack.base}{path}",
            json=body,
            timeout=30,
            params={"agent_type": self.name, **params},
        )
        assert r.status_code < 500, r.text
        return r

    def register(self, artifact: bytes) -> str:
        r = self.call(
            "POST",
            "/policies",
            {
                "agent_type": self.name,
                "artifact_base64": base64.b64encode(artifact).decode(),
                "feature_schema": {"context_dim": CTX, "item_dim": ITEM},
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["version"])

    def promote(self, version: str, **extra: Any) -> Any:
        return self.call(
            "POST", "/policies/promote", {"version": version, "agent_type": self.name, **extra}
        )

    def rank(self, user: str, n: int = 10) -> dict[str, Any]:
        body = {
            "agent_type": self.name,
            "routing_key": user,
            "context": {"features": [0.1 * i for i in range(CTX)]},
            "candidates": [
                {
                    "id": f"d{i}",
                    "retrieval_score": 1 - i / 20,
                    "features": [(i + j) % 3 / 3 for j in range(ITEM)],
                }
                for i in range(n)
            ],
        }
        r = self.http.post(f"{self.stack.base}/rank", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def feedback(self, decision: dict[str, Any], success: bool) -> None:
        r = self.http.post(
            f"{self.stack.base}/feedback",
            timeout=30,
            json={"decision_id": decision["decision_id"], "success": success},
        )
        assert r.status_code == 202, r.text

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        return self.call("GET", f"/policies/rollouts/{rollout_id}").json()  # type: ignore[no-any-return]


def users(rollout_id: str) -> Iterator[str]:
    canary = (f"u{i}" for i in itertools.count() if bucket(f"u{i}", rollout_id) < 500)
    rest = (f"u{i}" for i in itertools.count() if bucket(f"u{i}", rollout_id) >= 5000)
    for pair in zip(canary, rest, strict=False):
        yield from pair


def drive(
    agent: Agent,
    rollout_id: str,
    success: Callable[[dict[str, Any]], bool],
    timeout: float = 150,
    batch: int = 40,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    who = users(rollout_id)
    while time.monotonic() < deadline:
        r = agent.rollout(rollout_id)
        if r["state"] in {"rolled_back", "aborted"} or (
            r["state"] == "promoted" and not r["watching"]
        ):
            return r
        for user in itertools.islice(who, batch):
            d = agent.rank(user)
            agent.feedback(d, success(d))
    raise AssertionError(f"rollout did not end: {agent.rollout(rollout_id)}")


@pytest.fixture
def agent(local_stack: LocalStack, request: pytest.FixtureRequest) -> Agent:
    a = Agent(local_stack, f"e2e_{request.node.name[5:40].lower()}")
    base = a.register(random_mlp_policy(D, 16, seed=1))
    assert a.promote(base, strategy="immediate").status_code == 200
    return a


def test_rank_and_feedback_land_in_s3_joined_by_decision(agent: Agent) -> None:
    d = agent.rank("someone")
    agent.feedback(d, True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        records = logged_records(agent.stack, agent.name)
        kinds = {(r["type"], r["decision_id"]) for r in records}
        if {("decision", d["decision_id"]), ("feedback", d["decision_id"])} <= kinds:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("decision and feedback did not both reach the logs in 10 s")
    decision = next(r for r in records if r["type"] == "decision")
    assert decision["ranking"] == [i["id"] for i in d["ranking"]]


def test_a_rollback_reaches_rank_within_the_pointer_ttl(agent: Agent) -> None:
    v2 = agent.register(random_mlp_policy(D, 16, seed=2))
    assert agent.promote(v2, strategy="immediate").status_code == 200
    time.sleep(2.1)
    assert agent.rank("x")["policy_version"] == v2
    r = agent.call("POST", "/policies/rollback", {"version": "v1.0.0", "agent_type": agent.name})
    assert r.status_code == 200, r.text
    rolled_back_at = time.monotonic()
    while agent.rank("x")["policy_version"] != "v1.0.0":
        assert time.monotonic() - rolled_back_at < 2.5, "rollback not visible within the TTL"
        time.sleep(0.1)


def test_a_good_candidate_reaches_production_and_users_keep_their_variant(agent: Agent) -> None:
    cand = agent.register(random_mlp_policy(D, 16, seed=3))
    r = agent.promote(cand, pipeline=FAST)
    assert r.status_code == 202, r.text
    rollout_id = r.json()["rollout_id"]
    sticky = next(u for u in (f"s{i}" for i in itertools.count()) if bucket(u, rollout_id) < 500)
    served: dict[int, list[str]] = {}  # the sticky user's variant at each look, by step
    deadline = time.monotonic() + 240
    who = users(rollout_id)
    while time.monotonic() < deadline:
        ro = agent.rollout(rollout_id)
        if ro["state"] == "promoted":
            break
        assert ro["state"] in {"shadow", "canary"}, ro["outcome_reason"]
        if ro["state"] == "canary":
            served.setdefault(ro["traffic_percent"], []).append(agent.rank(sticky)["variant"])
        for user in itertools.islice(who, 40):
            agent.feedback(agent.rank(user), True)
    final = agent.rollout(rollout_id)
    assert final["state"] == "promoted", final["outcome_reason"]
    assert [s["traffic_percent"] for s in final["steps"][:6]] == [0, 5, 10, 25, 50, 100]
    assert {5, 10, 25, 50} <= set(served), served
    # A new step reaches rank within the pointer TTL, so just after the shadow step the user may
    # still get production; from its first canary answer on it stays canary at every step.
    answers = [v for p in sorted(served) if p < 100 for v in served[p]]
    assert "canary" in served[5] + served[10], served
    first = answers.index("canary")
    assert all(v == "canary" for v in answers[first:]), served
    status = agent.call("GET", "/policies/status").json()
    assert status["production"]["version"] == cand


def test_a_candidate_users_dislike_is_rolled_back_at_the_first_canary_step(agent: Agent) -> None:
    cand = agent.register(random_mlp_policy(D, 16, seed=4))
    rollout_id = agent.promote(
        cand, strategy="canary", pipeline={**FAST, "min_success_rate": 0.95}
    ).json()["rollout_id"]
    final = drive(agent, rollout_id, lambda d: d["variant"] != "canary")
    assert final["state"] == "rolled_back"
    assert final["steps"][-1]["traffic_percent"] == 5 and "success" in final["outcome_reason"]
    assert agent.call("GET", "/policies/status").json()["production"]["version"] == "v1.0.0"


def test_a_candidate_many_times_as_slow_is_rolled_back_on_latency(agent: Agent) -> None:
    # ~75 ms more scoring per request of 10 candidates (1,024 layers of 512x512) against a
    # production rank of ~1.5 ms. On a quiet machine the latency check concludes within a
    # hundred requests; on a busy CI runner production's own p95 reaches tens of milliseconds
    # and the check needs a few hundred, hence the longer step deadline here.
    cand = agent.register(repeated_layer_policy(D, 512, 1024, seed=5))
    rollout_id = agent.promote(
        cand,
        strategy="canary",
        pipeline={
            **FAST,
            "max_latency_increase": 0.2,
            "min_success_rate": 0.5,
            "max_step_seconds": 300,
        },
    ).json()["rollout_id"]
    final = drive(agent, rollout_id, lambda d: True, timeout=330)
    assert final["state"] == "rolled_back", final
    step = final["steps"][-1]
    assert step["traffic_percent"] == 5 and step["verdict"] == "unhealthy", step
    reason = final["outcome_reason"]
    assert "confidently above the limit" in reason and "max_step_seconds" not in reason
    assert agent.call("GET", "/policies/status").json()["production"]["version"] == "v1.0.0"


def test_a_corrupt_candidate_artifact_never_serves(agent: Agent) -> None:
    cand = agent.register(random_mlp_policy(D, 16, seed=6))
    sha = agent.call("GET", f"/policies/{cand}").json()["artifact"]["sha256"]
    s3, resources = agent.stack.s3()
    s3.put_object(
        Bucket=resources["POLICYHUB_ARTIFACT_BUCKET"],
        Key=f"tenants/demo/agents/{agent.name}/artifacts/{sha}.onnx",
        Body=b"evil",
    )
    rollout_id = agent.promote(cand, strategy="canary", pipeline=FAST).json()["rollout_id"]
    served = [
        agent.rank(u)
        for u in itertools.islice((u for u in users(rollout_id) if bucket(u, rollout_id) < 500), 20)
    ]
    assert all(d["policy_version"] == "v1.0.0" and d["variant"] == "production" for d in served)
    final = drive(agent, rollout_id, lambda d: True)
    assert final["state"] == "rolled_back", final


def test_with_no_traffic_a_rollout_never_advances_and_rolls_back_at_its_deadline(
    agent: Agent,
) -> None:
    cand = agent.register(random_mlp_policy(D, 16, seed=7))
    r = agent.promote(cand, strategy="canary", pipeline={**FAST, "max_step_seconds": 3})
    rollout_id = r.json()["rollout_id"]
    deadline = time.monotonic() + 30
    while (ro := agent.rollout(rollout_id))["state"] == "canary":
        assert ro["traffic_percent"] == 5 and time.monotonic() < deadline
        time.sleep(0.3)
    assert ro["state"] == "rolled_back" and len(ro["steps"]) == 1
    assert ro["steps"][0]["verdict"] == "inconclusive"
    assert "max_step_seconds" in ro["outcome_reason"]
    assert agent.call("GET", "/policies/status").json()["production"]["version"] == "v1.0.0"

"""The local stack reads rollout health from its embedded CloudWatch, as AWS does (decision
121): the rank path's health metrics reach moto, and the controller takes a good candidate to
production and rolls a disliked one back on them."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from policyhub.ml.onnx_models import random_mlp_policy
from tests.e2e.conftest import LocalStack
from tests.e2e.test_pipeline import FAST, Agent, D, drive

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _agent(stack: LocalStack, name: str) -> Agent:
    a = Agent(stack, name)
    base = a.register(random_mlp_policy(D, 16, seed=1))
    assert a.promote(base, strategy="immediate").status_code == 200
    return a


def _metric_names(local_dir: Path, rollout_id: str) -> set[str]:
    info = json.loads((local_dir / "stack.json").read_text())
    cloudwatch = boto3.client(
        "cloudwatch", endpoint_url=info["aws_endpoint"], region_name=info["region"],
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace="PolicyHub", Dimensions=[{"Name": "rollout_id", "Value": rollout_id}]
    )
    return {m["MetricName"] for page in pages for m in page["Metrics"]}


def test_a_good_candidate_reaches_production_on_cloudwatch_health(
    local_stack: LocalStack,
) -> None:
    agent = _agent(local_stack, "e2e_cloudwatch_good")
    cand = agent.register(random_mlp_policy(D, 16, seed=3))
    r = agent.promote(cand, pipeline=FAST)
    assert r.status_code == 202, r.text
    final = drive(agent, r.json()["rollout_id"], lambda d: True)
    assert final["state"] == "promoted", final["outcome_reason"]
    assert [s["traffic_percent"] for s in final["steps"][:6]] == [0, 5, 10, 25, 50, 100]
    names = _metric_names(local_stack.local_dir, final["rollout_id"])
    assert {"Requests", "Successes", "ShadowDecisions"} <= names
    assert any(n.startswith("LatencyBucket") for n in names)


def test_a_candidate_users_dislike_is_rolled_back_on_cloudwatch_health(
    local_stack: LocalStack,
) -> None:
    agent = _agent(local_stack, "e2e_cloudwatch_disliked")
    cand = agent.register(random_mlp_policy(D, 16, seed=4))
    r = agent.promote(cand, strategy="canary", pipeline=FAST)
    assert r.status_code == 202, r.text
    final = drive(agent, r.json()["rollout_id"], lambda d: d["variant"] != "canary")
    assert final["state"] == "rolled_back", final
    assert final["steps"][-1]["traffic_percent"] == 5
    assert "success" in final["outcome_reason"]

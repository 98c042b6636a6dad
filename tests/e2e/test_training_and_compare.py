"""Over HTTP against `make up`'s stack: compare the demo's versions, train a new one.

This file sorts after test_local_stack.py on purpose: the training here adds a version, and
that file counts the seeded ones.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.conftest import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

COMPARE_FIELDS = {
    "agent_type", "baseline_version", "candidate_version", "is_improvement", "recommendation",
    "method", "n_samples", "effective_sample_size", "baseline", "candidate", "lift", "shadow",
    "reasons",
}  # fmt: skip


def test_the_demo_versions_are_trained_with_lineage(local_stack: LocalStack) -> None:
    r = requests.get(
        f"{local_stack.base}/policies/v1.2.5", headers=local_stack.headers(), timeout=10
    )
    version = r.json()
    assert r.status_code == 200 and version["parent_version"] == "v1.2.4"
    assert version["training_job_id"].startswith("tj-")
    assert version["trained_on"]["interactions"] >= 1000


def test_compare_v1_2_4_with_v1_2_5_returns_every_field_and_a_verdict(
    local_stack: LocalStack,
) -> None:
    r = requests.post(
        f"{local_stack.base}/policies/compare",
        headers=local_stack.headers(),
        timeout=60,
        json={
            "baseline_version": "v1.2.4",
            "candidate_version": "v1.2.5",
            "agent_type": "memory_manager",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= COMPARE_FIELDS
    assert body["recommendation"] in {"promote", "keep_current"}
    assert body["n_samples"] >= 500 and body["effective_sample_size"] >= 100
    for side in ("baseline", "candidate"):
        est = body[side]
        assert est["ci_low"] <= est["estimated_reward"] <= est["ci_high"]
    assert set(body["lift"]) >= {"absolute", "relative", "ci_low", "ci_high"}
    assert body["is_improvement"] == (body["lift"]["ci_low"] > 0)
    assert body["reasons"] and body["method"] == "doubly_robust"


def test_train_over_http_runs_a_job_to_success(local_stack: LocalStack) -> None:
    h = local_stack.headers()
    # Forced: whether enough new traffic arrived since the seed's last training depends on
    # which other e2e tests ran before this one.
    r = requests.post(
        f"{local_stack.base}/policies/train", headers=h, timeout=30, json={"force": True}
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["status"], job["trigger"]) == ("queued", "api")
    deadline = time.monotonic() + 90
    while True:
        got = requests.get(
            f"{local_stack.base}/policies/training-jobs/{job['job_id']}", headers=h, timeout=10
        ).json()
        if got["status"] in {"succeeded", "failed"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got["status"] == "succeeded", got
    assert got["candidate_version"] and got["interactions_used"] >= 1000
    listed = requests.get(f"{local_stack.base}/policies/training-jobs", headers=h, timeout=10)
    assert listed.json()["items"][0]["job_id"] == job["job_id"]

"""Simulated users of the retrieval product: rank, then feedback on what they saw."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from policyhub.domain.routing import bucket
from tests.support.api import Api

Outcome = Callable[[dict[str, Any]], bool]

COMPRESSED_PIPELINE: dict[str, Any] = {
    "shadow_seconds": 1,
    "shadow_min_decisions": 20,
    "canary_steps": [5, 10, 25, 50, 100],
    "step_seconds": 1,
    "min_samples_per_step": 20,
    "max_step_seconds": 60,
    "post_promotion_seconds": 1,
    "min_success_rate": 0.8,
    "max_latency_increase": 10.0,
}
"""Compressed time, and thresholds a 100 %-successful candidate of equal latency clears with
tens of samples (the statistics themselves are tested in tests/unit/rollout). The latency limit
is the widest allowed: these tests are about the workflow, and on a loaded 2-core CI machine
the in-process rank latency's tail (p95 over 100 ms beside a 2 ms median) left an equal
candidate inconclusive at a x3 limit within a 60 s step."""


def always(_: dict[str, Any]) -> bool:
    return True


def balanced_users(rollout_id: str) -> Iterator[str]:
    """Users alternating between the first canary bucket (< 5 %) and the production side
    (>= 50 %), so compressed-time tests see both variants in every canary step."""
    canary = (f"u{i}" for i in itertools.count() if bucket(f"u{i}", rollout_id) < 500)
    rest = (f"u{i}" for i in itertools.count() if bucket(f"u{i}", rollout_id) >= 5000)
    for pair in zip(canary, rest, strict=False):
        yield from pair


def send(
    api: Api,
    body: Callable[[], dict[str, Any]],
    users: Iterator[str],
    n: int,
    success: Outcome = always,
) -> list[dict[str, Any]]:
    """`n` rank calls from the next users, each followed by feedback."""
    served = []
    for user in itertools.islice(users, n):
        request = body()
        request["routing_key"] = user
        r = api.post("/rank", request)
        assert r.status == 200, r.body
        decision = r.json()
        ok = api.post(
            "/feedback", {"decision_id": decision["decision_id"], "success": success(decision)}
        )
        assert ok.status == 202, ok.body
        served.append(decision)
    return served


def drive_until(
    api: Api,
    rollout_id: str,
    states: set[str],
    traffic: Callable[[Iterator[str]], object],
    timeout: float = 240,
) -> dict[str, Any]:
    """Send `traffic` from balanced users until the rollout is in one of `states`."""
    deadline = time.monotonic() + timeout
    users = balanced_users(rollout_id)
    while time.monotonic() < deadline:
        r = api.get(f"/policies/rollouts/{rollout_id}").json()
        if r["state"] in states:
            return r  # type: ignore[no-any-return]
        traffic(users)
    raise AssertionError(f"rollout stuck: {api.get(f'/policies/rollouts/{rollout_id}').body!r}")

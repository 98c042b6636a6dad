"""Invariant 1 under concurrency: admins racing promote and rollback through the handlers."""

from __future__ import annotations

import itertools
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from tests.integration.test_policy_endpoints import _register
from tests.support.api import Api, error_code, new_key

pytestmark = pytest.mark.integration
THREADS = 20


def test_twenty_racing_promotes_and_rollbacks_leave_one_production(admin: Api) -> None:
    versions = [_register(admin, i) for i in range(8)]
    for v in versions[:3]:
        assert (
            admin.post("/policies/promote", {"version": v, "strategy": "immediate"}).status == 200
        )
    # v1.0.0 and v1.0.1 are retired, v1.0.2 serves, v1.0.3..v1.0.7 are candidates.
    admins = [Api(new_key("acme")) for _ in range(4)]
    barrier = threading.Barrier(THREADS)
    results: list[tuple[str, str, int, str | None]] = []
    lock = threading.Lock()

    def fire(i: int) -> None:
        api = admins[i % len(admins)]
        if i % 2:
            op, body = "promote", {"version": versions[3 + i % 5], "strategy": "immediate"}
        else:
            op, body = (
                "rollback",
                {
                    "version": versions[i % 4 // 2],
                    "agent_type": "memory_manager",
                    "reason": f"t{i}",
                },
            )
        barrier.wait()
        r = api.post(f"/policies/{op}", body)
        with lock:
            results.append(
                (op, body["version"], r.status, error_code(r) if r.status >= 400 else None)
            )

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = Counter(status for _, _, status, _ in results)
    assert set(statuses) <= {200, 409}, results
    assert statuses[200] >= 1
    assert {code for *_, code in results if code} <= {
        "concurrent_change",
        "already_production",
        "not_promotable",
        "not_rollbackable",
    }

    listed = admin.get("/policies", limit=100).json()["items"]
    production = [p["version"] for p in listed if p["status"] == "production"]
    pointer = admin.get("/policies/status").json()["production"]["version"]
    assert production == [pointer]

    events = admin.get("/policies/audit", limit=100).json()["items"]
    moves = [e for e in events if e["action"] in {"promote", "rollback"}]
    assert len(moves) == 3 + statuses[200], "every success, and only successes, is audited"
    revisions = [e["details"]["revision"] for e in reversed(moves)]
    assert revisions == sorted(set(revisions)), "revisions strictly increase"
    # The chain of moves is consistent: each starts from where the previous one ended.
    chain = list(reversed(moves))
    for before, after in itertools.pairwise(chain):
        assert after["from_version"] == before["to_version"]
    assert chain[-1]["to_version"] == pointer


def test_different_functions_resolving_at_once_each_answer_their_own_request(admin: Api) -> None:
    """The local stack runs concurrent invocations as threads of one process; each function
    must still route and validate only its own event (decision 097)."""
    reads: list[tuple[str, dict[str, Any], str]] = [
        ("/policies/status", {"agent_type": "memory_manager"}, "production"),
        ("/policies/constraints", {"agent_type": "memory_manager"}, "max_items_per_source"),
        ("/policies/audit", {"limit": 5}, "items"),
        ("/health", {}, "status"),
    ]
    wrong: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def call(i: int, barrier: threading.Barrier) -> None:
        path, query, key = reads[i % len(reads)]
        barrier.wait()
        r = admin.get(path, **query)
        if r.status != 200 or key not in r.json():
            with lock:
                wrong.append((path, r.status, r.body.decode()[:200]))

    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch far more often, so bad interleavings show up
    try:
        for _ in range(15):
            barrier = threading.Barrier(12)
            threads = [threading.Thread(target=call, args=(i, barrier)) for i in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(saved)
    assert wrong == []

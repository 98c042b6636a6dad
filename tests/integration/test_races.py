"""Invariant 1 under concurrency: admins racing promote and rollback through the handlers."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

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

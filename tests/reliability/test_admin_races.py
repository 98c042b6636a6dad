"""Invariant 1 and 8 under concurrency: several admins racing promote, rollback and constraint
updates through the gateway and the handlers on the embedded AWS."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import pytest

from tests.reliability import tally
from tests.reliability.support import AGENT, ProbeApi, promote, register
from tests.support.api import new_key

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability-races")]
THREADS = tally.sized(18, 48)
ROUNDS = tally.sized(2, 6)


def _fire(admins: list[ProbeApi], versions: list[str]) -> list[tuple[str, Any, int, str | None]]:
    barrier = threading.Barrier(THREADS)
    results: list[tuple[str, Any, int, str | None]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        api = admins[i % len(admins)]
        kind = i % 3
        barrier.wait()
        if kind == 0:
            body: Any = {"version": versions[3 + i % 4], "strategy": "immediate"}
            r = api.post("/policies/promote", body)
            op = "promote"
        elif kind == 1:
            body = {"version": versions[i % 3], "agent_type": AGENT, "reason": f"race {i}"}
            r = api.post("/policies/rollback", body)
            op = "rollback"
        else:
            body = {"max_items_per_source": 1 + i, "min_retrieval_score": i / 100}
            r = api.post_json("PUT", "/policies/constraints", body)
            op = "constraints"
        with lock:
            code = r.json()["error"]["code"] if r.status >= 400 else None
            results.append((op, body, r.status, code))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.count("races")
    return results


def test_admins_racing_moves_and_constraints_keep_one_production_and_a_whole_audit(
    embedded_aws: None,
) -> None:
    owner = ProbeApi(new_key("acme"))
    versions = [register(owner, seed) for seed in range(3 + 4 * ROUNDS)]
    for v in versions[:3]:
        assert promote(owner, v).status == 200
    admins = [ProbeApi(new_key("acme")) for _ in range(4)]
    results: list[tuple[str, Any, int, str | None]] = []
    for round_ in range(ROUNDS):
        results += _fire(admins, versions[: 3] + versions[3 + 4 * round_ : 7 + 4 * round_])

    statuses = Counter((op, status) for op, _, status, _ in results)
    assert {s for _, s in statuses} <= {200, 409}, statuses
    assert {code for *_, code in results if code} <= {
        "concurrent_change",
        "already_production",
        "not_promotable",
        "not_rollbackable",
    }
    moved = statuses[("promote", 200)] + statuses[("rollback", 200)]
    assert moved >= ROUNDS, "every round moves production at least once"

    listed = owner.get("/policies", limit=100).json()["items"]
    production = [p["version"] for p in listed if p["status"] == "production"]
    pointer = owner.get("/policies/status").json()["production"]["version"]
    assert production == [pointer], "exactly one production version, the pointer's"

    events = owner.get("/policies/audit", limit=100).json()["items"]
    moves = list(reversed([e for e in events if e["action"] in {"promote", "rollback"}]))
    assert len(moves) == 3 + moved, "every successful move audited once, no loser audited"
    revisions = [e["details"]["revision"] for e in moves]
    assert revisions == sorted(set(revisions)), "revisions strictly increase"
    for before, after in itertools.pairwise(moves):
        assert after["from_version"] == before["to_version"], "no move was lost"
    assert moves[-1]["to_version"] == pointer

    updates = [e for e in events if e["action"] == "constraints_update"]
    assert len(updates) == statuses[("constraints", 200)], "every accepted update audited"
    final = owner.get("/policies/constraints").json()
    chain = list(reversed(updates))
    for prev, nxt in itertools.pairwise(chain):
        assert nxt["details"]["before"] == prev["details"]["after"], "no update lost or stale"
    if chain:
        assert chain[-1]["details"]["after"]["max_items_per_source"] == final[
            "max_items_per_source"]
    submitted = [b for op, b, s, _ in results if op == "constraints" and s == 200]
    assert any(
        final["max_items_per_source"] == b["max_items_per_source"] for b in submitted
    ), "the stored constraints are one admin's whole update, never a mix"
    tally.count("data_lost", 3 + moved - len(moves) + statuses[("constraints", 200)] - len(updates))

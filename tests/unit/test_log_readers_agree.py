"""The SQL readers give the numbers the record-by-record readers they replaced gave.

Health and experiment statistics were loops over record dicts; they are DuckDB aggregations
now (decision 113). The old loops stay here, verbatim in what they count, as the oracle: both
run on the same varied records (every side, fallback, violation, shadow and outcome case).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from policyhub.adapters.log_table import LogTable
from policyhub.domain.experiment import ArmSpec
from policyhub.domain.health import HealthWindow, VariantHealth
from policyhub.domain.holdout import in_holdout
from policyhub.domain.interaction_records import (
    decision_record,
    feedback_record,
    outcome_of,
)
from policyhub.domain.rollout import Rollout
from policyhub.ml.dataset import holdout_sql
from policyhub.services import experiment_stats
from policyhub.services.health_reader import LogHealthReader
from tests.unit.rollout.builders import T0, at, in_canary, in_shadow, in_watch

Record = dict[str, Any]


@dataclass
class _OldTally:
    requests: int = 0
    errors: int = 0
    successes: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    violating: int = 0
    shadow: int = 0
    shadow_errors: int = 0


def _old_health(rollout: Rollout, records: list[Record]) -> tuple[_OldTally, _OldTally]:
    """LogHealthReader.summarise as it was before SQL (commit 6fb269a)."""
    base, cand = _OldTally(), _OldTally()
    for r in records:
        if r.get("rollout_id") != rollout.rollout_id:
            continue
        if r["type"] == "decision":
            assigned = (r.get("assigned") or {}).get("variant")
            mine = cand if assigned == "canary" or rollout.watching else base
            mine.requests += 1
            mine.latencies.append(float(r["latency_ms"]))
            if r.get("failed_version") == (
                rollout.candidate_version if mine is cand else rollout.baseline_version
            ):
                mine.errors += 1
            if r.get("violations"):
                mine.violating += 1
            shadow = r.get("shadow")
            if shadow is not None:
                cand.shadow += 1
                if shadow.get("error"):
                    cand.shadow_errors += 1
        elif r["type"] == "feedback":
            served_candidate = r.get("policy_version") == rollout.candidate_version and (
                r.get("variant") == "canary" or rollout.watching
            )
            served_base = r.get("variant") == "production" and not rollout.watching
            tally = cand if served_candidate else base if served_base else None
            outcome = outcome_of(r)
            if tally is None or outcome is None:
                continue
            if outcome.success:
                tally.successes += 1
            else:
                tally.failures += 1
    return base, cand


def _records(rollout: Rollout, n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    versions = [rollout.candidate_version, rollout.baseline_version, "v0.0.9", None]
    for i in range(n):
        side = rng.choice(["canary", "production", "retrieval"])
        version = rng.choice(versions)
        rollout_id = rng.choice([rollout.rollout_id] * 4 + ["r-other", None])
        tags: dict[str, Any] = {"variant": side, "policy_version": version,
                                "rollout_id": rollout_id}
        did = f"d{i}"
        shadow = rng.choice([
            None, None,
            {"policy_version": rollout.candidate_version, "ranking": ["a", "b"], "error": None},
            {"policy_version": rollout.candidate_version, "ranking": [], "error": "timeout"},
        ])  # fmt: skip
        out.append(dict(decision_record(
            tenant_id="acme", agent_type="memory_manager", decision_id=did, at=at(i % 50),
            context=[0.1], candidates=[{"id": "a", "retrieval_score": 1.0, "features": [0.2]}],
            ranking=["a"], chosen_id="a", propensity=1.0, epsilon=0.1, temperature=0.5,
            latency_ms=round(rng.lognormvariate(3, 0.6), 3),
            assigned={"variant": rng.choice(["canary", "production"]), "policy_version": version},
            failed_version=rng.choice([None, None, rollout.candidate_version,
                                       rollout.baseline_version]),
            violations=rng.choice([{}, {}, {"pinned": 1}]), shadow=shadow,  # type: ignore[arg-type]
            **tags,
        )))  # fmt: skip
        feedback: dict[str, Any] = rng.choice([
            {}, {"success": True}, {"success": False}, {"reward": rng.random()},
            {"reward": 1.5}, {"clicked_ids": ["a"]}, {"success": True, "reward": 0.1},
        ])  # fmt: skip
        if feedback or rng.random() < 0.5:
            out.append(dict(feedback_record(
                tenant_id="acme", agent_type="memory_manager", decision_id=did,
                at=at(i % 50 + 1), **tags, **feedback,
            )))  # fmt: skip
    return out


@pytest.mark.parametrize(
    "rollout", [in_canary(5), in_shadow(), in_watch()], ids=["canary", "shadow", "watch"]
)
@pytest.mark.parametrize("seed", [1, 2])
def test_health_in_sql_counts_what_the_record_loop_counted(rollout: Rollout, seed: int) -> None:
    records = _records(rollout, 600, seed)
    base, cand = _old_health(rollout, records)
    with LogTable.of(records) as table:
        health = LogHealthReader.summarise(rollout, table, T0, at(60))
    assert isinstance(health, HealthWindow)
    assert health.baseline is not None and health.candidate is not None
    if rollout.current_step.stage.value == "shadow":
        assert health.candidate == VariantHealth(
            requests=cand.shadow, shadow_decisions=cand.shadow, shadow_errors=cand.shadow_errors
        )
    else:
        _same(health.candidate, cand)
        assert (health.candidate.shadow_decisions, health.candidate.shadow_errors) == (
            cand.shadow, cand.shadow_errors)  # fmt: skip
    _same(health.baseline, base)
    assert cand.requests and cand.shadow_errors and cand.errors and cand.successes
    assert rollout.watching or (base.requests and base.errors and base.failures)


def _same(health: VariantHealth, old: _OldTally) -> None:
    assert (health.requests, health.errors, health.feedback_successes,
            health.feedback_failures) == (old.requests, old.errors, old.successes, old.failures)
    got = (health.latency_p50_ms, health.latency_p93_ms, health.latency_p95_ms,
           health.latency_p97_ms)  # fmt: skip
    if not old.latencies:
        assert got == (None, None, None, None)
        return
    expected = np.percentile(np.asarray(old.latencies), [50, 93, 95, 97]).tolist()
    assert got == pytest.approx(expected, rel=1e-12)


def test_experiment_arms_in_sql_are_what_the_record_loop_made_them() -> None:
    rng = random.Random(3)
    arms = [ArmSpec(version="v1.0.1", traffic_percent=50),
            ArmSpec(version="v1.0.2", traffic_percent=50)]  # fmt: skip
    records: list[Record] = []
    rewards: dict[str, list[float]] = {"v1.0.1": [], "v1.0.2": []}
    decisions = {"v1.0.1": 0, "v1.0.2": 0}
    latencies: dict[str, list[float]] = {"v1.0.1": [], "v1.0.2": []}
    for i in range(400):
        version = rng.choice(["v1.0.1", "v1.0.2", "v9"])
        experiment = rng.choice(["e-1", "e-1", "e-2"])
        tags: dict[str, Any] = {"variant": "experiment", "policy_version": version,
                                "experiment_id": experiment}
        latency = rng.uniform(1, 50)
        records.append(dict(decision_record(
            tenant_id="acme", agent_type="memory_manager", decision_id=f"d{i}", at=T0,
            context=[0.1], candidates=[{"id": "a", "retrieval_score": 1.0, "features": [0.2]}],
            ranking=["a"], chosen_id="a", propensity=1.0, epsilon=0.1, temperature=0.5,
            latency_ms=latency, **tags,
        )))  # fmt: skip
        fields: dict[str, Any] = rng.choice(
            [{"success": True}, {"success": False}, {"reward": 0.3}, {}]
        )
        records.append(dict(feedback_record(tenant_id="acme", agent_type="memory_manager",
                                            decision_id=f"d{i}", at=T0, **tags, **fields)))
        if experiment == "e-1" and version in decisions:
            decisions[version] += 1
            latencies[version].append(latency)
            outcome = outcome_of(fields)
            if outcome is not None:
                rewards[version].append(outcome.reward)
    with LogTable.of(records) as table:
        got = experiment_stats.summarise("e-1", arms, table)
    for arm in got["variants"]:
        v = arm["version"]
        assert (arm["decisions"], arm["outcomes"]) == (decisions[v], len(rewards[v]))
        assert arm["mean_reward"] == pytest.approx(float(np.mean(rewards[v])), rel=1e-12)
        assert arm["latency_p95_ms"] == pytest.approx(
            float(np.percentile(latencies[v], 95)), rel=1e-12)  # fmt: skip


def test_the_held_out_condition_in_sql_is_in_holdout() -> None:
    ids = [f"dec-{i:05d}" for i in range(3000)]
    with LogTable.of([{"type": "decision", "decision_id": d} for d in ids]) as table:
        held = {r[0] for r in table.rows(f"SELECT decision_id FROM records "
                                         f"WHERE {holdout_sql(0.2)}")}  # fmt: skip
        rest = {r[0] for r in table.rows(f"SELECT decision_id FROM records "
                                         f"WHERE {holdout_sql(0.2, held_out=False)}")}
    assert held == {d for d in ids if in_holdout(d, 0.2)}
    assert rest == set(ids) - held
    assert math.isclose(len(held) / len(ids), 0.2, abs_tol=0.03)

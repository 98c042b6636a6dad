"""Rollout health from metric sums: the latency buckets' percentiles, and the same numbers as
the log reader's over the same decisions and feedback (decision 119)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyhub.adapters.log_table import LogTable
from policyhub.domain import health_metrics, health_sums, latency_buckets
from policyhub.domain.rollout import Rollout
from policyhub.services.health_reader import LogHealthReader
from tests.support.health import assert_same
from tests.unit.rollout.builders import T0, in_canary, in_shadow, in_watch

QS = (50, 93, 95, 97)
latencies = st.floats(
    min_value=latency_buckets.BOUNDS[0], max_value=latency_buckets.BOUNDS[-1], exclude_min=True
)


def bucket_counts(values: list[float]) -> list[int]:
    counts = [0] * latency_buckets.COUNT
    for v in values:
        counts[latency_buckets.bucket_of(v)] += 1
    return counts


@given(st.lists(latencies, min_size=1, max_size=400))
def test_interpolated_percentiles_are_within_one_bucket_width_of_numpys(
    values: list[float],
) -> None:
    estimated = latency_buckets.percentiles(bucket_counts(values), QS)
    assert estimated is not None
    for q, est in zip(QS, estimated, strict=True):
        exact = float(np.percentile(values, q))
        assert abs(est - exact) <= latency_buckets.RELATIVE_WIDTH * exact * (1 + 1e-9), q


@given(latencies)
def test_a_latency_falls_in_the_bucket_whose_bounds_hold_it(value: float) -> None:
    i = latency_buckets.bucket_of(value)
    assert latency_buckets.BOUNDS[i - 1] < value <= latency_buckets.BOUNDS[i] or (
        i == 0 and value <= latency_buckets.BOUNDS[0]
    )


def test_buckets_are_log_spaced_fine_and_nest_in_decades() -> None:
    ratios = np.diff(np.log10(latency_buckets.BOUNDS))
    assert np.allclose(ratios, 1 / latency_buckets.PER_DECADE)
    assert latency_buckets.RELATIVE_WIDTH < 0.05
    assert len(set(latency_buckets.NAMES)) == latency_buckets.COUNT
    decades = range(latency_buckets.DECADES)
    every = [b for d in decades for b in latency_buckets.buckets_of_decade(d)]
    assert every == list(range(latency_buckets.COUNT))
    for value in (0.05, 0.1, 0.11, 1.0, 9.99, 10.0, 5000.0, 10_000.0, 20_000.0):
        bucket = latency_buckets.bucket_of(value)
        assert bucket in latency_buckets.buckets_of_decade(
            latency_buckets.decade_of_bucket(bucket)
        )
        assert latency_buckets.decade_name(value) == latency_buckets.DECADE_NAMES[
            latency_buckets.decade_of_bucket(bucket)
        ]


@given(st.lists(latencies, min_size=1, max_size=400))
def test_fine_buckets_of_the_decades_holding_the_percentiles_are_enough(
    values: list[float],
) -> None:
    counts = bucket_counts(values)
    decades = [0] * latency_buckets.DECADES
    for b, c in enumerate(counts):
        decades[latency_buckets.decade_of_bucket(b)] += c
    needed = latency_buckets.decades_holding(decades, QS)
    assert len(needed) <= 2 * len(QS)
    fine = {b: c for b, c in enumerate(counts)
            if latency_buckets.decade_of_bucket(b) in needed}  # fmt: skip
    mixed = latency_buckets.percentiles_of(latency_buckets.segments(decades, fine, needed), QS)
    assert mixed == pytest.approx(latency_buckets.percentiles(counts, QS), rel=1e-12)


def test_no_counts_no_percentiles_and_the_tails_are_bounded() -> None:
    assert latency_buckets.percentiles([0] * latency_buckets.COUNT, QS) is None
    top = latency_buckets.percentiles(bucket_counts([50_000.0] * 3), (95,))
    assert top == [latency_buckets.BOUNDS[-1]]  # above the last bound: a lower bound
    assert latency_buckets.bucket_of(float("nan")) == latency_buckets.bucket_of(-1.0) == 0
    with pytest.raises(ValueError, match="bucket counts"):
        latency_buckets.percentiles([1], QS)


# ---- the same rules as LogHealthReader -------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """One decision of the rollout as rank serves and logs it, and its feedback."""

    assigned: str
    assigned_fails: bool
    fallback_fails: bool
    latency_ms: float
    violating: bool
    shadow: str | None  # None, "ok" or "error"
    success: bool | None  # the user's feedback, if any


def served(stage: str) -> st.SearchStrategy[Served]:
    assigned = st.sampled_from(["canary", "production"] if stage == "canary" else ["production"])
    return st.builds(
        Served, assigned, st.booleans(), st.booleans(), latencies, st.booleans(),
        st.sampled_from([None, "ok", "error"]) if stage == "shadow" else st.just(None),
        st.sampled_from([None, True, False]),
    )  # fmt: skip


def logged_and_counted(
    rollout: Rollout, traffic: list[Served]
) -> tuple[list[dict[str, Any]], Counter[tuple[str, str]]]:
    """The records rank logs and the metric counts it emits for `traffic` (services/ranking.py:
    decisions under the assigned variant, feedback under the variant that served)."""
    cand, base = rollout.candidate_version, rollout.baseline_version
    rid = rollout.rollout_id
    records: list[dict[str, Any]] = []
    sums: Counter[tuple[str, str]] = Counter()
    for s in traffic:
        own = cand if s.assigned == "canary" or rollout.watching else base
        if not s.assigned_fails:
            variant, version = s.assigned, own
        elif s.assigned == "canary" and not s.fallback_fails:
            variant, version = "production", base
        else:
            variant, version = "retrieval", None
        shadow = None if s.shadow is None else {"error": "boom" if s.shadow == "error" else None}
        records.append({
            "type": "decision", "rollout_id": rid, "assigned": {"variant": s.assigned},
            "latency_ms": s.latency_ms, "failed_version": own if s.assigned_fails else None,
            "violations": {"blocked": 1} if s.violating else {}, "shadow": shadow,
        })  # fmt: skip
        for name in health_metrics.decision_counts(
            s.latency_ms, s.assigned_fails, int(s.violating), shadow is not None,
            s.shadow == "error",
        ):  # fmt: skip
            sums[(s.assigned, name)] += 1
        if s.success is not None:
            records.append({"type": "feedback", "rollout_id": rid, "variant": variant,
                            "policy_version": version, "success": s.success})  # fmt: skip
            sums[(variant, health_metrics.feedback_count(s.success))] += 1
    return records, sums


@pytest.mark.parametrize(
    ("stage", "rollout"),
    [("shadow", in_shadow()), ("canary", in_canary(25)), ("watch", in_watch())],
)
@given(data=st.data())
def test_metric_sums_give_the_log_readers_health(stage: str, rollout: Rollout,
                                                 data: st.DataObject) -> None:
    traffic = data.draw(st.lists(served(stage), max_size=60))
    records, sums = logged_and_counted(rollout, traffic)
    end = T0 + timedelta(minutes=1)
    with LogTable.of(records) as table:
        from_logs = LogHealthReader.summarise(rollout, table, T0, end)
    from_metrics = health_sums.health_from_sums(rollout, sums, T0, end)
    assert_same(from_metrics.candidate, from_logs.candidate)
    assert_same(from_metrics.baseline, from_logs.baseline)
    # what a look reads: the decade counts, then the fine buckets of the decades it needs
    needed = health_sums.decades_needed(rollout, sums)
    assert health_sums.health_from_sums(rollout, sums, T0, end, needed) == from_metrics


def test_excess_violations_need_clearly_more_than_productions_rate() -> None:
    # production violates in 10 % of 1,000; the candidate's 100 of 1,000 is production's rate
    assert health_sums.excess_violating(100, 1000, 100, 1000) == 0
    assert health_sums.excess_violating(200, 1000, 100, 1000) == 200 - 100 - 31 - 1 + 1
    assert health_sums.excess_violating(5, 0, 0, 0) == 0

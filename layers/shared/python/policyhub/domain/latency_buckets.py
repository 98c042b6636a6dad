"""Rank latency as counts per bucket: the one definition of the buckets, and percentiles from
their counts (decision 119).

CloudWatch computes no percentile that moto (the local stack's CloudWatch) can return, and a
sum is what both give: so each decision of a rollout counts 1 in the bucket of its latency,
and the health reader sums each bucket over the step's window and interpolates p50..p97 from
the counts. The buckets are log-spaced, 48 per decade (each 4.9 % wider than the previous) from
0.1 ms to 10 s, with one bucket below and one above: an interpolated percentile is within one
bucket's relative width (`RELATIVE_WIDTH`) of the exact one.

Changing the bounds renames what old metrics mean: add new names rather than reuse these.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

PER_DECADE = 48
LOWEST_BOUND_MS = 0.1
HIGHEST_BOUND_MS = 10_000.0
BOUNDS: tuple[float, ...] = tuple(
    10 ** (k / PER_DECADE)
    for k in range(
        round(math.log10(LOWEST_BOUND_MS) * PER_DECADE),
        round(math.log10(HIGHEST_BOUND_MS) * PER_DECADE) + 1,
    )
)
"""Upper bounds (ms, inclusive) of the buckets; the last bucket has none."""
RELATIVE_WIDTH = 10 ** (1 / PER_DECADE) - 1
"""How much wider a bucket's upper bound is than its lower (about 0.049)."""
COUNT = len(BOUNDS) + 1
NAMES: tuple[str, ...] = tuple(f"LatencyBucket{i:03d}" for i in range(COUNT))
"""The metric name of each bucket: bucket i holds latencies in (BOUNDS[i-1], BOUNDS[i]]."""


def bucket_of(latency_ms: float) -> int:
    """The bucket of one latency (NaN and negatives go to the first)."""
    if not latency_ms > 0:
        return 0
    return bisect_left(BOUNDS, latency_ms)


def metric_name(latency_ms: float) -> str:
    return NAMES[bucket_of(latency_ms)]


def _edges(bucket: int) -> tuple[float, float]:
    low = BOUNDS[bucket - 1] if bucket > 0 else 0.0
    high = BOUNDS[bucket] if bucket < len(BOUNDS) else low  # above the last: its lower bound
    return low, high


def percentiles(counts: Sequence[int], qs: Sequence[float]) -> list[float] | None:
    """The `qs` percentiles (0..100) of the latencies counted in `counts` (one per bucket), or
    None with no count.

    As `numpy.percentile` (linear): the q-th percentile lies at position q/100·(n-1) among the
    sorted values, between two of them. Each value is placed inside its bucket, the k-th of a
    bucket's c values at (k + 1/2)/c of its width; so every placed value is in the same bucket
    as the real one, and the percentile, a weighted mean of two of them, is within
    `RELATIVE_WIDTH` of the exact one (for latencies between the first and the last bound).
    """
    if len(counts) != COUNT:
        raise ValueError(f"{len(counts)} bucket counts, expected {COUNT}")
    total = sum(counts)
    if total <= 0:
        return None
    cumulative: list[int] = []
    running = 0
    for c in counts:
        running += c
        cumulative.append(running)

    def value_at(index: int) -> float:
        bucket = bisect_left(cumulative, index + 1)
        before = cumulative[bucket - 1] if bucket > 0 else 0
        low, high = _edges(bucket)
        return low + (high - low) * (index - before + 0.5) / counts[bucket]

    out = []
    for q in qs:
        position = q / 100 * (total - 1)
        below = math.floor(position)
        frac = position - below
        value = value_at(below)
        if frac > 0:
            value += frac * (value_at(below + 1) - value)
        out.append(value)
    return out

"""Rank latency as counts per bucket: the one definition of the buckets, and percentiles from
their counts (decision 119).

CloudWatch computes no percentile that moto (the local stack's CloudWatch) can return, and a
sum is what both give: so each decision of a rollout counts 1 in the bucket of its latency,
and the health reader sums each bucket over the step's window and interpolates p50..p97 from
the counts. The buckets are log-spaced, 48 per decade (each 4.9 % wider than the previous) from
0.1 ms to 10 s, with one bucket below and one above: an interpolated percentile is within one
bucket's relative width (`RELATIVE_WIDTH`) of the exact one. Each decision also counts in its
decade, so a look asks first for 7 decade counts and then for the fine buckets of only the
decades the percentiles lie in (decision 119).

Changing the bounds renames what old metrics mean: add new names rather than reuse these.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate

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


DECADES = 2 + (len(BOUNDS) - 1) // PER_DECADE
"""Coarse buckets: below the first bound, one per decade of fine buckets, above the last."""
DECADE_NAMES: tuple[str, ...] = tuple(f"LatencyDecade{d}" for d in range(DECADES))
"""A decision also counts 1 in its decade, so a reader can find where the percentiles lie
before it asks for the fine buckets of only those decades."""


def decade_of_bucket(bucket: int) -> int:
    if bucket == 0:
        return 0
    if bucket == COUNT - 1:
        return DECADES - 1
    return 1 + (bucket - 1) // PER_DECADE


def buckets_of_decade(decade: int) -> range:
    if decade == 0:
        return range(0, 1)
    if decade == DECADES - 1:
        return range(COUNT - 1, COUNT)
    first = 1 + (decade - 1) * PER_DECADE
    return range(first, first + PER_DECADE)


def decade_name(latency_ms: float) -> str:
    return DECADE_NAMES[decade_of_bucket(bucket_of(latency_ms))]


def _edges(bucket: int) -> tuple[float, float]:
    low = BOUNDS[bucket - 1] if bucket > 0 else 0.0
    high = BOUNDS[bucket] if bucket < len(BOUNDS) else low  # above the last: its lower bound
    return low, high


def _decade_edges(decade: int) -> tuple[float, float]:
    span = buckets_of_decade(decade)
    return _edges(span[0])[0], _edges(span[-1])[1]


Segment = tuple[float, float, int]
"""(low, high, count) of a run of latencies, in increasing order."""


def segments(
    decade_counts: Sequence[int], fine: Mapping[int, int], fine_decades: Iterable[int]
) -> list[Segment]:
    """A histogram from the decades' counts, with the fine buckets of `fine_decades` (bucket
    index -> count, missing = 0) in place of their decade."""
    if len(decade_counts) != DECADES:
        raise ValueError(f"{len(decade_counts)} decade counts, expected {DECADES}")
    detailed = set(fine_decades)
    out: list[Segment] = []
    for decade, count in enumerate(decade_counts):
        if decade in detailed:
            out += [(*_edges(b), fine.get(b, 0)) for b in buckets_of_decade(decade)]
        else:
            out.append((*_decade_edges(decade), count))
    return out


def decades_holding(decade_counts: Sequence[int], qs: Sequence[float]) -> set[int]:
    """The decades holding the two sorted values each `qs` percentile lies between."""
    total = sum(decade_counts)
    if total <= 0:
        return set()
    cumulative = list(accumulate(decade_counts))
    out = set()
    for q in qs:
        below = math.floor(q / 100 * (total - 1))
        for index in (below, min(below + 1, total - 1)):
            out.add(bisect_left(cumulative, index + 1))
    return out


def percentiles(counts: Sequence[int], qs: Sequence[float]) -> list[float] | None:
    """The `qs` percentiles (0..100) of the latencies counted in `counts` (one per bucket), or
    None with no count."""
    if len(counts) != COUNT:
        raise ValueError(f"{len(counts)} bucket counts, expected {COUNT}")
    return percentiles_of([(*_edges(b), c) for b, c in enumerate(counts)], qs)


def percentiles_of(histogram: Sequence[Segment], qs: Sequence[float]) -> list[float] | None:
    """The `qs` percentiles of the latencies in `histogram`, or None when it is empty.

    As `numpy.percentile` (linear): the q-th percentile lies at position q/100·(n-1) among the
    sorted values, between two of them. Each value is placed inside its segment, the k-th of a
    segment's c values at (k + 1/2)/c of its width; so every placed value is in the same bucket
    as the real one, and the percentile, a weighted mean of two of them, is within
    `RELATIVE_WIDTH` of the exact one when both lie in fine buckets between the first and the
    last bound.
    """
    counts = [c for _, _, c in histogram]
    total = sum(counts)
    if total <= 0:
        return None
    cumulative = list(accumulate(counts))

    def value_at(index: int) -> float:
        i = bisect_left(cumulative, index + 1)
        before = cumulative[i - 1] if i > 0 else 0
        low, high, count = histogram[i]
        return low + (high - low) * (index - before + 0.5) / count

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

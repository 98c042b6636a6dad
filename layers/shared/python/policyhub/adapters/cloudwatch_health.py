"""Rollout health from CloudWatch metrics, as Argo Rollouts' and Flagger's analyses read it.

One look is `GetMetricData` of the `Sum` of the rollout's health metrics
(`domain.health_metrics`) of both variants over the step's window, whatever the traffic: first
the counts and the 7 latency decades (28 queries), then, in a second call, the same with the
fine latency buckets of the decades the percentiles lie in (48 per decade and variant; again
if that call's decades moved, as data arrived between the two). The window starts at the
step's start rounded *up* to the metrics' resolution (CloudWatch rounds a start down, which
would let the previous step's last minute in), and ends now (decision 119).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from policyhub.adapters import aws
from policyhub.adapters.emf_metrics import rollout_metric_query
from policyhub.domain import health_metrics, health_sums, latency_buckets
from policyhub.domain.health import Health, HealthReadFailed
from policyhub.domain.rollout import Rollout

MAX_QUERIES = 500
"""GetMetricData's limit of queries per call."""


def window_start(start: datetime, resolution_seconds: int) -> datetime:
    """The first instant at the metrics' resolution not before `start`."""
    epoch = start.timestamp()
    return datetime.fromtimestamp(
        math.ceil(epoch / resolution_seconds) * resolution_seconds, UTC
    )


def _queries(
    rollout_id: str, names: list[str], period: int
) -> Iterator[tuple[str, tuple[str, str], dict[str, Any]]]:
    n = 0
    for variant in health_metrics.VARIANTS:
        for name in names:
            query_id = f"m{n}"
            n += 1
            yield query_id, (variant, name), rollout_metric_query(
                query_id, name, rollout_id, variant, "Sum", period, return_data=True
            )


class CloudWatchHealthReader:
    """`resolution_seconds`: 60 for EMF metrics in AWS (standard resolution); 1 for the local
    sink's metrics on moto, which keeps each datum's second."""

    def __init__(
        self,
        resolution_seconds: int = 60,
        client: Callable[[], Any] = lambda: aws.client("cloudwatch"),
    ) -> None:
        self.resolution_seconds = resolution_seconds
        self._client = client
        self.calls = 0
        self.queries = 0
        """GetMetricData calls and metrics asked for so far (the benchmark reads them)."""

    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
        first = window_start(start, self.resolution_seconds)
        if first >= end:  # the step began less than one resolution ago
            return health_sums.health_from_sums(rollout, {}, first, end)
        # The end is exclusive (and whole seconds on moto): keep the current second's datum.
        until = end + timedelta(seconds=1)
        # One period for the whole window: one datum per query to sum (and one scan on moto).
        span = (until - first).total_seconds()
        period = max(1, math.ceil(span / self.resolution_seconds)) * self.resolution_seconds
        try:
            names = list(health_metrics.SUMMARY)
            fetched: set[int] = set()
            sums = self._sums(rollout.rollout_id, names, first, until, period)
            while missing := health_sums.decades_needed(rollout, sums) - fetched:
                fetched |= missing
                fine = [latency_buckets.NAMES[b] for d in sorted(fetched)
                        for b in latency_buckets.buckets_of_decade(d)]  # fmt: skip
                sums = self._sums(rollout.rollout_id, names + fine, first, until, period)
        except Exception as exc:
            return HealthReadFailed(
                window_start=first, window_end=end, error=f"{type(exc).__name__}: {exc}"[:300]
            )
        return health_sums.health_from_sums(rollout, sums, first, end, fetched)

    def _sums(
        self, rollout_id: str, names: list[str], start: datetime, end: datetime, period: int
    ) -> dict[tuple[str, str], float]:
        planned = list(_queries(rollout_id, names, period))
        self.queries += len(planned)
        keys = {query_id: key for query_id, key, _ in planned}
        sums: dict[tuple[str, str], float] = {}
        client = self._client()
        for i in range(0, len(planned), MAX_QUERIES):
            request: dict[str, Any] = {
                "MetricDataQueries": [q for _, _, q in planned[i : i + MAX_QUERIES]],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            while True:
                self.calls += 1
                page = client.get_metric_data(**request)
                for result in page["MetricDataResults"]:
                    if result.get("StatusCode") in ("InternalError", "Forbidden"):
                        raise RuntimeError(
                            f"GetMetricData {result['Id']}: {result.get('StatusCode')}"
                        )
                    key = keys[result["Id"]]
                    sums[key] = sums.get(key, 0.0) + sum(result.get("Values", ()))
                token = page.get("NextToken")
                if not token:
                    break
                request["NextToken"] = token
        return sums

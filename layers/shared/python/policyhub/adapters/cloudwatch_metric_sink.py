"""The local stack's serving metrics: the rollout health metrics put to the embedded CloudWatch.

In AWS the rank function writes EMF and CloudWatch extracts the metrics; moto reads no logs.
So locally the same health metrics (`domain.health_metrics`, per [rollout_id, variant]) are
counted in memory and a background thread puts them with `PutMetricData`: one datum per metric
and second (`StatisticValues`, so moto keeps one object, not one per decision), at most 1,000
per call. The rank path only increments a counter under a lock (decision 120).

Only rollout metrics are put: nothing reads the per-agent ones locally, and moto's
`GetMetricData` scans every datum it holds for every query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from policyhub.adapters import aws
from policyhub.adapters.emf_metrics import NAMESPACE
from policyhub.domain import health_metrics

logger = logging.getLogger("policyhub.metrics")
MAX_DATA_PER_CALL = 1000
"""PutMetricData's limit of metric data per request."""

Key = tuple[str, str, str, int]
"""(rollout_id, variant, metric name, epoch second at the sink's resolution)"""


class PutMetricDataSink:
    """`resolution_seconds`: each datum sums that many seconds (the reader's resolution must
    be a multiple of it); 1 for the local stack, 60 to hold what CloudWatch keeps of EMF."""

    def __init__(
        self,
        resolution_seconds: int = 1,
        flush_seconds: float = 0.5,
        client: Callable[[], Any] = lambda: aws.client("cloudwatch"),
        now: Callable[[], float] = time.time,
    ) -> None:
        self._resolution = resolution_seconds
        self._client = client
        self._now = now
        self._flush_seconds = flush_seconds
        self._counts: dict[Key, int] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.put_calls = 0
        self.lost = 0
        """Counts that could not be put after retries (logged)."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="metric-flusher")
        self._thread.start()

    # ---- ServingMetrics ----------------------------------------------------------------------
    def decision(
        self,
        agent_type: str,
        variant: str,
        rollout_id: str | None,
        experiment_id: str | None,
        latency_ms: float,
        error: bool,
        violations: int,
        shadow: bool = False,
        shadow_error: bool = False,
    ) -> None:
        if rollout_id:
            self._add(
                rollout_id,
                variant,
                health_metrics.decision_counts(latency_ms, error, violations, shadow, shadow_error),
            )

    def feedback(
        self, agent_type: str, variant: str, rollout_id: str | None, success: bool | None
    ) -> None:
        if rollout_id and success is not None:
            self._add(rollout_id, variant, [health_metrics.feedback_count(success)])

    def _add(self, rollout_id: str, variant: str, names: list[str]) -> None:
        now = int(self._now())
        second = now - now % self._resolution
        with self._lock:
            for name in names:
                key = (rollout_id, variant, name, second)
                self._counts[key] = self._counts.get(key, 0) + 1

    # ---- flushing ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the flusher die; flush logs what it lost
                logger.exception("metric flush failed")

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                pending, self._counts = self._counts, {}
            data = [_datum(key, n) for key, n in pending.items()]
            for i in range(0, len(data), MAX_DATA_PER_CALL):
                batch = data[i : i + MAX_DATA_PER_CALL]
                if not self._put(batch):
                    self.lost += sum(int(d["StatisticValues"]["Sum"]) for d in batch)
                    logger.error("%d health metric data not put to CloudWatch", len(batch))

    def _put(self, batch: list[dict[str, Any]]) -> bool:
        for attempt in range(3):
            try:
                self.put_calls += 1
                self._client().put_metric_data(Namespace=NAMESPACE, MetricData=batch)
                return True
            except Exception:
                time.sleep(0.05 * 2**attempt)
        return False

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()


def _datum(key: Key, n: int) -> dict[str, Any]:
    rollout_id, variant, name, second = key
    return {
        "MetricName": name,
        "Dimensions": [
            {"Name": "rollout_id", "Value": rollout_id},
            {"Name": "variant", "Value": variant},
        ],
        "Timestamp": datetime.fromtimestamp(second, UTC),
        "StatisticValues": {"SampleCount": n, "Sum": n, "Minimum": 1.0, "Maximum": 1.0},
        "Unit": "Count",
        "StorageResolution": 1,
    }

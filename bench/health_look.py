"""One rollout-controller look over a 1-hour window at 1,000 decisions/s, health from CloudWatch.

    .venv/bin/python -m bench.health_look [--rate 1000] [--minutes 60] [--looks 5]

The embedded CloudWatch (moto's server in a child process, as `make up` runs it) is given one
hour of a rollout's health metrics as CloudWatch keeps EMF metrics: one datum per metric,
variant and minute (the local sink at a 60 s resolution, fed `rate` decisions a second with
latencies drawn from bench/data/local_rank_latency_ms.txt, a 10 % canary, feedback on half).
Then `CloudWatchHealthReader.read` — what `RolloutService.tick` asks of the health port — runs
`looks` times. Prints the median look, the GetMetricData calls and metrics per look (CloudWatch
bills $0.01 per 1,000 metrics), and the latency
percentiles against numpy's exact ones on the same draws. Target: a look <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from infra.local.embedded_aws import EmbeddedAwsProcess, free_port
from infra.local.stack import HOST
from policyhub.adapters import aws
from policyhub.adapters.cloudwatch_health import CloudWatchHealthReader
from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink
from policyhub.domain.health import HealthWindow
from tests.unit.rollout.builders import in_canary

LATENCIES = Path(__file__).parent / "data" / "local_rank_latency_ms.txt"
CANARY_SHARE = 0.10


class TimedClient:
    """The CloudWatch client, timing its GetMetricData calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._client = aws.client("cloudwatch")

    def get_metric_data(self, **request: Any) -> Any:
        began = time.perf_counter()
        try:
            return self._client.get_metric_data(**request)
        finally:
            self.seconds += time.perf_counter() - began


def fill(sink: PutMetricDataSink, clock: list[float], rollout_id: str, rate: int, minutes: int,
         rng: np.random.Generator) -> dict[str, np.ndarray]:  # fmt: skip
    """`rate` decisions a second for `minutes`, through the sink's ServingMetrics calls."""
    pool = np.loadtxt(LATENCIES)
    drawn: dict[str, list[np.ndarray]] = {"canary": [], "production": []}
    start = clock[0]
    for minute in range(minutes):
        n = rate * 60
        latency = rng.choice(pool, n)
        canary = rng.random(n) < CANARY_SHARE
        success = rng.random(n) < 0.9
        feedback = rng.random(n) < 0.5
        clock[0] = start + minute * 60
        for lat, is_canary, ok, fb in zip(
            latency.tolist(), canary.tolist(), success.tolist(), feedback.tolist(), strict=True
        ):
            variant = "canary" if is_canary else "production"
            sink.decision("memory_manager", variant, rollout_id, None, lat, False, 0)
            if fb:
                sink.feedback("memory_manager", variant, rollout_id, ok)
        drawn["canary"].append(latency[canary])
        drawn["production"].append(latency[~canary])
        sink.flush()
    return {k: np.concatenate(v) for k, v in drawn.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000, help="decisions per second")
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--looks", type=int, default=5)
    args = parser.parse_args()

    embedded = EmbeddedAwsProcess(HOST, free_port()).start()
    try:
        rollout = in_canary(10)
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(
            minutes=args.minutes + 1
        )
        rollout = rollout.model_copy(update={"steps": (
            rollout.current_step.model_copy(update={"started_at": start}),)})  # fmt: skip
        clock = [start.timestamp()]
        sink = PutMetricDataSink(resolution_seconds=60, flush_seconds=3600, now=lambda: clock[0])
        began = time.perf_counter()
        drawn = fill(sink, clock, rollout.rollout_id, args.rate, args.minutes,
                     np.random.default_rng(7))  # fmt: skip
        sink.close()
        print(f"put {args.rate * 60 * args.minutes:,} decisions as {sink.put_calls} "
              f"PutMetricData calls in {time.perf_counter() - began:.1f} s (not timed below)")

        client = TimedClient()
        reader = CloudWatchHealthReader(resolution_seconds=60, client=lambda: client)
        end = start + timedelta(minutes=args.minutes)
        times, waits, health = [], [], None
        for _ in range(args.looks):
            calls, queries, client.seconds = reader.calls, reader.queries, 0.0
            began = time.perf_counter()
            health = reader.read(rollout, start, end)
            times.append(time.perf_counter() - began)
            waits.append(client.seconds)
            per_look = reader.calls - calls
            metrics_per_look = reader.queries - queries
        assert isinstance(health, HealthWindow), health
        print(f"controller look over {args.minutes} min at {args.rate}/s: median "
              f"{statistics.median(times):.3f} s (n={args.looks}, {per_look} GetMetricData "
              f"calls of {metrics_per_look} metrics a look; target <= 2 s)")
        print(f"  of which waiting for GetMetricData (moto scans every datum per query): median "
              f"{statistics.median(waits):.3f} s; the reader's own work "
              f"{1000 * statistics.median(t - w for t, w in zip(times, waits, strict=True)):.1f}"
              " ms")
        for name, side in (("canary", health.candidate), ("production", health.baseline)):
            assert side is not None
            exact = np.percentile(drawn[name], [50, 95])
            print(f"  {name:<10} requests {side.requests:>9,}  p50 {side.latency_p50_ms:.3f} "
                  f"(exact {exact[0]:.3f}) ms  p95 {side.latency_p95_ms:.3f} "
                  f"(exact {exact[1]:.3f}) ms  p95 error "
                  f"{100 * (side.latency_p95_ms or 0) / exact[1] - 100:+.2f} %")
    finally:
        embedded.stop()


if __name__ == "__main__":
    main()

"""The local metrics sink: counters on the rank path, PutMetricData from a background thread
(decision 120)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink
from policyhub.domain import latency_buckets


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
        assert Namespace == "PolicyHub"
        if self.fail:
            raise ConnectionError("embedded CloudWatch is down")
        self.calls.append(MetricData)


def sums(calls: list[list[dict[str, Any]]]) -> dict[tuple[str, str, str, int], float]:
    out: dict[tuple[str, str, str, int], float] = {}
    for data in calls:
        for d in data:
            dims = {x["Name"]: x["Value"] for x in d["Dimensions"]}
            second = int(d["Timestamp"].timestamp())
            key = (dims["rollout_id"], dims["variant"], d["MetricName"], second)
            out[key] = out.get(key, 0.0) + d["StatisticValues"]["Sum"]
    return out


def test_counts_are_summed_per_metric_variant_and_second_and_only_for_rollouts() -> None:
    client, clock = Recording(), [100.2]
    sink = PutMetricDataSink(flush_seconds=3600, client=lambda: client, now=lambda: clock[0])
    try:
        for latency in (1.0, 1.0, 2.5):
            sink.decision("agent", "canary", "ro_1", None, latency, False, 0)
        sink.decision("agent", "production", None, None, 1.0, True, 3)  # no rollout: nothing
        sink.decision("agent", "experiment", None, "ex_1", 1.0, True, 3)  # an experiment: nothing
        clock[0] = 101.9
        sink.decision("agent", "canary", "ro_1", None, 1.0, True, 2, shadow=False)
        sink.feedback("agent", "production", "ro_1", success=False)
        sink.feedback("agent", "production", "ro_1", success=None)  # no outcome: nothing
        sink.flush()
    finally:
        sink.close()
    got = sums(client.calls)
    one = latency_buckets.metric_name(1.0)
    decade = latency_buckets.decade_name(1.0)
    assert decade != latency_buckets.decade_name(2.5)
    assert got == {
        ("ro_1", "canary", "Requests", 100): 3,
        ("ro_1", "canary", one, 100): 2,
        ("ro_1", "canary", decade, 100): 2,
        ("ro_1", "canary", latency_buckets.metric_name(2.5), 100): 1,
        ("ro_1", "canary", latency_buckets.decade_name(2.5), 100): 1,
        ("ro_1", "canary", "Requests", 101): 1,
        ("ro_1", "canary", one, 101): 1,
        ("ro_1", "canary", decade, 101): 1,
        ("ro_1", "canary", "Errors", 101): 1,
        ("ro_1", "canary", "ViolatingDecisions", 101): 1,
        ("ro_1", "production", "Failures", 101): 1,
    }
    assert all(d["StorageResolution"] == 1 for data in client.calls for d in data)


def test_the_background_thread_puts_what_the_rank_path_counted() -> None:
    client = Recording()
    sink = PutMetricDataSink(flush_seconds=0.05, client=lambda: client)
    try:
        sink.decision("agent", "canary", "ro_1", None, 1.0, False, 0)
        deadline = time.monotonic() + 5
        while not client.calls and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sink.close()
    assert sum(sums(client.calls).values()) == 3  # Requests, its latency bucket and decade


def test_a_cloudwatch_that_refuses_loses_counts_loudly_and_never_fails_the_rank_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = PutMetricDataSink(flush_seconds=3600, client=lambda: Recording(fail=True))
    try:
        sink.decision("agent", "canary", "ro_1", None, 1.0, False, 0)
        sink.flush()
    finally:
        sink.close()
    assert sink.lost == 3
    assert "not put to CloudWatch" in caplog.text

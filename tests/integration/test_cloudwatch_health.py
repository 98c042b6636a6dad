"""Rollout health from CloudWatch metrics on moto: the rank path's metrics, put by the local
sink, read back by CloudWatchHealthReader, give the log reader's numbers (decision 119)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.seed import seed_demo
from policyhub.adapters.cloudwatch_health import CloudWatchHealthReader, window_start
from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink
from policyhub.adapters.interaction_log_reader import S3InteractionLog
from policyhub.adapters.local_log_sink import BatchingS3Sink
from policyhub.api import container
from policyhub.domain.health import HealthReadFailed, HealthWindow
from policyhub.services.health_reader import LogHealthReader
from policyhub.settings import settings
from tests.integration.test_serving import rank_body
from tests.support.api import Api
from tests.support.health import assert_same
from tests.support.traffic import COMPRESSED_PIPELINE, balanced_users, drive_until, send

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("rollouts")]

HELD = {**COMPRESSED_PIPELINE, "canary_steps": [5, 100], "step_seconds": 600,
        "max_step_seconds": 600, "min_samples_per_step": 100_000}  # fmt: skip
"""A canary step that holds for the whole test."""


@pytest.fixture
def demo(embedded_aws: None, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0")
    monkeypatch.setenv("POLICYHUB_HEALTH_SOURCE", "cloudwatch")
    container.reset()
    return Api(seed_demo(None).admin_key)


def test_health_from_the_embedded_cloudwatch_is_the_log_readers(demo: Api) -> None:
    metrics = container.serving_metrics()
    assert isinstance(metrics, PutMetricDataSink)
    assert isinstance(container.health_reader(), CloudWatchHealthReader)
    r = demo.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": HELD}
    )
    assert r.status == 202, r.body
    rollout_id = r.json()["rollout_id"]
    time.sleep(1.1)  # every decision after the step's first whole second: one window for both
    served = send(demo, rank_body, balanced_users(rollout_id), 60,
                  success=lambda d: d["variant"] == "production" or len(d["ranking"]) % 2 == 0)
    assert {d["variant"] for d in served} == {"canary", "production"}
    log_sink = container.log_sink()
    assert isinstance(log_sink, BatchingS3Sink)
    log_sink.flush()
    metrics.flush()
    rollout = container.rollouts().get("demo", "memory_manager", rollout_id)
    start = window_start(rollout.step_started_at, 1)
    end = datetime.now(UTC) + timedelta(seconds=1)

    from_metrics = CloudWatchHealthReader(resolution_seconds=1).read(rollout, start, end)
    log = S3InteractionLog(settings().interaction_bucket, written_by_local_sink=True)
    from_logs = LogHealthReader(log).read(rollout, start, end)
    assert isinstance(from_metrics, HealthWindow) and isinstance(from_logs, HealthWindow)
    assert from_metrics.window_start >= rollout.step_started_at  # the judge's own check
    assert from_logs.candidate is not None and from_logs.candidate.requests > 10
    assert_same(from_metrics.candidate, from_logs.candidate)
    assert_same(from_metrics.baseline, from_logs.baseline)


@pytest.mark.parametrize("source", ["cloudwatch", "logs"])
def test_the_controller_takes_a_good_candidate_to_production_on_either_source(
    demo: Api, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.setenv("POLICYHUB_LOCAL_TICK_SECONDS", "0.2")
    monkeypatch.setenv("POLICYHUB_HEALTH_SOURCE", source)
    container.reset()
    r = demo.post("/policies/promote", {"version": "v1.2.5", "pipeline": COMPRESSED_PIPELINE})
    assert r.status == 202, r.body
    final = drive_until(
        demo, r.json()["rollout_id"], {"promoted", "rolled_back", "aborted"},
        lambda users: send(demo, rank_body, users, 40),
    )  # fmt: skip
    assert final["state"] == "promoted", final["outcome_reason"]
    assert [s["stage"] for s in final["steps"]][:2] == ["shadow", "canary"]
    for s in final["steps"][:6]:
        assert s["verdict"] == "healthy" and s["candidate"]["requests"] > 0
    reader = CloudWatchHealthReader if source == "cloudwatch" else LogHealthReader
    assert isinstance(container.health_reader(), reader)


def test_a_step_younger_than_the_resolution_reads_no_traffic(demo: Api) -> None:
    r = demo.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": HELD}
    )
    rollout = container.rollouts().get("demo", "memory_manager", r.json()["rollout_id"])
    started = rollout.step_started_at
    health = CloudWatchHealthReader(resolution_seconds=60).read(
        rollout, started, window_start(started, 60) - timedelta(microseconds=1)
    )
    assert isinstance(health, HealthWindow)
    assert health.candidate is not None and health.candidate.requests == 0


def test_an_unreadable_cloudwatch_is_a_failed_read_not_numbers(demo: Api) -> None:
    r = demo.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": HELD}
    )
    rollout = container.rollouts().get("demo", "memory_manager", r.json()["rollout_id"])

    class Refusing:
        def get_metric_data(self, **_: object) -> object:
            raise PermissionError("not authorized to perform cloudwatch:GetMetricData")

    now = datetime.now(UTC)
    reader = CloudWatchHealthReader(1, client=Refusing)
    health = reader.read(rollout, now - timedelta(seconds=60), now)
    assert isinstance(health, HealthReadFailed) and "GetMetricData" in health.error


def test_the_sink_puts_one_datum_per_metric_and_second_in_batches_of_1000(
    embedded_aws: None,
) -> None:
    sink = PutMetricDataSink(flush_seconds=3600, now=lambda: 1_000_000.0)
    try:
        for i in range(3000):
            # 3,000 decisions of one second: 1,200 rollouts x (Requests, bucket, decade)
            sink.decision("memory_manager", "canary", f"ro_{i % 1200}", None, 2.0, False, 0)
        sink.flush()
        assert sink.put_calls == 4 and sink.lost == 0
    finally:
        sink.close()

"""Reading the interaction logs back from S3 (moto), as the rollout controller does per look."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from policyhub.adapters.interaction_logs import BatchingS3Sink, S3InteractionLog, parquet_body
from policyhub.settings import settings

pytestmark = pytest.mark.integration


def _record(i: int, at: datetime) -> dict[str, object]:
    return {"type": "decision", "tenant_id": "acme", "agent_type": "memory_manager",
            "decision_id": f"d{i}", "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def test_a_repeated_read_fetches_only_the_objects_written_since(embedded_aws: None) -> None:
    bucket = settings().interaction_bucket
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    log = S3InteractionLog(bucket)
    now = datetime.now(UTC)
    since, until = now - timedelta(minutes=1), now + timedelta(minutes=1)
    try:
        for batch in range(3):
            for i in range(5):
                sink.put(_record(batch * 5 + i, now))
            sink.flush()
        first = [r["decision_id"] for r in log.read("acme", "memory_manager", since, until)]
        assert (len(first), log.fetches) == (15, 3)
        sink.put(_record(99, now))
        sink.flush()
        second = [r["decision_id"] for r in log.read("acme", "memory_manager", since, until)]
    finally:
        sink.close()
    assert sorted(second) == sorted([*first, "d99"])
    assert log.fetches == 4  # the three earlier objects came from the cache


def test_a_window_larger_than_the_cache_still_finds_its_first_objects_cached(
    embedded_aws: None,
) -> None:
    bucket = settings().interaction_bucket
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    now = datetime.now(UTC)
    one_object = len(parquet_body([_record(0, now)]))
    log = S3InteractionLog(bucket, max_cached_bytes=int(2.5 * one_object))
    try:
        for i in range(4):
            sink.put(_record(i, now))
            sink.flush()
    finally:
        sink.close()
    window = (now - timedelta(minutes=1), now + timedelta(minutes=1))
    assert len(list(log.read("acme", "memory_manager", *window))) == 4
    assert log.fetches == 4
    assert len(list(log.read("acme", "memory_manager", *window))) == 4
    assert 4 < log.fetches < 8  # the window's first bodies stayed cached; no thrashing


def test_a_local_log_lists_from_the_window_on_and_still_reads_all_of_it(
    embedded_aws: None,
) -> None:
    bucket = settings().interaction_bucket
    # S3 stamps objects to the second: a skew of one second keeps the window's first objects.
    log = S3InteractionLog(bucket, clock_skew=timedelta(seconds=1), written_by_local_sink=True)
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    now = datetime.now(UTC)
    try:
        sink.put(_record(1, now))
        sink.flush()
        time.sleep(1.5)
        window_start = datetime.now(UTC)
        sink.put(_record(2, window_start + timedelta(seconds=1)))
        sink.flush()
    finally:
        sink.close()
    got = [r["decision_id"] for r in log.read("acme", "memory_manager", window_start,
                                              window_start + timedelta(minutes=1))]
    assert got == ["d2"] and log.fetches == 1  # the earlier object was not even listed

"""Reading the interaction logs back from S3 (moto), as the rollout controller does per look."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from policyhub.adapters import aws
from policyhub.adapters.interaction_log_reader import S3InteractionLog
from policyhub.adapters.interaction_logs import (
    DEAD_LETTER_PREFIX,
    PREFIX,
    UNSPLIT,
    day_partition,
    hour_partition,
    local_object_key,
    partition,
)
from policyhub.adapters.local_log_sink import BatchingS3Sink, parquet_body
from policyhub.domain.holdout import SPLITS, split_of
from policyhub.domain.interaction_columns import COLUMNS
from policyhub.domain.interaction_records import decision_record, feedback_record
from policyhub.settings import settings

pytestmark = pytest.mark.integration


def _record(i: int, at: datetime) -> dict[str, object]:
    return {"type": "decision", "tenant_id": "acme", "agent_type": "memory_manager",
            "decision_id": f"d{i}", "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def _partition(i: int, at: datetime) -> str:
    """Where the sink puts `_record(i, at)`."""
    return partition("acme", "memory_manager", at, split_of(f"d{i}"))


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
        # an object per flush and side of the held-out split
        objects = len({(i // 5, split_of(f"d{i}")) for i in range(15)})
        assert (len(first), log.fetches) == (15, objects)
        sink.put(_record(99, now))
        sink.flush()
        second = [r["decision_id"] for r in log.read("acme", "memory_manager", since, until)]
    finally:
        sink.close()
    assert sorted(second) == sorted([*first, "d99"])
    assert log.fetches == objects + 1  # the earlier objects came from the cache


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


def _objects(bucket: str, prefix: str) -> dict[str, bytes]:
    listed = aws.s3().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: aws.s3().get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listed}  # fmt: skip


def test_the_local_sink_writes_one_zstd_parquet_object_of_the_table_columns_per_partition(
    embedded_aws: None, tmp_path: Path
) -> None:
    bucket = settings().interaction_bucket
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    now = datetime.now(UTC)
    try:
        for i in range(3):
            sink.put(_record(i, now))
        sink.put({**_record(9, now), "agent_type": "support_bot"})
        sink.flush()
    finally:
        sink.close()
    objects = _objects(bucket, f"{PREFIX}/tenant=acme/")
    assert sorted(k.split("/")[2] for k in objects) == ["agent=memory_manager", "agent=support_bot"]
    key, body = next((k, b) for k, b in objects.items() if "memory_manager" in k)
    assert key.startswith(partition("acme", "memory_manager", now, "train"))  # d0, d1, d2
    assert key.endswith(".parquet")
    path = tmp_path / "object.parquet"
    path.write_bytes(body)
    with duckdb.connect() as con:
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
        codecs = {r[0] for r in con.execute(
            f"SELECT DISTINCT compression FROM parquet_metadata('{path}')").fetchall()}
        rows = con.execute(f"SELECT count(*) FROM '{path}'").fetchone()
    assert columns == list(COLUMNS)
    assert codecs == {"ZSTD"}
    assert rows == (3,)


def test_json_lines_objects_written_before_parquet_and_hours_read_as_the_same_records(
    embedded_aws: None,
) -> None:
    bucket = settings().interaction_bucket
    now = datetime.now(UTC)
    decision = decision_record(
        tenant_id="acme", agent_type="memory_manager", decision_id="d-old", at=now,
        policy_version="v1.0.1", variant="canary", context=[0.5, 1.5],
        candidates=[{"id": "a", "retrieval_score": 0.9, "features": [1.0, 2.0]}],
        ranking=["a"], chosen_id="a", propensity=0.8, epsilon=0.1, temperature=0.5,
        latency_ms=4.25, rollout_id="r-1", violations={"pinned": 1},
        shadow={"policy_version": "v1.0.2", "ranking": ["a"], "error": None},
    )  # fmt: skip
    feedback = feedback_record(
        tenant_id="acme", agent_type="memory_manager", decision_id="d-old", at=now,
        variant="canary", policy_version="v1.0.1", reward=0.7, clicked_ids=["a"],
    )  # fmt: skip
    old = "".join(json.dumps(r) + "\n" for r in (decision, feedback)).encode()
    # as written before Parquet, and before the hour partitions (decision 129)
    prefix = day_partition("acme", "memory_manager", now)
    aws.s3().put_object(Bucket=bucket, Key=f"{prefix}before-parquet.jsonl", Body=old)
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    try:
        sink.put({**decision, "decision_id": "d-new"})
        sink.put({**feedback, "decision_id": "d-new"})
        sink.flush()
    finally:
        sink.close()
    log = S3InteractionLog(bucket)
    window = (now - timedelta(minutes=1), now + timedelta(minutes=1))
    got = {(r["decision_id"], r["type"]): r for r in log.read("acme", "memory_manager", *window)}
    assert got[("d-old", "decision")] == decision
    assert got[("d-old", "feedback")] == feedback
    assert got[("d-new", "decision")] == {**decision, "decision_id": "d-new"}
    assert got[("d-new", "feedback")] == {**feedback, "decision_id": "d-new"}


@pytest.mark.parametrize("local", [False, True])
def test_a_window_reads_the_hour_partitions_it_spans_and_no_others(
    embedded_aws: None, local: bool
) -> None:
    bucket = settings().interaction_bucket
    now = datetime.now(UTC)
    hours = [now - timedelta(hours=2), now - timedelta(hours=1), now]
    for i, at in enumerate([hours[1], hours[0], hours[2]]):
        key = local_object_key(_partition(i, at), int(time.time() * 1000))
        aws.s3().put_object(Bucket=bucket, Key=key, Body=parquet_body([_record(i, at)]))
    assert len({_partition(0, at) for at in hours}) == 3
    log = S3InteractionLog(bucket, written_by_local_sink=local)
    read = log.read("acme", "memory_manager", hours[0] - timedelta(minutes=1), now)
    assert sorted(r["decision_id"] for r in read) == ["d0", "d1", "d2"]
    # a window from the start of the last hour but one does not fetch the hour before it
    fresh = S3InteractionLog(bucket, written_by_local_sink=local)
    since = hours[1].replace(minute=0, second=0, microsecond=0)
    recent = fresh.read("acme", "memory_manager", since, now)
    assert sorted(r["decision_id"] for r in recent) == ["d0", "d2"]
    assert fresh.fetches == 2


@pytest.mark.parametrize("local", [False, True])
def test_a_day_the_window_covers_whole_is_listed_at_once_with_its_hours_and_older_objects(
    embedded_aws: None, local: bool
) -> None:
    bucket = settings().interaction_bucket
    now = datetime.now(UTC)
    yesterday = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    stamps = [yesterday.replace(hour=5), yesterday.replace(hour=17)]
    for i, at in enumerate(stamps):
        key = local_object_key(_partition(i, at), int(time.time() * 1000))
        aws.s3().put_object(Bucket=bucket, Key=key, Body=parquet_body([_record(i, at)]))
    old = day_partition("acme", "memory_manager", yesterday) + "before-hours.parquet"
    aws.s3().put_object(Bucket=bucket, Key=old, Body=parquet_body([_record(2, stamps[0])]))
    log = S3InteractionLog(bucket, written_by_local_sink=local)
    listed: list[tuple[str, str | None]] = []
    original = log._list

    def spy(
        prefix: str, start_after: str | None, delimiter: str | None = None
    ) -> list[Any]:
        listed.append((prefix, delimiter))
        return original(prefix, start_after, delimiter)

    log._list = spy  # type: ignore[method-assign]
    read = log.read("acme", "memory_manager", yesterday - timedelta(hours=1), now)
    assert sorted(r["decision_id"] for r in read) == ["d0", "d1", "d2"]
    day = day_partition("acme", "memory_manager", yesterday)
    assert [entry for entry in listed if entry[0].startswith(day)] == [(day, None)]


def test_a_batch_no_column_type_fits_is_dead_lettered_not_lost(embedded_aws: None) -> None:
    bucket = settings().interaction_bucket
    sink = BatchingS3Sink(bucket, flush_seconds=3600)
    now = datetime.now(UTC)
    try:
        sink.put({**_record(1, now), "latency_ms": "not a number"})
        sink.put(_record(2, now))
        sink.flush()
    finally:
        sink.close()
    assert (sink.stats.dead_lettered, sink.stats.delivered, sink.stats.lost) == (2, 0, 0)
    assert _objects(bucket, f"{PREFIX}/") == {}
    (body,) = _objects(bucket, f"{DEAD_LETTER_PREFIX}/").values()
    assert [json.loads(line)["decision_id"] for line in body.splitlines()] == ["d1", "d2"]


def test_a_local_log_lists_again_only_from_its_last_object_less_the_clock_skew(
    embedded_aws: None,
) -> None:
    bucket = settings().interaction_bucket
    now = datetime.now(UTC)
    prefix = partition("acme", "memory_manager", now, "train")  # d1 to d4
    log = S3InteractionLog(bucket, clock_skew=timedelta(seconds=30), written_by_local_sink=True)
    window = (now - timedelta(minutes=5), now + timedelta(minutes=5))
    ms = int(now.timestamp() * 1000)

    def put(i: int, written_ms: int) -> str:
        key = local_object_key(prefix, written_ms)
        aws.s3().put_object(Bucket=bucket, Key=key, Body=parquet_body([_record(i, now)]))
        return key

    put(1, ms - 120_000)
    last = put(2, ms)
    assert sorted(r["decision_id"] for r in log.read("acme", "memory_manager", *window)) == [
        "d1", "d2"]  # fmt: skip
    put(3, ms - 10_000)  # another writer's put, named before the last one seen, landing late
    put(4, ms + 1_000)
    listed: list[str | None] = []
    original = log._list

    def spy(
        listing: str, start_after: str | None, delimiter: str | None = None
    ) -> list[Any]:
        if listing == prefix:  # not the day's own objects, nor a neighbouring hour
            listed.append(start_after)
        return original(listing, start_after, delimiter)

    log._list = spy  # type: ignore[method-assign,assignment]
    got = sorted(r["decision_id"] for r in log.read("acme", "memory_manager", *window))
    assert got == ["d1", "d2", "d3", "d4"]
    (start_after,) = listed
    assert start_after is not None and start_after[len(prefix):] == f"{ms - 30_000:013d}"
    assert start_after < last


@pytest.mark.parametrize("local", [False, True])
def test_a_read_of_the_held_out_split_fetches_its_objects_and_none_of_the_training_part(
    embedded_aws: None, local: bool
) -> None:
    """What compare reads (decision 131): a fifth of the window, and in AWS also the objects
    Firehose wrote before the split, which hold both sides."""
    bucket = settings().interaction_bucket
    now = datetime.now(UTC)
    ids = [f"d{i}" for i in range(40)]
    held = [d for d in ids if split_of(d) == "holdout"]
    assert held and len(held) < len(ids)
    for split in SPLITS:
        records = [{**_record(0, now), "decision_id": d} for d in ids if split_of(d) == split]
        where = partition("acme", "memory_manager", now, split)
        key = local_object_key(where, int(time.time() * 1000))
        aws.s3().put_object(Bucket=bucket, Key=key, Body=parquet_body(records))
    before = [{**_record(0, now), "decision_id": f"old-{d}"} for d in ids]
    if not local:  # the local stack starts empty: it never wrote an hour without splits
        hour = hour_partition("acme", "memory_manager", now)
        aws.s3().put_object(Bucket=bucket, Key=f"{hour}before-split.parquet",
                            Body=parquet_body(before[:20]))  # fmt: skip
        # what Firehose does with a line that has no split (an older writer during a deploy)
        aws.s3().put_object(Bucket=bucket, Key=f"{hour}split={UNSPLIT}/late.parquet",
                            Body=parquet_body(before[20:]))  # fmt: skip
    log = S3InteractionLog(bucket, written_by_local_sink=local)
    window = (now - timedelta(minutes=1), now + timedelta(minutes=1))
    with log.table("acme", "memory_manager", *window, frozenset({"holdout"})) as table:
        read = {row[0] for row in table.rows("SELECT decision_id FROM records")}
    assert read == set(held) | (set() if local else {r["decision_id"] for r in before})
    assert log.fetches == (1 if local else 3)
    with log.table("acme", "memory_manager", *window) as table:
        everything = {row[0] for row in table.rows("SELECT decision_id FROM records")}
    assert set(ids) <= everything

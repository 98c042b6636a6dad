"""Decision and feedback logs: JSON lines in S3, partitioned by tenant, agent and date.

In AWS a Kinesis Data Firehose stream writes them (one PutRecord per event, Firehose batches
and partitions). The local stack's equivalent batches in-process and writes the same layout
straight to S3. Either way an event that cannot be delivered after retries goes to the
dead-letter prefix, and if even that fails it is written to the error log in full: no event is
dropped silently (docs/decisions/008-interaction-logs.md).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from policyhub.adapters import aws

logger = logging.getLogger("policyhub.logs")
PREFIX = "interactions"
DEAD_LETTER_PREFIX = "dead-letter"
ATTEMPTS = 3


def partition(tenant_id: str, agent_type: str, at: datetime) -> str:
    return f"{PREFIX}/tenant={tenant_id}/agent={agent_type}/date={at:%Y-%m-%d}/"


def _line(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def local_object_key(prefix: str, written_ms: int) -> str:
    """The local sink's object names sort by the time they were written (Firehose's need not)."""
    return f"{prefix}{written_ms:013d}-{uuid.uuid4().hex[:12]}.jsonl"


def _local_keys_from(prefix: str, at: datetime) -> str:
    """Every local object written at or after `at` sorts after this (S3 `StartAfter`)."""
    return f"{prefix}{int(at.timestamp() * 1000) - 1:013d}"


@dataclass
class SinkStats:
    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    lost: int = 0
    """Delivered neither to the logs nor to the dead-letter prefix (then in the error log)."""


def _retrying(action: Callable[[], None], stats: SinkStats) -> bool:
    for attempt in range(ATTEMPTS):
        try:
            action()
            return True
        except Exception:
            if attempt < ATTEMPTS - 1:
                stats.retries += 1
                time.sleep(0.05 * 2**attempt)
    return False


class _DeadLetter:
    def __init__(self, bucket: str, stats: SinkStats) -> None:
        self._bucket, self._stats = bucket, stats

    def __call__(self, records: list[Mapping[str, Any]]) -> None:
        body = b"".join(_line(r) for r in records)
        key = f"{DEAD_LETTER_PREFIX}/{datetime.now(UTC):%Y-%m-%d}/{uuid.uuid4().hex}.jsonl"

        def write() -> None:
            aws.s3().put_object(Bucket=self._bucket, Key=key, Body=body)

        if _retrying(write, self._stats):
            self._stats.dead_lettered += len(records)
            logger.warning(
                "interaction log delivery failed; %d records dead-lettered to %s", len(records), key
            )
            return
        self._stats.lost += len(records)
        for r in records:
            logger.error("interaction record not delivered: %s", json.dumps(r))


class FirehoseSink:
    """AWS: one PutRecord per event — the rank path's one network round trip for logging."""

    def __init__(self, stream: str, bucket: str) -> None:
        self._stream = stream
        self.stats = SinkStats()
        self._dead_letter = _DeadLetter(bucket, self.stats)

    def put(self, record: Mapping[str, Any]) -> None:
        data = _line(record)

        def send() -> None:
            aws.client("firehose").put_record(
                DeliveryStreamName=self._stream, Record={"Data": data}
            )

        if _retrying(send, self.stats):
            self.stats.delivered += 1
        else:
            self._dead_letter([record])


class BatchingS3Sink:
    """Local stack: buffers events and writes one JSON-lines object per partition and flush."""

    def __init__(self, bucket: str, flush_seconds: float = 0.5, max_records: int = 2000) -> None:
        self._bucket = bucket
        self._flush_seconds = flush_seconds
        self._max_records = max_records
        self._buffer: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self.stats = SinkStats()
        self._dead_letter = _DeadLetter(bucket, self.stats)
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-flusher")
        self._thread.start()

    def put(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self._buffer.append(record)
            full = len(self._buffer) >= self._max_records
        if full:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                pending, self._buffer = self._buffer, []
            groups: dict[str, list[Mapping[str, Any]]] = {}
            for r in pending:
                at = datetime.fromisoformat(str(r["at"]).replace("Z", "+00:00"))
                groups.setdefault(partition(r["tenant_id"], r["agent_type"], at), []).append(r)
            for prefix, records in groups.items():
                key = local_object_key(prefix, time.time_ns() // 1_000_000)
                body = b"".join(_line(r) for r in records)

                def write(key: str = key, body: bytes = body) -> None:
                    aws.s3().put_object(Bucket=self._bucket, Key=key, Body=body)

                if _retrying(write, self.stats):
                    self.stats.delivered += len(records)
                else:
                    self._dead_letter(records)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()


Records = list[tuple[datetime, dict[str, Any]]]


class S3InteractionLog:
    """Reads the records of one agent between two instants (by object time, then record time).

    An object holds records stamped before it was written (Firehose buffers up to 5 minutes),
    so objects written up to `slack` after the window can hold its records; objects written
    before the window started cannot, but for clock skew between the writer and S3.

    Log objects never change once written (every key is new), so each object's records are
    parsed once and kept, up to `max_cached_bytes` of log text: the rollout controller looks
    at the same growing window again and again, and fetching and parsing it anew at every look
    held a core and widened the very latency tail it judges. A reader that needs a few fields
    names them (`fields`), and only those are kept. When the cache is full, objects the current
    read has not used are evicted (least recently used first); objects it has used are not, so
    a window larger than the cache finds its first part cached at every look instead of
    thrashing. Records are shared between reads: treat them as read-only.

    `written_by_local_sink`: object names sort by write time (`local_object_key`), so a listing
    starts at the window instead of at the start of the day, whose objects a long local session
    piles up at two a second.
    """

    def __init__(
        self,
        bucket: str,
        slack: timedelta = timedelta(minutes=10),
        max_cached_bytes: int = 64 << 20,
        clock_skew: timedelta = timedelta(minutes=1),
        written_by_local_sink: bool = False,
    ) -> None:
        self._bucket = bucket
        self._time_ordered_keys = written_by_local_sink
        self._slack = slack
        self._clock_skew = clock_skew
        self._max_cached_bytes = max_cached_bytes
        self._objects: OrderedDict[tuple[str, str, frozenset[str] | None],
                                   tuple[Records, int, int]] = OrderedDict()
        self._cached_bytes = 0
        self._reads = 0
        self._lock = threading.Lock()
        self.fetches = 0
        """Objects fetched from S3 so far (the rest came from the cache)."""

    def read(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        fields: frozenset[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The records stamped in [since, until]; with `fields`, only those keys of each."""
        with self._lock:
            self._reads += 1
            read = self._reads
        day = since.date()
        while day <= until.date():
            prefix = partition(tenant_id, agent_type, datetime(day.year, day.month, day.day))
            for key, etag in self._keys(prefix, since - self._clock_skew, until + self._slack):
                for at, record in self._records(key, etag, fields, read):
                    if since <= at <= until:
                        yield record
            day += timedelta(days=1)

    def _records(self, key: str, etag: str, fields: frozenset[str] | None, read: int) -> Records:
        entry = (key, etag, fields)
        with self._lock:
            cached = self._objects.get(entry)
            if cached is not None:
                self._objects[entry] = (cached[0], cached[1], read)
                self._objects.move_to_end(entry)
                return cached[0]
        body: bytes = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        records: Records = []
        for line in body.splitlines():
            if not line.strip():
                continue
            record: dict[str, Any] = orjson.loads(line)
            at = datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00"))
            if fields is not None:
                record = {k: record[k] for k in fields if k in record}
            records.append((at, record))
        with self._lock:
            self.fetches += 1
            self._keep(entry, records, len(body), read)
        return records

    def _keep(self, entry: tuple[str, str, frozenset[str] | None], records: Records, size: int,
              read: int) -> None:
        while self._objects and self._cached_bytes + size > self._max_cached_bytes:
            oldest, (_, evicted_size, used_by) = next(iter(self._objects.items()))
            if used_by == read:
                return  # everything left serves this read: fetch the rest without keeping it
            del self._objects[oldest]
            self._cached_bytes -= evicted_size
        if entry not in self._objects and self._cached_bytes + size <= self._max_cached_bytes:
            self._objects[entry] = (records, size, read)
            self._cached_bytes += size

    def _keys(self, prefix: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
        keys: list[tuple[datetime, str, str]] = []
        paginator = aws.s3().get_paginator("list_objects_v2")
        pages = (
            paginator.paginate(
                Bucket=self._bucket, Prefix=prefix, StartAfter=_local_keys_from(prefix, start)
            )
            if self._time_ordered_keys
            else paginator.paginate(Bucket=self._bucket, Prefix=prefix)  # as Firehose names them
        )
        for page in pages:
            for obj in page.get("Contents", []):
                modified = obj["LastModified"]
                if start <= modified <= end:
                    keys.append((modified, obj["Key"], str(obj.get("ETag", ""))))
        return [(k, etag) for _, k, etag in sorted(keys)]

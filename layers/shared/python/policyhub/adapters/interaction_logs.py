"""Decision and feedback logs: Parquet in S3, partitioned by tenant, agent and date.

In AWS a Kinesis Data Firehose stream writes them (one PutRecord per event; Firehose batches,
partitions and converts to Parquet with the Glue table of `interaction_columns.COLUMNS`). The
local stack's equivalent batches in-process and writes the same layout and columns straight to
S3. Objects written before the change are JSON lines and stay readable (`log_table`). Either
way an event that cannot be delivered after retries goes to the dead-letter prefix (as JSON
lines), and if even that fails it is written to the error log in full: no event is dropped
silently (docs/decisions/008-interaction-logs.md).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policyhub.adapters import aws
from policyhub.adapters.log_table import (
    PARQUET_MAGIC,
    LogFile,
    LogTable,
    concatenate_parquet,
    jsonl_to_parquet,
    records_to_parquet,
    stamps,
)
from policyhub.domain.interaction_records import DECISION_FIELDS, FEEDBACK_FIELDS

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
    return f"{prefix}{written_ms:013d}-{uuid.uuid4().hex[:12]}.parquet"


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


def parquet_body(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Records as one Parquet (zstd) object of COLUMNS."""
    with tempfile.TemporaryDirectory(prefix="policyhub-sink-") as folder:
        path = str(Path(folder) / "batch.parquet")
        records_to_parquet(records, path)
        return Path(path).read_bytes()


class BatchingS3Sink:
    """Local stack: buffers events and writes one Parquet object per partition and flush.

    A batch that cannot be converted (a record no column type fits) is dead-lettered as JSON
    lines like one that cannot be written: nothing is dropped silently."""

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
                try:
                    body = parquet_body(records)
                except Exception:
                    logger.exception("interaction records could not be written as Parquet")
                    self._dead_letter(records)
                    continue

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


@dataclass
class _Segment:
    """A local Parquet file holding the records of one or more objects, in object order."""

    file: LogFile
    size: int
    last_read: int
    users: int = 0
    kept: bool = True


class S3InteractionLog:
    """Reads the records of one agent between two instants, as a `LogTable` (SQL) or as dicts.

    An object holds records stamped before it was written (Firehose buffers up to 5 minutes),
    so objects written up to `slack` after the window can hold its records; objects written
    before the window started cannot, but for clock skew between the writer and S3.

    The window's objects are fetched concurrently (boto3) to local files that DuckDB reads; a
    JSON-lines object becomes Parquet with the same columns on the way (decision 113). The
    small objects one read fetches are merged, in order, into segments of up to
    `segment_bytes` (an object of an eighth of that or more stays as it is): the
    local sink writes an object per second, and DuckDB's cost per file dominates a look at
    thousands of them. Objects never change once written (every key is new), so segments are
    kept between reads, up to `max_cached_bytes` of local disk: the rollout controller looks at
    the same growing window again and again. When the cache is full, segments no open read uses
    are evicted (least recently used first); segments the current read uses are not, so a
    window larger than the cache finds its first part cached at every look instead of
    thrashing. A segment may hold records outside a later window: the table filters by `at`.

    `written_by_local_sink`: object names sort by write time (`local_object_key`), so a listing
    starts at the window instead of at the start of the day, whose objects a long local session
    piles up at two a second.
    """

    def __init__(
        self,
        bucket: str,
        slack: timedelta = timedelta(minutes=10),
        max_cached_bytes: int = 256 << 20,
        clock_skew: timedelta = timedelta(minutes=1),
        written_by_local_sink: bool = False,
        fetch_workers: int = 16,
        segment_bytes: int = 64 << 20,
    ) -> None:
        self._bucket = bucket
        self._time_ordered_keys = written_by_local_sink
        self._slack = slack
        self._clock_skew = clock_skew
        self._max_cached_bytes = max_cached_bytes
        self._segment_bytes = min(segment_bytes, max(1, max_cached_bytes // 4))
        self._fetch_workers = fetch_workers
        self._folder = tempfile.mkdtemp(prefix="policyhub-logs-")
        self._segments: OrderedDict[str, _Segment] = OrderedDict()
        """By segment file path, least recently used first."""
        self._segment_of: dict[tuple[str, str], _Segment] = {}
        self._listings: dict[str, tuple[str, dict[str, tuple[str, datetime]]]] = {}
        """Per prefix (time-ordered names only): listed from which name, and what was found."""
        self._cached_bytes = 0
        self._reads = 0
        self._lock = threading.Lock()
        self.fetches = 0
        """Objects fetched from S3 so far (the rest came from the cache)."""
        weakref.finalize(self, shutil.rmtree, self._folder, True)

    def table(self, tenant_id: str, agent_type: str, since: datetime, until: datetime) -> LogTable:
        """The records stamped in [since, until] as the view `records`; close it when done."""
        with self._lock:
            self._reads += 1
            read = self._reads
        keys: list[tuple[str, str]] = []
        day = since.date()
        while day <= until.date():
            prefix = partition(tenant_id, agent_type, datetime(day.year, day.month, day.day))
            keys += self._keys(prefix, since - self._clock_skew, until + self._slack)
            day += timedelta(days=1)
        segments = self._fetch(keys, read)
        return LogTable(
            [e.file for e in segments], since, until, on_close=lambda: self._release(segments)
        )

    def _fetch(self, keys: list[tuple[str, str]], read: int) -> list[_Segment]:
        """The segments holding `keys`' records (each once, in key order), fetching the rest."""
        used: dict[str, _Segment] = {}
        missing: list[tuple[str, str]] = []
        with self._lock:
            for entry in keys:
                segment = self._segment_of.get(entry)
                evicted = segment is not None and (
                    segment.file.path not in self._segments and not segment.users
                )
                if segment is None or evicted:
                    missing.append(entry)
                elif segment.file.path not in used:
                    segment.last_read, segment.users = read, segment.users + 1
                    if segment.file.path in self._segments:
                        self._segments.move_to_end(segment.file.path)
                    used[segment.file.path] = segment
        if missing:
            with ThreadPoolExecutor(min(self._fetch_workers, len(missing))) as pool:
                paths = list(pool.map(self._download, missing))
            for group in self._groups(missing, paths):
                segment = self._merge([path for _, path in group], read)
                with self._lock:
                    self.fetches += len(group)
                    for entry, _ in group:
                        self._segment_of[entry] = segment
                used[segment.file.path] = segment
        ordered: dict[str, _Segment] = {}
        for entry in keys:
            path = self._segment_of[entry].file.path
            if path in used:
                ordered.setdefault(path, used[path])
        return [*ordered.values(), *(s for p, s in used.items() if p not in ordered)]

    def _groups(
        self, entries: list[tuple[str, str]], paths: list[str]
    ) -> list[list[tuple[tuple[str, str], str]]]:
        groups: list[list[tuple[tuple[str, str], str]]] = []
        size = self._segment_bytes
        for entry, path in zip(entries, paths, strict=True):
            length = os.path.getsize(path)
            if length >= self._segment_bytes // 8:  # large enough to read as it is
                groups.append([(entry, path)])
                size = self._segment_bytes
                continue
            if size + length > self._segment_bytes:
                groups.append([])
                size = 0
            groups[-1].append((entry, path))
            size += length
        return groups

    def _merge(self, paths: list[str], read: int) -> _Segment:
        if len(paths) == 1:
            path = paths[0]
        else:
            path = str(Path(self._folder) / f"{uuid.uuid4().hex}.parquet")
            concatenate_parquet(paths, path)
            for part in paths:
                os.unlink(part)
        segment = _Segment(LogFile(path, *stamps(path)), os.path.getsize(path), read, users=1)
        with self._lock:
            self._keep(segment, read)
        return segment

    def _download(self, entry: tuple[str, str]) -> str:
        key = entry[0]
        name = uuid.uuid4().hex
        path = str(Path(self._folder) / f"{name}.parquet")
        body: bytes = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        if body[:4] == PARQUET_MAGIC:
            Path(path).write_bytes(body)
        else:  # JSON lines, as the local sink and Firehose wrote them before Parquet
            source = str(Path(self._folder) / f"{name}.jsonl")
            Path(source).write_bytes(body)
            try:
                jsonl_to_parquet(source, path)
            finally:
                os.unlink(source)
        return path

    def _keep(self, segment: _Segment, read: int) -> None:
        for path, old in list(self._segments.items()):
            if self._cached_bytes + segment.size <= self._max_cached_bytes:
                break
            if old.users or old.last_read == read:
                continue
            del self._segments[path]
            self._cached_bytes -= old.size
            os.unlink(path)
        if self._cached_bytes + segment.size <= self._max_cached_bytes:
            self._segments[segment.file.path] = segment
            self._cached_bytes += segment.size
        else:
            segment.kept = False  # serves this read only

    def _release(self, segments: list[_Segment]) -> None:
        with self._lock:
            for e in segments:
                e.users -= 1
                if not e.kept and e.users == 0 and os.path.exists(e.file.path):
                    os.unlink(e.file.path)

    def read(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        fields: frozenset[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The records stamped in [since, until], each with its record type's fields (or only
        `fields` of them), in the order they were written."""
        with self.table(tenant_id, agent_type, since, until) as t:
            rows = t.dicts("SELECT * EXCLUDE (ord) FROM records ORDER BY ord")
        for row in rows:
            kind = FEEDBACK_FIELDS if row.get("type") == "feedback" else DECISION_FIELDS
            wanted = kind if fields is None else kind & fields
            yield {k: v for k, v in row.items() if k in wanted}

    def _keys(self, prefix: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
        """The prefix's objects last modified in [start, end], oldest first (key, etag)."""
        if self._time_ordered_keys:
            listed = self._listed_since(prefix, _local_keys_from(prefix, start))
        else:  # as Firehose names them: every object of the day
            listed = self._list(prefix, None)
        found = sorted((modified, key, etag) for key, etag, modified in listed
                       if start <= modified <= end)  # fmt: skip
        return [(key, etag) for _, key, etag in found]

    def _list(self, prefix: str, start_after: str | None) -> list[tuple[str, str, datetime]]:
        paginator = aws.s3().get_paginator("list_objects_v2")
        pages = (
            paginator.paginate(Bucket=self._bucket, Prefix=prefix, StartAfter=start_after)
            if start_after is not None
            else paginator.paginate(Bucket=self._bucket, Prefix=prefix)
        )
        return [(obj["Key"], str(obj.get("ETag", "")), obj["LastModified"])
                for page in pages for obj in page.get("Contents", [])]  # fmt: skip

    def _listed_since(self, prefix: str, start_after: str) -> list[tuple[str, str, datetime]]:
        """The local sink's objects named after `start_after`, listing only what is new.

        Names sort by write time, so after one listing only names from the last one seen
        (less the clock skew between writers, whose puts may land out of order) are listed
        again: a look at an hour of a busy local stack lists a minute of objects, not 3,600."""
        with self._lock:
            listed_from, known = self._listings.get(prefix, (None, {}))
        if listed_from is None or start_after < listed_from:
            listed_from, known, resume = start_after, {}, start_after
        else:
            last = max(known, default=listed_from)
            written_ms = int(last[len(prefix) : len(prefix) + 13] or 0)
            skew_ms = int(self._clock_skew.total_seconds() * 1000)
            resume = max(listed_from, f"{prefix}{max(written_ms - skew_ms, 0):013d}")
        fresh = dict(known)
        for key, etag, modified in self._list(prefix, resume):
            fresh[key] = (etag, modified)
        # forget what no window from `start_after` on can need
        fresh = {k: v for k, v in fresh.items() if k > start_after}
        with self._lock:
            self._listings[prefix] = (start_after, fresh)
        return [(key, etag, modified) for key, (etag, modified) in fresh.items()]

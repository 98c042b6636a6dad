"""The interaction logs' one reader: the window's objects, Parquet and old JSON lines alike, as
a DuckDB table (decision 113). Only the analysis functions import it (decision 117).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import (
    day_partition,
    hour_partition,
    local_keys_from,
    partition,
    split_key,
)
from policyhub.adapters.log_table import (
    PARQUET_MAGIC,
    LogFile,
    LogTable,
    concatenate_parquet,
    jsonl_to_parquet,
    stamps,
)
from policyhub.domain.errors import LogWindowTooLargeError
from policyhub.domain.holdout import BOTH_SPLITS, Split
from policyhub.domain.interaction_records import DECISION_FIELDS, FEEDBACK_FIELDS

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestPaginateTypeDef


class _Object(NamedTuple):
    """An object of a listing."""

    key: str
    etag: str
    modified: datetime
    size: int


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
        self._listings: dict[str, tuple[str, dict[str, _Object]]] = {}
        """Per prefix (time-ordered names only): listed from which name, and what was found."""
        self._cached_bytes = 0
        self._reads = 0
        self._lock = threading.Lock()
        self.fetches = 0
        """Objects fetched from S3 so far (the rest came from the cache)."""
        weakref.finalize(self, shutil.rmtree, self._folder, True)

    def table(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        splits: frozenset[Split] = BOTH_SPLITS,
    ) -> LogTable:
        """The records stamped in [since, until] as the view `records`; close it when done.
        With fewer `splits`, the objects of the others are not fetched: the table holds every
        record of those splits and may hold others (objects written before the logs were
        split hold both), so a reader still selects its side in SQL."""
        with self._lock:
            self._reads += 1
            read = self._reads
        objects = self._window_objects(tenant_id, agent_type, since, until, splits)
        segments = self._fetch(objects, read)
        return LogTable(
            [e.file for e in segments], since, until, on_close=lambda: self._release(segments)
        )

    def _window_objects(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        splits: frozenset[Split],
    ) -> list[_Object]:
        """The objects that can hold records of `splits` stamped in [since, until], in the
        order they were written: a day the window covers whole is listed at once; of a day it
        covers in part, the hours it spans and the day's own objects from before hour
        partitions (decision 129). Objects from before the split (131) hold both splits."""
        start, end = since - self._clock_skew, until + self._slack
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        found: list[_Object] = []
        day = since.replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= until:
            prefix = day_partition(tenant_id, agent_type, day)
            next_day = day + timedelta(days=1)
            if since <= day and next_day <= until:
                found += self._list(prefix, None)
            else:
                found += self._list(prefix, None, delimiter="/")
                hour = max(day, since).replace(minute=0, second=0, microsecond=0)
                while hour <= until and hour < next_day:
                    found += self._hour(tenant_id, agent_type, hour, start, splits)
                    hour += timedelta(hours=1)
            day = next_day
        sides = {*splits, None}  # None: an object that can hold either side
        wanted = [o for o in found if start <= o.modified <= end and split_key(o.key) in sides]
        return sorted(wanted, key=lambda o: (o.modified, o.key))  # fmt: skip

    def _fetch(self, objects: list[_Object], read: int) -> list[_Segment]:
        """The segments holding the objects' records (each once, in order), fetching the rest.

        Raises LogWindowTooLargeError, before fetching anything, when the objects to fetch
        need more local disk than is free (in AWS: the function's ephemeral storage)."""
        used: dict[str, _Segment] = {}
        missing: list[tuple[str, str]] = []
        missing_bytes = 0
        with self._lock:
            for o in objects:
                entry = (o.key, o.etag)
                segment = self._segment_of.get(entry)
                evicted = segment is not None and (
                    segment.file.path not in self._segments and not segment.users
                )
                if segment is None or evicted:
                    missing.append(entry)
                    missing_bytes += o.size
                elif segment.file.path not in used:
                    segment.last_read, segment.users = read, segment.users + 1
                    if segment.file.path in self._segments:
                        self._segments.move_to_end(segment.file.path)
                    used[segment.file.path] = segment
        if missing:
            # merging small objects writes a segment before its parts go
            free = shutil.disk_usage(self._folder).free
            if missing_bytes + self._segment_bytes > free:
                self._release(list(used.values()))
                raise LogWindowTooLargeError(missing_bytes, free)
            with ThreadPoolExecutor(min(self._fetch_workers, len(missing))) as pool:
                files = list(pool.map(self._download, missing))
            for group in self._groups(missing, files):
                segment = self._merge([file for _, file in group], read)
                with self._lock:
                    self.fetches += len(group)
                    for entry, _ in group:
                        self._segment_of[entry] = segment
                used[segment.file.path] = segment
        ordered: dict[str, _Segment] = {}
        for o in objects:
            path = self._segment_of[(o.key, o.etag)].file.path
            if path in used:
                ordered.setdefault(path, used[path])
        return [*ordered.values(), *(s for p, s in used.items() if p not in ordered)]

    def _groups(
        self, entries: list[tuple[str, str]], files: list[LogFile]
    ) -> list[list[tuple[tuple[str, str], LogFile]]]:
        groups: list[list[tuple[tuple[str, str], LogFile]]] = []
        size = self._segment_bytes
        for entry, file in zip(entries, files, strict=True):
            length = os.path.getsize(file.path)
            if length >= self._segment_bytes // 8:  # large enough to read as it is
                groups.append([(entry, file)])
                size = self._segment_bytes
                continue
            if size + length > self._segment_bytes:
                groups.append([])
                size = 0
            groups[-1].append((entry, file))
            size += length
        return groups

    def _merge(self, files: list[LogFile], read: int) -> _Segment:
        if len(files) == 1:
            file = files[0]
        else:
            path = str(Path(self._folder) / f"{uuid.uuid4().hex}.parquet")
            concatenate_parquet([f.path for f in files], path)
            for part in files:
                os.unlink(part.path)
            firsts = [f.first_at for f in files if f.first_at is not None]
            lasts = [f.last_at for f in files if f.last_at is not None]
            file = LogFile(path, min(firsts, default=None), max(lasts, default=None))
        segment = _Segment(file, os.path.getsize(file.path), read, users=1)
        with self._lock:
            self._keep(segment, read)
        return segment

    def _download(self, entry: tuple[str, str]) -> LogFile:
        """The object as a local Parquet file, with its stamps (on the fetching threads: 20 ms
        an object, 4 s of a 10M-decision window's 200 objects when done one after another)."""
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
        return LogFile(path, *stamps(path))

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

    def _hour(
        self,
        tenant_id: str,
        agent_type: str,
        hour: datetime,
        start: datetime,
        splits: frozenset[Split],
    ) -> list[_Object]:
        """The objects of an hour's partition that can hold `splits` (from `start` on, where
        names sort by time: the local stack's, which starts empty and never wrote an hour
        without splits)."""
        if self._time_ordered_keys:
            found: list[_Object] = []
            for split in sorted(splits):
                prefix = partition(tenant_id, agent_type, hour, split)
                found += self._listed_since(prefix, local_keys_from(prefix, start))
            return found
        # as Firehose names them: every object of the hour, of either split or none
        return self._list(hour_partition(tenant_id, agent_type, hour), None)

    def _list(
        self, prefix: str, start_after: str | None, delimiter: str | None = None
    ) -> list[_Object]:
        paginator = aws.s3().get_paginator("list_objects_v2")
        options: ListObjectsV2RequestPaginateTypeDef = {"Bucket": self._bucket, "Prefix": prefix}
        if start_after is not None:
            options["StartAfter"] = start_after
        if delimiter is not None:
            options["Delimiter"] = delimiter
        return [_Object(obj["Key"], str(obj.get("ETag", "")), obj["LastModified"],
                        obj.get("Size", 0))
                for page in paginator.paginate(**options)
                for obj in page.get("Contents", [])]  # fmt: skip

    def _listed_since(self, prefix: str, start_after: str) -> list[_Object]:
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
        for o in self._list(prefix, resume):
            fresh[o.key] = o
        # forget what no window from `start_after` on can need
        fresh = {k: v for k, v in fresh.items() if k > start_after}
        with self._lock:
            self._listings[prefix] = (start_after, fresh)
        return list(fresh.values())

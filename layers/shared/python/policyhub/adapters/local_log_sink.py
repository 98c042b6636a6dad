"""The local stack's log sink: batches records in-process and writes one Parquet object of
`interaction_columns.COLUMNS` per partition and flush, in the layout Firehose writes in AWS
(`interaction_logs`; decision 114). DuckDB writes the Parquet, so only the local stack and the
analysis functions import it: rank and feedback in AWS put to Firehose (`FirehoseSink`).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import (
    DeadLetter,
    SinkStats,
    local_object_key,
    logger,
    partition,
    retrying,
)
from policyhub.adapters.log_table import records_to_parquet
from policyhub.domain.holdout import split_of


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
        self._dead_letter = DeadLetter(bucket, self.stats)
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
                where = partition(r["tenant_id"], r["agent_type"], at, split_of(r["decision_id"]))
                groups.setdefault(where, []).append(r)
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

                if retrying(write, self.stats):
                    self.stats.delivered += len(records)
                else:
                    self._dead_letter(records)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()

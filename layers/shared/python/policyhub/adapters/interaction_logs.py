"""Decision and feedback logs: Parquet in S3, partitioned by tenant, agent, date, hour and the
decision's side of the held-out split (`domain.holdout`).

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
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from policyhub.adapters import aws
from policyhub.domain.holdout import SPLITS, Split, split_of

logger = logging.getLogger("policyhub.logs")
PREFIX = "interactions"
DEAD_LETTER_PREFIX = "dead-letter"
UNSPLIT = "unsplit"
"""The split folder of records whose side is not known (Firehose puts a line without `split`
there): read as holding both sides, like the objects from before the split."""
ATTEMPTS = 3


def day_partition(tenant_id: str, agent_type: str, at: datetime) -> str:
    """The day's prefix: its hours below it, and beside them the objects written before the
    logs had hour partitions (decision 129)."""
    return f"{PREFIX}/tenant={tenant_id}/agent={agent_type}/date={at:%Y-%m-%d}/"


def hour_partition(tenant_id: str, agent_type: str, at: datetime) -> str:
    """The hour's prefix: its two splits below it, and beside them the objects written before
    the logs were split (decision 131)."""
    return f"{day_partition(tenant_id, agent_type, at)}hour={at:%H}/"


def partition(tenant_id: str, agent_type: str, at: datetime, split: Split) -> str:
    """Where the records stamped `at` (UTC) of decisions on the `split` side are written."""
    return f"{hour_partition(tenant_id, agent_type, at)}split={split}/"


def split_key(key: str) -> Split | None:
    """The split of the object `key`; None for an object that can hold either side: written
    before the logs were split, or in `UNSPLIT`."""
    below_hour = key.rpartition("/hour=")[2].split("/")  # [HH, split=S, name] or [HH, name]
    if len(below_hour) == 3:
        for split in SPLITS:
            if below_hour[1] == f"split={split}":
                return split
    return None


def _line(record: Mapping[str, Any]) -> bytes:
    # orjson: ~60 µs for a 100-candidate decision where json.dumps took ~590 µs of rank's time
    # in AWS (the benchmark's in-memory sink does not serialize); UTF-8 as is, which JSON allows.
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def local_object_key(prefix: str, written_ms: int) -> str:
    """The local sink's object names sort by the time they were written (Firehose's need not)."""
    return f"{prefix}{written_ms:013d}-{uuid.uuid4().hex[:12]}.parquet"


def local_keys_from(prefix: str, at: datetime) -> str:
    """Every local object written at or after `at` sorts after this (S3 `StartAfter`)."""
    return f"{prefix}{int(at.timestamp() * 1000) - 1:013d}"


@dataclass
class SinkStats:
    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    lost: int = 0
    """Delivered neither to the logs nor to the dead-letter prefix (then in the error log)."""


def retrying(action: Callable[[], None], stats: SinkStats) -> bool:
    for attempt in range(ATTEMPTS):
        try:
            action()
            return True
        except Exception:
            if attempt < ATTEMPTS - 1:
                stats.retries += 1
                time.sleep(0.05 * 2**attempt)
    return False


class DeadLetter:
    def __init__(self, bucket: str, stats: SinkStats) -> None:
        self._bucket, self._stats = bucket, stats

    def __call__(self, records: list[Mapping[str, Any]]) -> None:
        body = b"".join(_line(r) for r in records)
        key = f"{DEAD_LETTER_PREFIX}/{datetime.now(UTC):%Y-%m-%d}/{uuid.uuid4().hex}.jsonl"

        def write() -> None:
            aws.s3().put_object(Bucket=self._bucket, Key=key, Body=body)

        if retrying(write, self._stats):
            self._stats.dead_lettered += len(records)
            logger.warning(
                "interaction log delivery failed; %d records dead-lettered to %s", len(records), key
            )
            return
        self._stats.lost += len(records)
        for r in records:
            logger.error("interaction record not delivered: %s", json.dumps(r))


class FirehoseSink:
    """AWS: one PutRecord per event — the rank path's one network round trip for logging.

    The line carries the decision's `split` besides the record's fields: Firehose's partition
    query reads it for the prefix, and the Parquet conversion drops it (only the Glue table's
    columns are written), as the local sink's files lack it."""

    def __init__(self, stream: str, bucket: str) -> None:
        self._stream = stream
        self.stats = SinkStats()
        self._dead_letter = DeadLetter(bucket, self.stats)

    def put(self, record: Mapping[str, Any]) -> None:
        data = _line({**record, "split": split_of(record["decision_id"])})

        def send() -> None:
            aws.client("firehose").put_record(
                DeliveryStreamName=self._stream, Record={"Data": data}
            )

        if retrying(send, self.stats):
            self.stats.delivered += 1
        else:
            self._dead_letter([record])

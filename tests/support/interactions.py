"""Reading back what the serving path logged."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from policyhub.adapters.interaction_log_reader import S3InteractionLog
from policyhub.adapters.log_table import PARQUET_MAGIC, LogTable
from policyhub.api import container
from policyhub.domain.interaction_columns import COLUMNS
from policyhub.settings import settings


def logged(tenant: str, agent: str = "memory_manager") -> list[dict[str, Any]]:
    sink = container.log_sink()
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()
    now = datetime.now(UTC)
    log = S3InteractionLog(settings().interaction_bucket)
    return list(log.read(tenant, agent, now - timedelta(hours=1), now + timedelta(minutes=1)))


def object_records(body: bytes) -> list[dict[str, Any]]:
    """The records of one log object (Parquet) or dead-letter object (JSON lines), every column."""
    if body[:4] != PARQUET_MAGIC:
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "object.parquet")
        Path(path).write_bytes(body)
        with LogTable([path]) as table:
            columns = ", ".join(f'"{c}"' for c in COLUMNS)
            return table.dicts(f"SELECT {columns} FROM records ORDER BY ord")

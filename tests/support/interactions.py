"""Reading back what the serving path logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policyhub.adapters.interaction_log_reader import S3InteractionLog
from policyhub.api import container
from policyhub.settings import settings


def logged(tenant: str, agent: str = "memory_manager") -> list[dict[str, Any]]:
    sink = container.log_sink()
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()
    now = datetime.now(UTC)
    log = S3InteractionLog(settings().interaction_bucket)
    return list(log.read(tenant, agent, now - timedelta(hours=1), now + timedelta(minutes=1)))

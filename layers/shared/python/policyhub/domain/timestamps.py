"""The one text form of an instant in logs and registry keys."""

from __future__ import annotations

from datetime import datetime


def utc_iso(at: datetime) -> str:
    """`2026-01-02T03:04:05.000006Z` for a UTC time (isoformat: a fifth of strftime's cost,
    which matters on the rank path that stamps every decision)."""
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

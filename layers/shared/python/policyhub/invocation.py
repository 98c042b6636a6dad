"""The Lambda context of the invocation being handled (Powertools Idempotency needs it)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

lambda_context: ContextVar[Any | None] = ContextVar("lambda_context", default=None)

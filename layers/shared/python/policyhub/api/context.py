"""The caller of the request being handled (set by the Lambda entry point)."""

from __future__ import annotations

from contextvars import ContextVar

from policyhub.domain.access import Principal
from policyhub.domain.errors import PolicyHubError

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)


def set_principal(principal: Principal | None) -> None:
    _principal.set(principal)


def principal() -> Principal:
    p = _principal.get()
    if p is None:
        raise PolicyHubError("unauthorized", "an API key is required")
    return p

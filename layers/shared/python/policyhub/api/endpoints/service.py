"""Unauthenticated service endpoints."""

from __future__ import annotations

from typing import Any

from policyhub.api.models import HealthResponse


def health() -> HealthResponse:
    return HealthResponse(status="ok", version="1")


def openapi() -> dict[str, Any]:
    from policyhub.api.resolver import openapi_document

    return openapi_document()

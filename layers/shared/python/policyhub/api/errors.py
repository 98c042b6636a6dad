"""API.md's error envelope, for every error the API answers with."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from policyhub.domain.errors import ErrorDetail, PolicyHubError

JSON = "application/json"


def envelope(
    code: str, message: str, request_id: str, details: Iterable[ErrorDetail] = ()
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "request_id": request_id,
            "details": [{"field": d.field, "issue": d.issue} for d in details],
        }
    }


def proxy_error(
    err: PolicyHubError, request_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway proxy response carrying the envelope (used outside the resolver)."""
    return {
        "statusCode": err.status,
        "headers": {"Content-Type": JSON, "x-request-id": request_id, **(headers or {})},
        "body": json.dumps(envelope(err.code, err.message, request_id, err.details)),
        "isBase64Encoded": False,
    }


def _field(loc: Sequence[Any]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def from_validation_errors(errors: Sequence[dict[str, Any]]) -> PolicyHubError:
    """Powertools/pydantic validation errors → 400 for malformed JSON, else 422 with fields."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return PolicyHubError(
            "malformed_json",
            "the request body is not valid JSON",
            [ErrorDetail("body", "not valid JSON")],
        )
    details = [
        ErrorDetail(_field(e.get("loc", ())), str(e.get("msg") or e.get("type") or "invalid value"))
        for e in errors
    ]
    summary = "; ".join(f"{d.field}: {d.issue}" for d in details[:3]) or "invalid request"
    return PolicyHubError(
        "validation_error", f"request does not match the schema ({summary})", details
    )

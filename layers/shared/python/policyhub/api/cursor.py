"""Opaque, tamper-proof, tenant-bound pagination cursors (HMAC-SHA256 over the page key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from functools import cache
from typing import Any

from policyhub.domain.errors import PolicyHubError
from policyhub.ports import PageKey
from policyhub.settings import settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def _secret() -> bytes:
    s = settings()
    if s.cursor_secret:
        return s.cursor_secret.encode()
    if s.cursor_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(s.cursor_secret_arn, max_age=3600)).encode()
    # No configured secret (a single-process tool): cursors are valid for this process only.
    return secrets.token_bytes(32)


def _sign(payload: bytes) -> str:
    return _b64(hmac.new(_secret(), payload, hashlib.sha256).digest()[:20])


def encode_cursor(kind: str, tenant_id: str, scope: dict[str, Any], key: PageKey) -> str:
    payload = json.dumps(
        {"k": kind, "t": tenant_id, "s": scope, "p": key}, separators=(",", ":"), sort_keys=True
    ).encode()
    return f"{_b64(payload)}.{_sign(payload)}"


def decode_cursor(cursor: str, kind: str, tenant_id: str, scope: dict[str, Any]) -> PageKey:
    """The page key inside `cursor`, if it was made by us, for this tenant and this listing."""
    bad = PolicyHubError(
        "invalid_cursor", "cursor is not valid for this listing; start again without a cursor"
    )
    try:
        body, _, sig = cursor.partition(".")
        payload = _unb64(body)
        if not hmac.compare_digest(_sign(payload), sig):
            raise bad
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad from exc
    if data.get("k") != kind or data.get("t") != tenant_id or data.get("s") != scope:
        raise bad
    key = data.get("p")
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise bad
    return key

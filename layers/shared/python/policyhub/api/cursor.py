"""Opaque, tamper-proof, tenant-bound pagination cursors (HMAC-SHA256 over the page key)."""

from __future__ import annotations

import json
from typing import Any

from policyhub.domain.errors import PolicyHubError
from policyhub.ports import PageKey
from policyhub.signing import b64, sign, unb64, verify


def encode_cursor(kind: str, tenant_id: str, scope: dict[str, Any], key: PageKey) -> str:
    payload = json.dumps(
        {"k": kind, "t": tenant_id, "s": scope, "p": key}, separators=(",", ":"), sort_keys=True
    ).encode()
    return f"{b64(payload)}.{sign('cursor', payload)}"


def decode_cursor(cursor: str, kind: str, tenant_id: str, scope: dict[str, Any]) -> PageKey:
    """The page key inside `cursor`, if it was made by us, for this tenant and this listing."""
    bad = PolicyHubError(
        "invalid_cursor", "cursor is not valid for this listing; start again without a cursor"
    )
    try:
        body, _, sig = cursor.partition(".")
        payload = unb64(body)
        if not verify("cursor", payload, sig):
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

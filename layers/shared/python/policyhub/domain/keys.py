"""API keys: `ph_live_<id>_<secret>`; only a hash of the secret is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from pydantic import BaseModel

from policyhub.domain.access import Role, Tier

KEY_PREFIX = "ph_live_"
_KEY_RE = re.compile(r"^ph_live_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class ApiKey(BaseModel):
    key_id: str
    tenant_id: str
    tier: Tier
    role: Role
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key_material() -> tuple[str, str, str]:
    """A fresh (key_id, secret, plaintext key)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key(token: str) -> tuple[str, str] | None:
    m = _KEY_RE.match(token)
    return (m[1], m[2]) if m else None

"""Keys for the HMACs that make cursors and decision ids tamper-proof."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from policyhub.settings import settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def _master() -> bytes:
    s = settings()
    if s.cursor_secret:
        return s.cursor_secret.encode()
    if s.cursor_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(s.cursor_secret_arn, max_age=3600)).encode()
    # No configured secret (a single-process tool): signatures are valid in this process only.
    return secrets.token_bytes(32)


@cache
def _key(purpose: str) -> bytes:
    return hmac.new(_master(), purpose.encode(), hashlib.sha256).digest()


def sign(purpose: str, payload: bytes, length: int = 20) -> str:
    """A MAC of `payload` under a key derived for `purpose` (cursors never verify as ids)."""
    return b64(hmac.new(_key(purpose), payload, hashlib.sha256).digest()[:length])


def verify(purpose: str, payload: bytes, signature: str, length: int = 20) -> bool:
    # compare_digest refuses non-ASCII str (TypeError); such a signature is simply not ours.
    expected = sign(purpose, payload, length).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def reset() -> None:
    _master.cache_clear()
    _key.cache_clear()

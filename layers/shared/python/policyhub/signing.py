"""Keys for the HMACs that make cursors and decision ids tamper-proof.

Every instance of a function must sign with the same master secret, or a cursor or decision id
signed by one would not verify in another: in aws it is the Secrets Manager secret of
`POLICYHUB_CURSOR_SECRET_ARN` (settings refuse to start without it where signing is needed);
locally `POLICYHUB_CURSOR_SECRET`, or, for a single-process tool without one, a random key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from policyhub.settings import Need, Settings, settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def master_secret(s: Settings) -> bytes:
    """The master secret `s` configures (in aws: never a random one)."""
    if s.cursor_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(s.cursor_secret_arn, max_age=3600)).encode()
    if s.cursor_secret:
        return s.cursor_secret.encode()
    s.require(Need.SIGNING)  # aws: a ConfigurationError naming the variable
    # Local, no configured secret (a single-process tool): valid in this process only.
    return secrets.token_bytes(32)


class Signer:
    """MACs under keys derived from one master secret, one key per purpose (cursors never
    verify as decision ids)."""

    def __init__(self, master: bytes) -> None:
        self._master = master
        self._keys: dict[str, bytes] = {}

    def _key(self, purpose: str) -> bytes:
        key = self._keys.get(purpose)
        if key is None:
            key = self._keys[purpose] = hmac.new(
                self._master, purpose.encode(), hashlib.sha256
            ).digest()
        return key

    def sign(self, purpose: str, payload: bytes, length: int = 20) -> str:
        return b64(hmac.digest(self._key(purpose), payload, "sha256")[:length])

    def verify(self, purpose: str, payload: bytes, signature: str, length: int = 20) -> bool:
        # compare_digest refuses non-ASCII str (TypeError); such a signature is simply not ours.
        expected = self.sign(purpose, payload, length).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


@cache
def signer() -> Signer:
    """This process's signer, from the settings."""
    return Signer(master_secret(settings()))


def sign(purpose: str, payload: bytes, length: int = 20) -> str:
    """A MAC of `payload` under a key derived for `purpose` (cursors never verify as ids)."""
    return signer().sign(purpose, payload, length)


def verify(purpose: str, payload: bytes, signature: str, length: int = 20) -> bool:
    return signer().verify(purpose, payload, signature, length)


def reset() -> None:
    signer.cache_clear()

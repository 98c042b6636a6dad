"""Fault injection at the botocore boundary: an AWS call answers with an error of our choosing.

A `before-call` hook short-circuits the call before it is sent, so the SDK's own retries are
bypassed: the fault models an error that is still there after the SDK's retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from policyhub.adapters import aws
from tests.reliability import tally

Predicate = Callable[[dict[str, Any]], bool]


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""


@dataclass
class Fault:
    service: str
    operation: str
    """botocore's operation name, e.g. `TransactWriteItems`, `PutObject`."""
    code: str
    status: int = 400
    times: int | None = None
    """Fail this many calls, then let calls through; None fails every call."""
    when: Predicate = field(default=lambda request: True)
    """Fail only calls whose botocore request dict matches (url_path, body...)."""
    reasons: list[str] | None = None
    """CancellationReasons codes for TransactionCanceledException."""
    hits: int = 0

    def _should_fail(self, request: dict[str, Any]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if not self.when(request):
            return False
        self.hits += 1
        tally.count("faults")
        return True

    def before_call(self, params: dict[str, Any], **_: Any) -> tuple[_Http, dict[str, Any]] | None:
        if not self._should_fail(params):
            return None
        parsed: dict[str, Any] = {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        if self.reasons is not None:
            parsed["CancellationReasons"] = [{"Code": r} for r in self.reasons]
        return _Http(self.status), parsed


def s3_key_contains(fragment: str) -> Predicate:
    """Only S3 calls whose object key contains `fragment` (e.g. `interactions/`)."""

    def match(request: dict[str, Any]) -> bool:
        return fragment in str(request.get("url_path", ""))

    return match


@contextmanager
def injected(*faults: Fault) -> Iterator[tuple[Fault, ...]]:
    """Make the given AWS calls fail while the block runs."""
    registered: list[tuple[Any, str, Any]] = []
    for f in faults:
        client = aws.client(f.service)
        service_id = client.meta.service_model.service_id.hyphenize()
        event, hook = f"before-call.{service_id}.{f.operation}", f.before_call
        client.meta.events.register_first(event, hook)
        registered.append((client, event, hook))
    try:
        yield faults
    finally:
        for client, event, hook in registered:
            client.meta.events.unregister(event, hook)

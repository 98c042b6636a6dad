"""Give moto's DynamoDB the isolation real DynamoDB has.

moto checks a write's condition and then applies it without a lock, and restores a failed
TransactWriteItems from a copy of the whole table — so two threads can both pass the same
condition, or one can undo the other's write. DynamoDB serialises conflicting writes. The
embedded AWS (and mock_aws in the tests) therefore runs DynamoDB writes under one lock, so
races in our tests exercise our code, not the emulator's gaps
(docs/decisions/006-embedded-aws-fidelity.md).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_WRITES = ("transact_write_items", "put_item", "update_item", "delete_item")
_lock = threading.RLock()
_applied = False


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return wrapper


def make_dynamodb_writes_atomic() -> None:
    global _applied
    if _applied:
        return
    for name in _WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    _applied = True

"""At-most-once actions with Powertools Idempotency on the registry table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from policyhub.adapters import aws
from policyhub.invocation import lambda_context

FEEDBACK_RETENTION_SECONDS = 30 * 24 * 3600


class PowertoolsOnce:
    def __init__(self, table: str, scope: str) -> None:
        store = DynamoDBPersistenceLayer(
            table_name=table,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=f"IDEMPOTENCY#{scope}",
            expiry_attr="expires_at",
            boto3_client=aws.dynamodb(),
        )
        config = IdempotencyConfig(
            event_key_jmespath="key", expires_after_seconds=FEEDBACK_RETENTION_SECONDS
        )

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="claim", persistence_store=store, config=config
        )
        def _once(claim: dict[str, str], action: Callable[[], None]) -> dict[str, Any]:
            action()
            return {"done": True}

        self._once = _once
        self._config = config

    def run_once(self, key: str, action: Callable[[], None]) -> None:
        context = lambda_context.get()
        if context is not None:
            # Lets an interrupted claim expire with the invocation instead of blocking retries.
            self._config.register_lambda_context(context)
        try:
            self._once(claim={"key": key}, action=action)
        except IdempotencyAlreadyInProgressError:
            return  # the same feedback is being recorded by a concurrent request


class MemoryOnce:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def run_once(self, key: str, action: Callable[[], None]) -> None:
        with self._lock:
            if key in self.seen:
                return
            self.seen.add(key)
        action()

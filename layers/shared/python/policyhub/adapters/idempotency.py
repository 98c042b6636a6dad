"""At-most-once actions with Powertools Idempotency on the registry table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from policyhub.adapters import aws
from policyhub.invocation import lambda_context

FEEDBACK_RETENTION_SECONDS = 30 * 24 * 3600


class PowertoolsOnce:
    """Built on first use: Powertools' DynamoDB persistence imports boto3, which the rank path
    (same service, no feedback) would otherwise pay for at every cold start."""

    def __init__(self, table: str, scope: str) -> None:
        self._table = table
        self._scope = scope
        self._built: tuple[Callable[..., Any], Any, type[Exception]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> tuple[Callable[..., Any], Any, type[Exception]]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        store = DynamoDBPersistenceLayer(
            table_name=self._table,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=f"IDEMPOTENCY#{self._scope}",
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

        return _once, config, IdempotencyAlreadyInProgressError

    def run_once(self, key: str, action: Callable[[], None]) -> None:
        with self._lock:
            if self._built is None:
                self._built = self._build()
                # Powertools configures its store on the first call and marks it configured
                # before it is: a concurrent first call (the local API is threaded) hashed with
                # half a configuration and failed as a 500. So the first call runs alone.
                self._call(key, action)
                return
        self._call(key, action)

    def _call(self, key: str, action: Callable[[], None]) -> None:
        assert self._built is not None
        once, config, in_progress = self._built
        context = lambda_context.get()
        if context is not None:
            # Lets an interrupted claim expire with the invocation instead of blocking retries.
            config.register_lambda_context(context)
        try:
            once(claim={"key": key}, action=action)
        except in_progress:
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

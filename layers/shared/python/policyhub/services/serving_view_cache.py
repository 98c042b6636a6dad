"""The deployment pointer as the rank path sees it: cached for a short TTL per container.

The TTL (POLICYHUB_POINTER_TTL_SECONDS, default 2 s) is how long a rollback or a canary step
takes, at most, to reach traffic. A view past half its TTL is refreshed on a background
thread while requests keep using it, so in steady traffic no rank call waits for the
DynamoDB read; a view at or past its TTL (no traffic for a while, or a refresh that failed or
was frozen with the Lambda environment) is refreshed before it is used, so no request is ever
served a view older than the TTL. Without the refresh-ahead, one rank call in every TTL paid
a DynamoDB round trip: at tens of requests a second that is a few percent of calls, a tail
population that sits right at the p95 the rollout's latency rule compares.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from policyhub.domain.routing import ServingView

DEFAULT_TTL_SECONDS = 2.0
logger = logging.getLogger("policyhub.serving")
Key = tuple[str, str]


class ServingViewCache:
    def __init__(
        self,
        load: Callable[[str, str], ServingView],
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._background = background or _daemon_thread
        self._entries: dict[Key, tuple[float, ServingView]] = {}
        self._refreshing: set[Key] = set()
        self._lock = threading.Lock()

    def get(self, tenant_id: str, agent_type: str) -> ServingView:
        key = (tenant_id, agent_type)
        entry = self._entries.get(key)
        if entry is not None:
            age = self._clock() - entry[0]
            if age < self._ttl:
                if age >= self._ttl / 2:
                    self._refresh_ahead(key)
                return entry[1]
        return self._refresh(key)

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

    def _refresh(self, key: Key) -> ServingView:
        started = self._clock()  # the view is at least as fresh as the moment the read began
        view = self._load(*key)
        with self._lock:
            current = self._entries.get(key)
            if current is None or current[0] <= started:
                self._entries[key] = (started, view)
        return view

    def _refresh_ahead(self, key: Key) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                self._refresh(key)
            except Exception:  # the next request past the TTL reads it itself
                logger.warning("serving view refresh of %s failed", key, exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        try:
            self._background(run)
        except Exception:
            with self._lock:
                self._refreshing.discard(key)
            raise


def _daemon_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, daemon=True, name="serving-view-refresh").start()

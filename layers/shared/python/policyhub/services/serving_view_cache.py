"""The deployment pointer as the rank path sees it: cached for a short TTL per container.

The TTL (POLICYHUB_POINTER_TTL_SECONDS, default 2 s) is how long a rollback or a canary step
takes, at most, to reach traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from policyhub.domain.routing import ServingView

DEFAULT_TTL_SECONDS = 2.0


class ServingViewCache:
    def __init__(
        self,
        load: Callable[[str, str], ServingView],
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, ServingView]] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: str, agent_type: str) -> ServingView:
        key = (tenant_id, agent_type)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        view = self._load(tenant_id, agent_type)
        with self._lock:
            self._entries[key] = (now, view)
        return view

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

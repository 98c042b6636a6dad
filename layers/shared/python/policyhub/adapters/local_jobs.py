"""Local job runner: training jobs run one after another in a background thread.

The local stack has no ECS; the thread calls the same entry point the container task runs
(`policyhub.api.container.run_training_job`), so the job body is the one AWS runs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger("policyhub.jobs")
JobTarget = Callable[[str, str, str], object]
"""(tenant_id, agent_type, job_id) -> anything; exceptions are logged, never raised."""


class ThreadJobRunner:
    def __init__(self, target: JobTarget) -> None:
        self._target = target
        self._queue: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, tenant_id: str, agent_type: str, job_id: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, daemon=True, name="policyhub-training"
                )
                self._thread.start()
        self._queue.put((tenant_id, agent_type, job_id))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._target(*item)
            except Exception:
                logger.exception("training job %s failed in the local worker", item)
            finally:
                self._queue.task_done()

    def wait_idle(self) -> None:
        """Block until every job handed over so far has finished."""
        self._queue.join()

    def stop(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=30)

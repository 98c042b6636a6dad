"""Who drives a rollout's loop: Step Functions in AWS, a thread of the local stack locally.

Both run the same controller (`RolloutService.tick`) and start idempotently per rollout id.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from policyhub.adapters import aws
from policyhub.domain.errors import PolicyHubError
from policyhub.services.rollouts import Tick

logger = logging.getLogger("policyhub.workflows")
TickFn = Callable[[str, str, str], Tick]


class StepFunctionsStarter:
    def __init__(self, state_machine_arn: str) -> None:
        self._arn = state_machine_arn

    def start(self, tenant_id: str, agent_type: str, rollout_id: str) -> None:
        try:
            aws.client("stepfunctions").start_execution(
                stateMachineArn=self._arn,
                name=rollout_id,
                input=json.dumps(
                    {"tenant_id": tenant_id, "agent_type": agent_type, "rollout_id": rollout_id}
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise


class LocalRolloutRunner:
    """Ticks every active rollout on a background thread, at most every `tick_seconds`."""

    def __init__(self, tick: Callable[[], TickFn], tick_seconds: float = 0.5) -> None:
        self._tick = tick
        self._tick_seconds = tick_seconds
        self._due: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def start(self, tenant_id: str, agent_type: str, rollout_id: str) -> None:
        with self._lock:
            self._due.setdefault((tenant_id, agent_type, rollout_id), time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="rollout-runner"
                )
                self._thread.start()

    def active(self) -> list[str]:
        with self._lock:
            return [key[2] for key in self._due]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                due = [k for k, at in self._due.items() if at <= now]
            for key in due:
                self._run_one(key)

    def _run_one(self, key: tuple[str, str, str]) -> None:
        try:
            result = self._tick()(*key)
            self.ticks += 1
        except Exception as exc:  # a lost race or a hiccup: the next tick judges again
            if isinstance(exc, PolicyHubError) and exc.code == "concurrent_change":
                # An admin's abort or rollback won the race (the page's emergency rollback
                # during a rollout does): expected, not an error worth a traceback.
                logger.info("rollout %s changed while it was judged; judged again", key[2])
            else:
                logger.exception("rollout tick failed for %s", key[2])
            with self._lock:
                self._due[key] = time.monotonic() + self._tick_seconds
            return
        with self._lock:
            if result.done:
                self._due.pop(key, None)
            else:
                self._due[key] = time.monotonic() + min(result.wait_seconds, self._tick_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

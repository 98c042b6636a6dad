"""`policyhub traffic`: simulated users at a steady rate, and who served them.

Each visit is a new user (`plain_users`: routing spreads them uniformly by hash, so a 5 %
canary really serves about 5 % of them) asking `POST /v1/rank` and then reporting
`POST /v1/feedback` with an outcome drawn from the simulator's true success probability of
the item on top (ml/simulated_users.py). Visits start on a fixed schedule and run on a small
thread pool; every few seconds one line says how many were sent, at what rate, and which
variant served them with what success.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

import requests

from policyhub.client import ApiError, PolicyHubClient
from policyhub.ml.simulated_users import Served, SimulatedUsers, plain_users, users_for

VARIANTS = ("production", "canary", "experiment", "retrieval")
REPORT_SECONDS = 5.0
MAX_IN_FLIGHT = 8
"""Visits waiting for the API at most; beyond that the schedule waits (and the rate shows it)."""
MAX_LAG_SECONDS = 1.0
DRAIN_SECONDS = 10.0
STOP_CHECK_SECONDS = 0.1


class Pacer:
    """Due times of `rate` events per second on a monotonic clock: `anchor + n / rate`.

    Due times come from the anchor, not from adding up sleeps, so the pace does not drift.
    A caller more than `max_lag` seconds behind (the API is slower than the rate) restarts
    the schedule from now instead of catching up in a burst; `skipped` counts the slots lost.
    """

    def __init__(self, rate: float, start: float, max_lag: float = MAX_LAG_SECONDS) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0")
        self.interval = 1.0 / rate
        self.max_lag = max_lag
        self._anchor = start
        self._n = 0
        self.skipped = 0

    def due(self, now: float) -> float:
        at = self._anchor + self._n * self.interval
        if now - at > self.max_lag:
            self.skipped += int((now - at) / self.interval)
            self._anchor, self._n = now, 0
            return now
        return at

    def advance(self) -> None:
        self._n += 1


@dataclass
class Counts:
    """Finished visits, [visits, successes] per (variant, policy version) served; errors."""

    served_by: dict[tuple[str, str | None], list[int]] = field(default_factory=dict)
    errors: int = 0

    @property
    def served(self) -> int:
        return sum(n for n, _ in self.served_by.values())

    def add(self, visit: Served) -> None:
        tally = self.served_by.setdefault((visit.variant, visit.policy_version), [0, 0])
        tally[0] += 1
        tally[1] += int(visit.success)


def describe_error(exc: BaseException) -> str:
    """One line for a failed visit: the API's status, code and message, or what went wrong."""
    if isinstance(exc, ApiError):
        return f"error {exc.status} {exc.code}: {exc.message}"
    if isinstance(exc, requests.RequestException):
        return f"error: cannot reach the API ({type(exc).__name__}: {exc})"
    return f"error: {type(exc).__name__}: {exc}"


class Tally:
    """Counts of finished visits, since the start and since the last report; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Counts()
        self._window = Counts()
        self._new_errors: list[str] = []
        self._seen_errors: set[str] = set()
        self.consecutive_failures = 0

    def served(self, visit: Served) -> None:
        with self._lock:
            self.total.add(visit)
            self._window.add(visit)
            self.consecutive_failures = 0

    def failed(self, exc: BaseException) -> None:
        line = describe_error(exc)
        with self._lock:
            self.total.errors += 1
            self._window.errors += 1
            self.consecutive_failures += 1
            if line not in self._seen_errors:  # each kind of error once per report
                self._seen_errors.add(line)
                self._new_errors.append(line)

    def new_errors(self) -> list[str]:
        with self._lock:
            lines, self._new_errors = self._new_errors, []
            return lines

    def take_window(self) -> Counts:
        with self._lock:
            window, self._window = self._window, Counts()
            self._seen_errors.clear()
            return window


def variant_summary(counts: Counts) -> str:
    """`production v1.2.4 95 (95.0%) ok 57%  canary v1.2.5 5 (5.0%) ok 60%`: visits, share of
    the visits and success rate per variant and version served."""
    total = counts.served

    def rank(key: tuple[str, str | None]) -> int:
        return VARIANTS.index(key[0]) if key[0] in VARIANTS else len(VARIANTS)

    parts = []
    # by variant; a variant's versions (production before and after a promotion) as they came
    for variant, version in sorted(counts.served_by, key=rank):
        n, ok = counts.served_by[variant, version]
        label = f"{variant} {version}" if version else variant
        parts.append(f"{label} {n} ({n / total:.1%}) ok {ok / n:.0%}")
    text = "  ".join(parts) if parts else "no visit finished"
    return text + (f"  errors {counts.errors}" if counts.errors else "")


def report_line(elapsed: float, sent: int, rate: float, window: Counts) -> str:
    return f"{elapsed:7.1f} s  sent {sent}  {rate:5.1f}/s | {variant_summary(window)}"


@dataclass(frozen=True)
class TrafficResult:
    elapsed: float
    sent: int
    total: Counts
    interrupted: bool
    gave_up: bool
    skipped: int

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


def summary_line(result: TrafficResult) -> str:
    how = "interrupted" if result.interrupted else "stopped"
    if result.gave_up:
        how = "gave up (every visit failed)"
    return (
        f"{how} after {result.elapsed:.1f} s: {result.sent} visits sent, {result.rate:.1f}/s | "
        f"{variant_summary(result.total)}"
    )


def play(
    submit: Callable[[str], Future[Served]],
    users: Iterator[str],
    rate: float,
    duration: float | None = None,
    *,
    echo: Callable[[str], None] = print,
    every: float = REPORT_SECONDS,
    max_in_flight: int = MAX_IN_FLIGHT,
    give_up_after: int | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TrafficResult:
    """Start a visit at every due time of a `Pacer` until `duration`, `stop` or Ctrl-C.

    Prints a report line every `every` seconds and each new kind of error as it comes. Stops
    early when the last `give_up_after` visits (default: one report's worth, at least 10) all
    failed: nothing gets through. Visits already started are waited for (up to
    `DRAIN_SECONDS`), so the counts include them.
    """
    stop = stop or threading.Event()
    give_up = give_up_after or max(10, int(rate * every))
    tally = Tally()
    slots = threading.BoundedSemaphore(max_in_flight)
    pending: set[Future[Served]] = set()
    pending_lock = threading.Lock()

    def finished(future: Future[Served]) -> None:
        with pending_lock:
            pending.discard(future)
        slots.release()
        exc = future.exception()
        if exc is None:
            tally.served(future.result())
        else:
            tally.failed(exc)

    start = clock()
    pacer = Pacer(rate, start)
    end = None if duration is None else start + duration
    next_report, window_start, window_sent = start + every, start, 0
    sent, interrupted, gave_up = 0, False, False
    try:
        while True:
            for line in tally.new_errors():
                echo(line)
            now = clock()
            if stop.is_set():
                interrupted = True
                break
            if tally.consecutive_failures >= give_up:
                gave_up = True
                break
            if end is not None and now >= end:
                break
            if now >= next_report:
                span = now - window_start
                echo(report_line(now - start, sent, window_sent / span, tally.take_window()))
                window_start, window_sent = now, 0
                next_report = max(next_report + every, now + every / 2)
                continue
            due = pacer.due(now)
            if now < due:
                wake = min(due, next_report, end if end is not None else due)
                sleep(min(wake - now, STOP_CHECK_SECONDS))
                continue
            if not slots.acquire(timeout=min(0.05, max(next_report - now, 0.001))):
                continue
            future = submit(next(users))
            with pending_lock:
                pending.add(future)
            future.add_done_callback(finished)
            pacer.advance()
            sent += 1
            window_sent += 1
    except KeyboardInterrupt:  # a caller that does not turn Ctrl-C into `stop`
        interrupted = True
    stopped = clock()
    with pending_lock:
        waiting = set(pending)
    try:
        wait_futures(waiting, timeout=DRAIN_SECONDS)
    except KeyboardInterrupt:
        interrupted = True
    for line in tally.new_errors():
        echo(line)
    return TrafficResult(
        elapsed=stopped - start,
        sent=sent,
        total=tally.total,
        interrupted=interrupted,
        gave_up=gave_up,
        skipped=pacer.skipped,
    )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C (SIGINT) and `kill` (SIGTERM) set `stop` instead of raising.

    A KeyboardInterrupt raised between starting a visit and recording it would lose that visit
    from the counts; a flag is read only between visits. A second signal raises
    KeyboardInterrupt (stop waiting). SIGINT stays ignored where a shell ignores it (a
    background job); `kill` then stops the traffic as Ctrl-C would.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # the second Ctrl-C: stop waiting for the visits under way
            raise KeyboardInterrupt
        stop.set()

    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        wanted.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class NoProductionError(Exception):
    """The agent has nothing in production: its traffic would only test retrieval order."""


@dataclass(frozen=True)
class Target:
    agent_type: str
    version: str
    context_dim: int
    item_dim: int


def production_target(client: PolicyHubClient, agent_type: str | None) -> Target:
    """The agent's production version and its feature schema, as the API reports them."""
    status = client.status(agent_type)
    production = status.get("production")
    if not production:
        raise NoProductionError(
            f"agent {status['agent_type']} has no production version: promote one first "
            "(simulated users need its feature schema)"
        )
    version = client.policy(production["version"], status["agent_type"])
    schema = version["feature_schema"]
    return Target(
        status["agent_type"], version["version"], schema["context_dim"], schema["item_dim"]
    )


def run_traffic(
    client_factory: Callable[[], PolicyHubClient],
    agent_type: str | None,
    rate: float,
    duration: float | None,
    seed: int,
    echo: Callable[[str], None] = print,
) -> int:
    """The `policyhub traffic` command; returns its exit code (2: nothing in production)."""
    try:
        target = production_target(client_factory(), agent_type)
    except NoProductionError as exc:
        echo(str(exc))
        return 2
    except (ApiError, requests.RequestException) as exc:
        echo(describe_error(exc))
        return 1
    if min(target.context_dim, target.item_dim) < 1:
        echo(
            f"agent {target.agent_type}'s feature schema ({target.context_dim} context, "
            f"{target.item_dim} item features) is too small to simulate users"
        )
        return 2
    config = users_for(target.agent_type, target.context_dim, target.item_dim)
    users = SimulatedUsers(
        client_factory, target.agent_type, config, seed=seed, workers=MAX_IN_FLIGHT
    )
    echo(
        f"simulated users of {target.agent_type} (production {target.version}, "
        f"{config.context_dim}+{config.item_dim} features, {config.n_candidates} candidates, "
        f"simulator seed {config.seed}) at {rate:g} visits/s"
        + (f" for {duration:g} s" if duration is not None else "; Ctrl-C stops")
    )
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            result = play(
                users.submit, plain_users(f"traffic-{seed}"), rate, duration, echo=echo, stop=stop
            )
    finally:
        users.close()
    echo(summary_line(result))
    return 1 if result.gave_up else 0

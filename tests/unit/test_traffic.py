"""`policyhub traffic`: pacing, tallies and lines, on a fake clock and fake visits."""

from __future__ import annotations

import itertools
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from policyhub.cli.traffic import (
    Counts,
    Pacer,
    TrafficResult,
    play,
    run_traffic,
    stop_on_signals,
    summary_line,
    variant_summary,
)
from policyhub.client import ApiError, PolicyHubClient
from policyhub.ml.simulated_users import SEEDED_USERS, Served, SimulatedUsers, users_for
from policyhub.ml.simulator import SimulatorConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def served(
    user: str, variant: str = "production", success: bool = True, version: str | None = None
) -> Served:
    version = version or {"production": "v1.0.0", "canary": "v1.0.1"}.get(variant)
    return Served(user, f"d-{user}", variant, version, success, 0.5)


def done(value: Served | BaseException) -> Future[Served]:
    future: Future[Served] = Future()
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)
    return future


def users() -> Iterator[str]:
    return (f"u-{i}" for i in itertools.count())


class Visits:
    """Fake `SimulatedUsers.submit`: answers at once, records when each visit started."""

    def __init__(
        self, clock: FakeClock, answer: Callable[[int, str], Served | BaseException]
    ) -> None:
        self.clock, self.answer = clock, answer
        self.started: list[float] = []

    def __call__(self, user: str) -> Future[Served]:
        self.started.append(self.clock.now)
        return done(self.answer(len(self.started) - 1, user))


def test_pacer_due_times_come_from_the_start_and_do_not_drift() -> None:
    pacer = Pacer(rate=20, start=0.0)
    for _ in range(100_000):
        pacer.advance()
    assert pacer.due(now=5000.0) == pytest.approx(5000.0, abs=1e-9)
    assert pacer.skipped == 0


def test_pacer_restarts_from_now_instead_of_bursting_when_far_behind() -> None:
    pacer = Pacer(rate=10, start=0.0, max_lag=1.0)
    pacer.advance()  # next due at 0.1
    assert pacer.due(now=0.9) == pytest.approx(0.1)  # a little behind: catch up
    assert pacer.due(now=3.1) == 3.1  # 3 s behind: restart the schedule at now
    assert pacer.skipped == 30
    pacer.advance()
    assert pacer.due(now=3.1) == pytest.approx(3.2)


def test_pacer_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate=0, start=0.0)


def test_visits_start_evenly_at_the_rate_and_a_line_comes_every_five_seconds() -> None:
    clock = FakeClock()
    visits = Visits(clock, lambda i, user: served(user, "canary" if i % 20 == 0 else "production"))
    lines: list[str] = []
    result = play(
        visits, users(), 20, 12.0, echo=lines.append, clock=clock, sleep=clock.sleep
    )

    assert result.sent == len(visits.started) == 240
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(visits.started)}
    assert gaps == {0.05}, "paced one by one, never a burst"
    assert result.elapsed == pytest.approx(12.0)
    assert result.rate == pytest.approx(20.0)
    assert not result.interrupted and not result.gave_up
    assert lines == [
        "    5.0 s  sent 100   20.0/s | production v1.0.0 95 (95.0%) ok 100%"
        "  canary v1.0.1 5 (5.0%) ok 100%",
        "   10.0 s  sent 200   20.0/s | production v1.0.0 95 (95.0%) ok 100%"
        "  canary v1.0.1 5 (5.0%) ok 100%",
    ]
    assert summary_line(result) == (
        "stopped after 12.0 s: 240 visits sent, 20.0/s | production v1.0.0 228 (95.0%) ok 100%"
        "  canary v1.0.1 12 (5.0%) ok 100%"
    )


def test_an_api_slower_than_the_rate_lowers_the_rate_without_bursts() -> None:
    clock = FakeClock()

    def slow(i: int, user: str) -> Served:
        clock.now += 0.2  # each visit holds the loop for 0.2 s: at most 5 visits/s
        return served(user)

    visits = Visits(clock, slow)
    result = play(visits, users(), 20, 30.0, echo=lambda line: None, clock=clock, sleep=clock.sleep)
    assert result.rate == pytest.approx(5.0, abs=0.3)
    assert result.skipped > 0
    # behind schedule it catches up by at most `max_lag` (1 s), then restarts from now
    assert max(b - a for a, b in itertools.pairwise(visits.started)) < 0.21


def test_each_kind_of_error_is_one_line_per_report_and_the_traffic_goes_on() -> None:
    clock = FakeClock()

    def flaky(i: int, user: str) -> Served | BaseException:
        if i % 4 == 3:
            return ApiError(503, "service_unavailable", "busy; retry shortly", "r1", [])
        return served(user, success=i % 2 == 0)

    lines: list[str] = []
    result = play(
        Visits(clock, flaky), users(), 10, 12.0, echo=lines.append, clock=clock, sleep=clock.sleep
    )
    errors = [line for line in lines if line.startswith("error")]
    assert errors == ["error 503 service_unavailable: busy; retry shortly"] * 3  # per report
    assert result.sent == 120 and result.total.errors == 30 and result.total.served == 90
    reports = [line for line in lines if not line.startswith("error")]
    assert len(reports) == 2
    assert reports[0].endswith("production v1.0.0 38 (100.0%) ok 66%  errors 12")
    assert not result.gave_up


def test_it_gives_up_when_every_visit_fails() -> None:
    clock = FakeClock()
    refused = Visits(clock, lambda i, user: ConnectionRefusedError("connection refused"))
    lines: list[str] = []
    result = play(refused, users(), 20, None, echo=lines.append, clock=clock, sleep=clock.sleep)
    assert result.gave_up and result.sent == 100  # one report's worth (5 s at 20/s)
    assert lines == ["error: ConnectionRefusedError: connection refused"]
    assert summary_line(result).startswith("gave up (every visit failed) after 5.0 s: 100 visits")


def test_stop_ends_the_traffic_between_visits() -> None:
    clock, stop = FakeClock(), threading.Event()

    def sleep(seconds: float) -> None:
        assert seconds <= 0.1, "short sleeps, so a stop is seen at once"
        clock.sleep(seconds)
        if clock.now >= 102.0:
            stop.set()

    visits = Visits(clock, lambda i, user: served(user))
    result = play(visits, users(), 2, None, echo=lambda line: None, stop=stop, clock=clock,
                  sleep=sleep)  # fmt: skip
    assert result.interrupted and result.sent == len(visits.started) == 4
    assert result.total.served == 4 and result.elapsed == pytest.approx(2.0)


def test_a_keyboard_interrupt_also_stops_with_what_was_counted() -> None:
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        if clock.now >= 103.0:
            raise KeyboardInterrupt
        clock.sleep(seconds)

    result = play(
        Visits(clock, lambda i, user: served(user)), users(), 20, None,
        echo=lambda line: None, clock=clock, sleep=sleep,
    )  # fmt: skip
    assert result.interrupted and result.sent == 61
    assert summary_line(result) == (
        "interrupted after 3.0 s: 61 visits sent, 20.3/s | production v1.0.0 61 (100.0%) ok 100%"
    )


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(1)  # the handler runs between bytecodes of the main thread: within this sleep


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)
def test_kill_and_ctrl_c_set_the_stop_flag_and_the_handlers_are_restored_after() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)  # the handler runs between bytecodes of the main thread
        assert stop.is_set()
        if before[1] is not signal.SIG_IGN:
            with pytest.raises(KeyboardInterrupt):  # a second one: stop waiting
                _signal_self(signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_variant_summary_orders_the_variants_and_says_when_nothing_finished() -> None:
    counts = Counts()
    for variant, success in [("retrieval", True), ("canary", False), ("production", True),
                             ("production", False), ("experiment", True)]:  # fmt: skip
        counts.add(served("u", variant, success))
    assert variant_summary(counts) == (
        "production v1.0.0 2 (40.0%) ok 50%  canary v1.0.1 1 (20.0%) ok 0%"
        "  experiment 1 (20.0%) ok 100%  retrieval 1 (20.0%) ok 100%"
    )
    assert variant_summary(Counts(errors=3)) == "no visit finished  errors 3"
    promoted = Counts()
    for version in ["v1.0.0", "v1.0.0", "v1.0.1"]:
        promoted.add(served("u", "production", version=version))
    promoted.add(served("u", "canary"))
    assert variant_summary(promoted) == (
        "production v1.0.0 2 (50.0%) ok 100%  production v1.0.1 1 (25.0%) ok 100%"
        "  canary v1.0.1 1 (25.0%) ok 100%"
    )
    nothing = TrafficResult(0.0, 0, Counts(), interrupted=True, gave_up=False, skipped=0)
    assert summary_line(nothing) == (
        "interrupted after 0.0 s: 0 visits sent, 0.0/s | no visit finished"
    )


def test_the_seeded_agent_gets_the_users_its_policies_were_trained_on() -> None:
    assert users_for("memory_manager", 8, 8) is SEEDED_USERS
    assert users_for("memory_manager", 4, 4) == SimulatorConfig(context_dim=4, item_dim=4)
    assert users_for("other_agent", 8, 8) == SimulatorConfig(context_dim=8, item_dim=8)


class FakeApi(PolicyHubClient):
    """Answers rank with the candidates reversed; records what the users sent."""

    def __init__(self, production: dict[str, Any] | None = None) -> None:
        super().__init__("http://fake.invalid/v1", None)
        self.production = production
        self.ranked: list[dict[str, Any]] = []
        self.feedbacks: list[tuple[str, bool | None]] = []

    def status(self, agent_type: str | None = None) -> dict[str, Any]:
        return {"agent_type": agent_type or "memory_manager", "production": self.production}

    def policy(self, version: str, agent_type: str | None = None) -> dict[str, Any]:
        return {"version": version, "feature_schema": {"context_dim": 3, "item_dim": 2}}

    def rank(
        self, context: list[float], candidates: list[dict[str, Any]], agent_type: str | None = None,
        routing_key: str | None = None, use_rl_ranking: bool | None = None,
        top_k: int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        self.ranked.append({"context": context, "candidates": candidates, "key": routing_key})
        ranking = [{"id": c["id"], "score": 0.0, "rank": r}
                   for r, c in enumerate(reversed(candidates))]  # fmt: skip
        return {"decision_id": f"d{len(self.ranked)}", "variant": "production",
                "policy_version": "v1.0.0", "ranking": ranking}  # fmt: skip

    def feedback(
        self, decision_id: str, success: bool | None = None, reward: float | None = None,
        clicked_ids: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        self.feedbacks.append((decision_id, success))
        return {}


def test_a_visit_ranks_with_the_users_key_and_reports_the_true_outcome_of_the_top_item() -> None:
    api = FakeApi()
    config = SimulatorConfig(context_dim=3, item_dim=2, n_candidates=4)
    sim_users = SimulatedUsers(lambda: api, "agent_a", config, seed=5, workers=2)
    try:
        visits = [sim_users.submit(f"user-{i}").result() for i in range(50)]
    finally:
        sim_users.close()
    assert [r["key"] for r in api.ranked] == [f"user-{i}" for i in range(50)]
    first = api.ranked[0]
    assert len(first["context"]) == 3 and len(first["candidates"]) == 4
    assert all(len(c["features"]) == 2 for c in first["candidates"])
    assert api.feedbacks == [(v.decision_id, v.success) for v in visits]
    truths = [v.true_probability for v in visits]
    assert min(truths) > 0.0 and max(truths) < 1.0 and sim_users.visits == 50
    # the same seed plays the same users
    again = FakeApi()
    replay = SimulatedUsers(lambda: again, "agent_a", config, seed=5, workers=2)
    try:
        assert [replay.submit(f"user-{i}").result() for i in range(50)] == visits
    finally:
        replay.close()


def test_no_production_version_is_one_line_and_exit_2() -> None:
    lines: list[str] = []
    code = run_traffic(lambda: FakeApi(), "new_agent", 20, 1.0, 0, echo=lines.append)
    assert code == 2
    assert lines == [
        "agent new_agent has no production version: promote one first "
        "(simulated users need its feature schema)"
    ]


def test_run_traffic_plays_the_schema_of_the_production_version() -> None:
    api = FakeApi(production={"version": "v1.0.0"})
    lines: list[str] = []
    code = run_traffic(lambda: api, "agent_a", 50, 0.3, 0, echo=lines.append)
    assert code == 0
    assert lines[0].startswith("simulated users of agent_a (production v1.0.0, 3+2 features")
    summary = re.fullmatch(r"stopped after 0\.3 s: (\d+) visits sent, .*", lines[-1])
    assert summary, lines[-1]
    sent = int(summary.group(1))
    assert 13 <= sent <= 15  # 50/s for 0.3 s; a busy machine may wake late for the last one
    assert len(api.feedbacks) == sent and all(len(r["context"]) == 3 for r in api.ranked)


def test_the_demo_keeps_its_names_and_its_simulator() -> None:
    from infra.local import demo_traffic

    users = demo_traffic.SimulatedUsers(lambda: FakeApi(), "demo_agent")
    try:
        assert users.simulator.config is demo_traffic.DEMO_SIMULATOR
    finally:
        users.close()
    assert demo_traffic.success_rate([served("a"), served("b", success=False)]) == 0.5

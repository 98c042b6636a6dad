"""The local stack's rollout thread: a tick that loses a race to an admin's abort or rollback
(409 concurrent_change) is expected and judged again, without an error traceback in the
`make up` terminal; any other failure is still logged as an error (issue 14)."""

from __future__ import annotations

import logging

import pytest

from policyhub.adapters.workflows import LocalRolloutRunner
from policyhub.domain.errors import PolicyHubError
from policyhub.services.rollouts import Tick

KEY = ("acme", "memory_manager", "ro_1")


def _runner(error: Exception) -> LocalRolloutRunner:
    def tick(tenant_id: str, agent_type: str, rollout_id: str) -> Tick:
        raise error

    return LocalRolloutRunner(lambda: tick, tick_seconds=0.5)


def test_a_lost_race_is_not_an_error_and_is_judged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = _runner(PolicyHubError("concurrent_change", "agent changed concurrently"))
    with caplog.at_level(logging.INFO, logger="policyhub.workflows"):
        runner._run_one(KEY)
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert caplog.records[0].exc_info is None
    assert runner.active() == ["ro_1"]


def test_any_other_failure_is_still_an_error_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = _runner(RuntimeError("boom"))
    with caplog.at_level(logging.INFO, logger="policyhub.workflows"):
        runner._run_one(KEY)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert runner.active() == ["ro_1"]

"""`rollouts watch` and `status` say why the open step waits, from the API's rollout object."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from policyhub.cli import main as cli
from policyhub.cli.render import live_step_lines, rollout_view
from policyhub.domain.rollout_judge import apply, step
from tests.unit.rollout.builders import at, in_canary, in_shadow, variant, window
from tests.unit.test_promote_force_client import Recorded, _client


def _text(renderable: Any) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def _waiting_canary() -> dict[str, Any]:
    """A 5 % step looked at after 300 s with 400 candidate decisions: still short of proof."""
    rollout = in_canary(5)
    decision = step(rollout, window(variant(7_600), variant(400), 300), at(300))
    return apply(rollout, decision, at(300)).to_dict()


def test_the_live_step_shows_time_samples_information_and_reasons() -> None:
    text = "\n".join(line.plain for line in live_step_lines(_waiting_canary(), now=at(330)))
    assert "canary 5% · elapsed 5m30s of minimum 15m00s · deadline in 1h54m" in text
    assert "samples: baseline 7,600 / 200 · candidate 400 / 200" in text
    assert "planned information: p95 latency" in text and "success rate" in text
    assert "not enough evidence either way yet" in text


def test_a_step_not_yet_looked_at_says_so() -> None:
    lines = live_step_lines(in_shadow().to_dict(), now=at(5))
    text = "\n".join(line.plain for line in lines)
    assert "shadow · elapsed 5 s of" not in text  # no minimum before the first look
    assert "live step: shadow · elapsed 5 s · deadline in 1h59m" in text
    assert "waiting for the first look" in text


def test_an_ended_rollout_has_no_live_step_but_its_outcome() -> None:
    rollout = in_canary(5)
    decision = step(rollout, window(variant(50_000), variant(5_000, success_rate=0.5), 60), at(60))
    ended = apply(rollout, decision, at(60)).to_dict()
    assert live_step_lines(ended) == []
    assert "outcome: rolled back: unhealthy" in _text(rollout_view(ended))


def test_status_shows_the_active_rollout_with_its_live_step_and_the_experiment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = {
        "agent_type": "memory_manager", "total_versions": 9,
        "production": {"version": "v1.2.4", "promoted_at": "2026-11-01T12:00:00Z", "metrics": {}},
        "previous": [{"version": "v1.2.2", "promoted_at": "2026-10-01T12:00:00Z"}],
        "rollout": _waiting_canary(),
        "experiment": {"experiment_id": "ex_1", "name": "a vs b", "state": "running",
                       "winner": None, "variants": [
                           {"version": "v1.2.4", "traffic_percent": 50, "decisions": 120},
                           {"version": "v1.2.6", "traffic_percent": 50, "decisions": 118}]},
    }
    monkeypatch.setattr(cli, "_client", lambda: _client(Recorded(200, answer)))
    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(cli.app, ["status"])
    assert out.exit_code == 0, out.output
    assert "rollout: r-1 · v1.0.2 vs v1.0.1 · canary" in out.output
    assert "samples: baseline 7,600 / 200" in out.output
    assert "experiment: ex_1 'a vs b' · running · v1.2.4 50% (120 decisions)" in out.output

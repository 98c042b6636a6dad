"""The CLI frictions of issue 14, each with its test: literal error text, a misspelled agent,
one-line failures instead of tracebacks, `--local` anywhere, whole ids, the demo's output off a
terminal, the rollback reason said once, compare's warnings, and rollback's schemas and force.
Against recorded HTTP answers (tests/unit/test_promote_force_client.py) or nothing at all."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from rich.console import Console
from typer.testing import CliRunner

from policyhub.cli import main as cli
from policyhub.cli.render import rollout_view
from policyhub.client import PolicyHubClient
from policyhub.domain.rollout_judge import apply, step
from tests.unit.rollout.builders import at, in_canary, variant, window
from tests.unit.test_promote_force_client import Recorded, _client

PATTERN = "^[a-z][a-z0-9_]{0,62}$"


class Routed:
    """Stands in for `requests.Session.request`, answering by path and agent_type."""

    def __init__(self, answers: dict[tuple[str, str | None], tuple[int, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = url.split("/v1", 1)[1]
        params = kwargs.get("params") or {}
        self.calls.append((path, kwargs))
        status, body = self.answers[(path, params.get("agent_type"))]
        r = requests.Response()
        r.status_code = status
        r._content = json.dumps(body).encode()
        r.headers["x-request-id"] = "req-1"
        return r


def _routed(monkeypatch: pytest.MonkeyPatch, routed: Routed) -> None:
    def client() -> PolicyHubClient:
        c = PolicyHubClient("http://api.test/v1", "ph_live_x_y")
        c._session.request = routed  # type: ignore[method-assign,assignment]
        return c

    monkeypatch.setattr(cli, "_client", client)


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(cli.app, args)


def _status(agent: str, total: int, **extra: Any) -> dict[str, Any]:
    return {"agent_type": agent, "total_versions": total, "production": None, "previous": [],
            "rollout": None, "experiment": None, **extra}  # fmt: skip


# ---- error text keeps its brackets ------------------------------------------------------------


def test_error_text_keeps_its_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    message = f"request does not match the schema (query.agent_type: pattern '{PATTERN}')"
    recorded = Recorded(422, {"error": {"code": "validation_error", "message": message}})
    monkeypatch.setattr(cli, "_client", lambda: _client(recorded))
    out = _invoke(["status", "-a", "Bad-Agent"])
    assert out.exit_code == 1
    assert f"pattern '{PATTERN}'" in out.output
    assert "error 422 validation_error" in out.output


# ---- a misspelled agent -------------------------------------------------------------------------


def test_a_misspelled_agent_has_no_versions_a_suggestion_and_exit_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routed = Routed(
        {
            ("/policies/status", "memory_manger"): (200, _status("memory_manger", 0)),
            ("/policies/status", "memory_manager"): (200, _status("memory_manager", 11)),
        }
    )
    _routed(monkeypatch, routed)
    out = _invoke(["status", "-a", "memory_manger"])
    assert out.exit_code == 1
    assert "agent 'memory_manger' has no policy versions in this tenant" in out.output
    assert "did you mean memory_manager (11 versions: -a memory_manager)" in out.output


def test_an_agent_with_no_close_name_says_how_an_agent_gets_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routed = Routed({("/policies/status", "search_ranker"): (200, _status("search_ranker", 0))})
    _routed(monkeypatch, routed)
    out = _invoke(["status", "-a", "search_ranker"])
    assert out.exit_code == 1
    assert "agent 'search_ranker' has no policy versions" in out.output
    assert "policyhub train" in out.output
    assert [path for path, _ in routed.calls] == ["/policies/status"]


def test_list_of_an_agent_without_versions_fails_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = {"items": [], "has_more": False, "next_cursor": None}
    routed = Routed(
        {
            ("/policies", "memory_manger"): (200, empty),
            ("/policies/status", "memory_manager"): (200, _status("memory_manager", 11)),
        }
    )
    _routed(monkeypatch, routed)
    out = _invoke(["list", "-a", "memory_manger"])
    assert out.exit_code == 1 and "did you mean memory_manager" in out.output


# ---- one line instead of a traceback ------------------------------------------------------------


def test_a_missing_local_stack_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLICYHUB_LOCAL_DIR", str(tmp_path))
    assert cli.run(["--local", "status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{tmp_path / 'stack.json'} not found" in err and "make up" in err


def test_a_missing_aws_region_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    assert cli.run(["keys", "list", "--tenant", "acme"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no AWS region: set AWS_REGION" in err and "--local" in err


def test_an_api_that_does_not_answer_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLICYHUB_API_URL", "http://127.0.0.1:9/v1")
    assert cli.run(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("policyhub: cannot reach http://127.0.0.1:9/v1/policies/status")


def test_the_installed_command_fails_in_one_line_too(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("policyhub")), "status", "--local"],
        env={**os.environ, "POLICYHUB_LOCAL_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "stack.json not found" in done.stderr
    assert "No such option" not in done.stderr


# ---- --local anywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hoisted"),
    [
        (["status", "--local"], ["--local", "status"]),
        (["--local", "status"], ["--local", "status"]),
        (["rollouts", "list", "--local", "-a", "x"], ["--local", "rollouts", "list", "-a", "x"]),
        (["status"], ["status"]),
        (["rollback", "v1", "--", "--local"], ["rollback", "v1", "--", "--local"]),
    ],
)
def test_local_is_accepted_anywhere_before_a_double_dash(
    argv: list[str], hoisted: list[str]
) -> None:
    assert cli.hoist_local(argv) == hoisted


def test_local_after_the_command_uses_the_local_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"api_url": "http://127.0.0.1:9/v1"}))
    (tmp_path / "admin-key").write_text("ph_live_x_y")
    monkeypatch.setenv("POLICYHUB_LOCAL_DIR", str(tmp_path))
    assert cli.run(["status", "--local"]) == 1
    assert "cannot reach http://127.0.0.1:9/v1/policies/status" in capsys.readouterr().err


# ---- whole ids ----------------------------------------------------------------------------------


JOB_ID = "tj-20261201T044123.123456-abcdef12"


def test_jobs_shows_ids_whole_on_a_narrow_console(monkeypatch: pytest.MonkeyPatch) -> None:
    job = {"job_id": JOB_ID, "status": "succeeded", "trigger": "api",
           "created_at": "2026-12-01T04:41:23.123456Z",
           "finished_at": "2026-12-01T04:41:25.654321Z", "interactions_used": 3000,
           "candidate_version": "v1.2.7"}  # fmt: skip
    page = {"items": [job], "has_more": False, "next_cursor": None}
    monkeypatch.setattr(cli, "_client", lambda: _client(Recorded(200, page)))
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=80, markup=False))
    out = _invoke(["jobs"])
    assert out.exit_code == 0, out.output
    assert JOB_ID in buffer.getvalue()


# ---- the demo's output off a terminal -----------------------------------------------------------


def _rolled_back() -> dict[str, Any]:
    rollout = in_canary(5)
    decision = step(rollout, window(variant(50_000), variant(5_000, success_rate=0.5), 60), at(60))
    return apply(rollout, decision, at(60)).to_dict()


class ScriptedClient:
    def __init__(self, rollouts: list[dict[str, Any]]) -> None:
        self.rollouts = rollouts

    def rollout(self, rollout_id: str, agent_type: str) -> dict[str, Any]:
        return self.rollouts.pop(0) if len(self.rollouts) > 1 else self.rollouts[0]


class Users:
    visits = 0

    def visit(self, users: Any) -> list[Any]:
        return []


def _demo(client: ScriptedClient) -> tuple[Any, io.StringIO]:
    from infra.local.demo import Demo

    buffer = io.StringIO()
    console = Console(file=buffer, width=100)
    assert not console.is_terminal
    return Demo(client, Users(), console, dict), buffer  # type: ignore[arg-type]


def test_demo_lines_do_not_run_together_when_stdout_is_not_a_terminal() -> None:
    demo, buffer = _demo(ScriptedClient([in_canary(5).to_dict(), _rolled_back()]))
    final = demo.watch_rollout("a regression", "rolled back", "r-1", timeout=30)
    demo.console.print("next stage")
    lines = buffer.getvalue().splitlines()
    assert final["state"] == "rolled_back"
    assert "next stage" in lines, buffer.getvalue()[-400:]


def test_the_rollback_reason_is_said_once() -> None:
    final = _rolled_back()
    assert final["outcome_reason"].startswith("rolled back: ")
    demo, buffer = _demo(ScriptedClient([final]))
    demo.show_rollback(final)
    text = buffer.getvalue()
    assert text.startswith("rolled back: unhealthy") and "rolled back: rolled back" not in text
    view = Console(width=200, record=True)
    view.print(rollout_view(final))
    assert "outcome: rolled back: unhealthy" in view.export_text()
    assert "rolled back: rolled back" not in view.export_text()


# ---- compare's warnings -------------------------------------------------------------------------


def test_compare_shows_an_estimate_outside_the_reward_range_with_its_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warning = ("estimated reward 1.1100 (95% interval [0.7500, 1.7400]) lies outside the "
               "reward range [0, 1]: no policy can score outside it; it rests on an effective "
               "sample size of 37.0 (of 812 held-out decisions), below 100")  # fmt: skip
    estimate = {"estimated_reward": 0.6, "ci_low": 0.55, "ci_high": 0.65, "warnings": []}
    body = {
        "agent_type": "memory_manager", "baseline_version": "v1.0.0",
        "candidate_version": "v1.0.1", "is_improvement": False,
        "recommendation": "collect_more_data", "method": "doubly_robust", "n_samples": 812,
        "effective_sample_size": 37.0, "baseline": estimate,
        "candidate": {"estimated_reward": 1.11, "ci_low": 0.75, "ci_high": 1.74,
                      "warnings": [warning]},
        "lift": {"absolute": 0.51, "relative": 0.85, "ci_low": 0.1, "ci_high": 1.1},
        "shadow": None, "reasons": ["effective sample size 37.0 is below 100"], "snips": None,
    }  # fmt: skip
    monkeypatch.setattr(cli, "_client", lambda: _client(Recorded(200, body)))
    out = _invoke(["compare", "v1.0.0", "v1.0.1"])
    assert out.exit_code == 0, out.output
    assert "candidate v1.0.1 (!)" in out.output
    assert f"! candidate v1.0.1: {warning}" in " ".join(out.output.split())


# ---- rollback: schemas where targets are listed, and --force ------------------------------------


def test_status_and_list_show_feature_schemas_and_which_targets_need_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def schema(c: int, i: int) -> dict[str, int]:
        return {"context_dim": c, "item_dim": i}

    status = _status(
        "memory_manager",
        11,
        production={"version": "v1.2.4", "promoted_at": "2026-11-01T12:00:00Z", "metrics": {},
                    "feature_schema": schema(8, 8)},
        previous=[{"version": "v1.2.2", "promoted_at": None, "feature_schema": schema(8, 8)},
                  {"version": "v1.0.1", "promoted_at": None, "feature_schema": schema(4, 4)}],
    )  # fmt: skip
    version = {"version": "v1.0.1", "status": "retired", "created_at": "2026-10-01T00:00:00Z",
               "promoted_at": None, "artifact": {"sha256": "a" * 64},
               "feature_schema": schema(4, 4)}  # fmt: skip
    routed = Routed(
        {
            ("/policies/status", None): (200, status),
            ("/policies", None): (200, {"items": [version], "has_more": False,
                                        "next_cursor": None}),
        }
    )  # fmt: skip
    _routed(monkeypatch, routed)
    # Wide enough for one line each, whatever width the module's console took at import.
    monkeypatch.setattr(cli, "console", Console(markup=False, width=200))
    out = _invoke(["status"])
    assert out.exit_code == 0, out.output
    assert "features 8/8 (context/item)" in out.output
    assert "rollback targets: v1.2.2 (8/8) · v1.0.1 (4/4: not production's 8/8, needs --force)" in (
        out.output
    )
    listed = _invoke(["list"])
    assert listed.exit_code == 0 and "features" in listed.output and "4/4" in listed.output


@pytest.mark.parametrize(("flag", "sent"), [(["--force"], {"force": True}), ([], {})])
def test_the_cli_rollback_has_a_force_flag(
    monkeypatch: pytest.MonkeyPatch, flag: list[str], sent: dict[str, Any]
) -> None:
    recorded = Recorded(200, {"version": "v1.0.1"})
    monkeypatch.setattr(cli, "_client", lambda: _client(recorded))
    out = _invoke(["rollback", "v1.0.1", "--reason", "clients moved back", *flag])
    assert out.exit_code == 0, out.output
    assert recorded.calls[0]["json"] == {
        "version": "v1.0.1", "agent_type": "memory_manager", "reason": "clients moved back",
        **sent,
    }  # fmt: skip

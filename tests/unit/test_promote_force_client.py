"""`force` on promote from the typed client and the CLI (decision 099), against a recorded
HTTP session (the e2e suite runs the same commands against the local stack)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from policyhub.cli import main as cli
from policyhub.client import PolicyHubClient


class Recorded:
    """Stands in for `requests.Session.request`: keeps each call, answers with `answer`."""

    def __init__(self, status: int = 202, answer: Any = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status, self.answer = status, answer if answer is not None else {"ok": True}

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        r = requests.Response()
        r.status_code = self.status
        r._content = json.dumps(self.answer).encode()
        r.headers["x-request-id"] = "req-1"
        return r


def _client(recorded: Recorded) -> PolicyHubClient:
    client = PolicyHubClient("http://api.test/v1", "ph_live_x_y")
    client._session.request = recorded  # type: ignore[method-assign,assignment]
    return client


@pytest.mark.parametrize(("force", "sent"), [(True, {"force": True}), (False, {})])
def test_the_client_sends_force_only_when_asked(force: bool, sent: dict[str, Any]) -> None:
    recorded = Recorded()
    _client(recorded).promote("v1.2.5", strategy="canary", force=force)
    (call,) = recorded.calls
    assert (call["method"], call["url"]) == ("POST", "http://api.test/v1/policies/promote")
    assert call["json"] == {"version": "v1.2.5", "strategy": "canary", **sent}


@pytest.mark.parametrize(("flag", "sent"), [(["--force"], {"force": True}), ([], {})])
def test_the_cli_promote_has_a_force_flag(
    monkeypatch: pytest.MonkeyPatch, flag: list[str], sent: dict[str, Any]
) -> None:
    recorded = Recorded(200, {"version": "v1.2.5"})
    monkeypatch.setattr(cli, "_client", lambda: _client(recorded))
    out = CliRunner().invoke(cli.app, ["promote", "v1.2.5", "--strategy", "immediate", *flag])
    assert out.exit_code == 0, out.output
    assert recorded.calls[0]["json"] == {"version": "v1.2.5", "strategy": "immediate", **sent}


def test_the_cli_shows_why_a_promote_needs_force(monkeypatch: pytest.MonkeyPatch) -> None:
    message = (
        "v1.2.5 was rolled back as unhealthy by rollout ro_1 (rolled back: unhealthy in the 5 % "
        'canary step); pass "force": true to promote it again'
    )
    recorded = Recorded(409, {"error": {"code": "not_promotable", "message": message}})
    monkeypatch.setattr(cli, "_client", lambda: _client(recorded))
    out = CliRunner().invoke(cli.app, ["promote", "v1.2.5"])
    assert out.exit_code == 1
    assert "409 not_promotable" in out.output and "ro_1" in out.output

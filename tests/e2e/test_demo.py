"""`make demo` end to end: every stage of the story must do what it says, and the report must
show the rollouts that just ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.embedded_aws import free_port
from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo")]


def test_the_demo_plays_every_stage_and_reports_both_rollouts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "POLICYHUB_PORT": str(free_port()),
        "POLICYHUB_AWS_PORT": str(free_port()),
        "POLICYHUB_REPORT_DIR": str(tmp_path),
        "COLUMNS": "160",
    }
    done = subprocess.run(
        [sys.executable, "-m", "infra.local", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert done.returncode == 0, _what_went_wrong(done)
    (report_dir,) = tmp_path.iterdir()
    data = json.loads((report_dir / "data.json").read_text())
    assert [s["ok"] for s in data["stages"]] == [True] * 8
    good, bad = (r["rollout"] for r in data["rollouts"])
    assert good["state"] == "promoted"
    assert [s["traffic_percent"] for s in good["steps"]][:6] == [0, 5, 10, 25, 50, 100]
    assert bad["state"] == "rolled_back" and bad["steps"][-1]["verdict"] == "unhealthy"
    assert data["experiment"]["winner"] == good["candidate_version"]
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert len(pngs) == 6 and all((report_dir / p).stat().st_size > 10_000 for p in pngs)
    page = (report_dir / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 6
    assert good["rollout_id"] in page and bad["rollout_id"] in page
    assert report_dir.name in done.stdout and "Whole run" in done.stdout


def _what_went_wrong(done: subprocess.CompletedProcess[str]) -> str:
    """The output's end, and first the head of every logged error: the API child logs a 500's
    exception as one long JSON line, whose message the output's end alone cuts off."""
    errors = [line[:1500] for line in done.stdout.splitlines() if '"exception"' in line]
    return "\n".join([*errors[:5], "…", done.stdout[-4000:], done.stderr[-4000:]])

"""The product page's three code examples, unchanged, in the page's order, on a fresh `make up`,
run exactly as `make up` says to run them (issue 14).

A stack of its own: the examples change production's history (a rollout of v1.2.5 starts and
is rolled back), and the shared stack's other tests change it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ROOT, LocalStack, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
EXAMPLES = ("check_policy_status", "promote_new_policy", "emergency_rollback")


def _printed(stack: LocalStack) -> list[str]:
    """What `make up` printed once ready (it prints just after the API answers)."""
    log = stack.local_dir / "stack.log"
    deadline = time.monotonic() + 30
    while "Ctrl-C to stop" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return log.read_text().splitlines()


def _as_printed(exports: list[str], *command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a shell that ran the printed export lines, in the repository, with none of
    the variables they set inherited from this process."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"HEBBRIX_API_KEY", "POLICYHUB_API_URL"}}  # fmt: skip
    script = "\n".join([*exports, 'exec "$@"'])
    return subprocess.run(
        ["/bin/bash", "-c", script, "page", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_pages_examples_run_in_order_on_a_fresh_stack_as_make_up_says(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path / "local") as stack:
        printed = _printed(stack)
        exports = [line.strip() for line in printed if line.strip().startswith("export ")]
        assert exports == [
            f'export HEBBRIX_API_KEY="$(cat {stack.local_dir / "admin-key"})"',
            f"export POLICYHUB_API_URL={stack.base}",
        ]
        assert any("examples/page/run.py" in line for line in printed)

        out: dict[str, str] = {}
        for name in EXAMPLES:
            done = _as_printed(exports, sys.executable, "examples/page/run.py", name)
            assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
            out[name] = done.stdout

        assert "Current production version: v1.2.4" in out["check_policy_status"]
        assert "Version v1.2.5CANDIDATE" in out["check_policy_status"]
        assert out["promote_new_policy"].splitlines() == [
            "Improvement: True",
            "Recommendation: promote",
            "Promoted v1.2.5 to production!",
        ]
        assert "Rolled back to version: v1.2.4" in out["emergency_rollback"]
        assert "Promoted at: 20" in out["emergency_rollback"]

        # What the three did: a safe rollout of v1.2.5 started, and the emergency rollback to
        # v1.2.4 aborted it; production never moved, and v1.2.5 may be promoted again.
        h = stack.headers()
        status = requests.get(f"{stack.base}/policies/status", headers=h, timeout=10).json()
        assert status["production"]["version"] == "v1.2.4" and status["rollout"] is None
        v125 = requests.get(f"{stack.base}/policies/v1.2.5", headers=h, timeout=10).json()
        assert v125["status"] == "candidate"
        assert v125["last_rollout"]["outcome"] == "aborted"
        events = requests.get(f"{stack.base}/policies/audit", headers=h, timeout=10).json()
        # The abort and the rollback are one transaction: both events, in either order.
        both = {e["action"]: e for e in events["items"][:2]}
        assert set(both) == {"abort", "rollback"}
        assert both["rollback"]["reason"] == "regression in retrieval quality"
        assert both["rollback"]["details"]["aborted_rollout_id"]

        # The runner says what is wrong with the key in one line instead of a KeyError.
        stale = _as_printed(
            ["export HEBBRIX_API_KEY=ph_live_nope_nope", f"export POLICYHUB_API_URL={stack.base}"],
            sys.executable, "examples/page/run.py",
        )  # fmt: skip
        assert stale.returncode == 2 and "Traceback" not in stale.stderr
        assert "refused HEBBRIX_API_KEY (401)" in stale.stderr
        unset = _as_printed([], sys.executable, "examples/page/run.py")
        assert unset.returncode == 2 and "HEBBRIX_API_KEY is not set" in unset.stderr

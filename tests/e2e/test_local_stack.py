"""Over HTTP against `make up`'s stack: the product page's examples and the CLI."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import requests

from tests.e2e.conftest import ROOT, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _run_example(stack: LocalStack, name: str) -> str:
    """One of the product page's examples, unchanged, through examples/page/run.py."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "page" / "run.py"), name],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POLICYHUB_API_URL": stack.base, "HEBBRIX_API_KEY": stack.admin_key},
    )
    return out.stdout


def test_admin_key_file_is_private_and_holds_the_key_alone(local_stack: LocalStack) -> None:
    path = local_stack.local_dir / "admin-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("ph_live_") and "\n" not in path.read_text()


def test_check_policy_status_example_prints_production_and_versions(
    local_stack: LocalStack,
) -> None:
    out = _run_example(local_stack, "check_policy_status")
    assert "Current production version: v1.2.4" in out
    assert "Promoted at: 20" in out and "Total versions: 11" in out
    assert "Version v1.2.4ACTIVE" in out and "Version v1.2.5CANDIDATE" in out
    assert "Version v1.2.6CANDIDATE" in out


def test_emergency_rollback_example_restores_v1_2_4(local_stack: LocalStack) -> None:
    h = local_stack.headers()
    # The regression the SRE reacts to: v1.2.5 went live.
    r = requests.post(
        f"{local_stack.base}/policies/promote",
        headers=h,
        timeout=10,
        json={"version": "v1.2.5", "agent_type": "memory_manager", "strategy": "immediate"},
    )
    assert r.status_code == 200, r.text
    out = _run_example(local_stack, "emergency_rollback")
    assert "Rolled back to version: v1.2.4" in out and "Promoted at: 20" in out
    status = requests.get(f"{local_stack.base}/policies/status", headers=h, timeout=10).json()
    assert status["production"]["version"] == "v1.2.4"
    audit = requests.get(f"{local_stack.base}/policies/audit", headers=h, timeout=10).json()
    top = audit["items"][0]
    assert (top["action"], top["from_version"], top["to_version"], top["reason"]) == (
        "rollback",
        "v1.2.5",
        "v1.2.4",
        "regression in retrieval quality",
    )


def test_cli_creates_keys_on_the_local_stack_that_the_api_honours(local_stack: LocalStack) -> None:
    cli = [str(ROOT / ".venv" / "bin" / "policyhub"), "--local"]
    env = {**os.environ, "POLICYHUB_LOCAL_DIR": str(local_stack.local_dir)}
    out = subprocess.run(
        [*cli, "keys", "create", "--tenant", "globex", "--tier", "free", "--role", "member"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    key = out.strip().splitlines()[-1]
    assert key.startswith("ph_live_")
    r = requests.get(
        f"{local_stack.base}/policies/status", headers=local_stack.headers(key), timeout=10
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    listed = subprocess.run(
        [*cli, "keys", "list", "--tenant", "globex"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    key_id = key.split("_")[2]
    assert key_id in listed
    subprocess.run(
        [*cli, "keys", "revoke", key_id], check=True, capture_output=True, env=env, timeout=60
    )
    r = requests.get(
        f"{local_stack.base}/policies/status", headers=local_stack.headers(key), timeout=10
    )
    assert r.status_code == 401


def test_cli_reads_status_from_the_local_stack(local_stack: LocalStack) -> None:
    env = {**os.environ, "POLICYHUB_LOCAL_DIR": str(local_stack.local_dir)}
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "policyhub"), "--local", "status"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    assert "production:" in out and "memory_manager" in out

"""`policyhub --local traffic` against `make up`'s stack, on its own agent (memory_manager's
history, which other tests and the product-page examples rely on, is left alone)."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import time

import pytest

from policyhub.client import PolicyHubClient
from policyhub.ml.onnx_models import linear_policy, random_mlp_policy
from tests.e2e.conftest import ROOT, LocalStack, logged_records

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

AGENT = "traffic_agent"
CLI = str(ROOT / ".venv" / "bin" / "policyhub")
REPORT = re.compile(r"^\s+\d+\.\d s  sent (\d+)\s+[\d.]+/s \| production v1\.0\.0 \d+ ")


def test_without_production_it_says_so_in_one_line_and_exits_2(local_stack: LocalStack) -> None:
    done = subprocess.run(
        [CLI, "--local", "traffic", "-a", "traffic_nothing_yet", "--duration", "1"],
        env=local_stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.strip().splitlines() == [
        "agent traffic_nothing_yet has no production version: promote one first "
        "(simulated users need its feature schema)"
    ]
    assert done.stderr == ""


def test_users_rank_and_report_until_ctrl_c_and_every_visit_is_logged(
    local_stack: LocalStack,
) -> None:
    client = PolicyHubClient(local_stack.base, local_stack.admin_key)
    artifact = base64.b64encode(random_mlp_policy(4 + 3 + 1, 8, seed=1)).decode()
    client.register(artifact, 4, 3, AGENT, "traffic test")
    client.promote("v1.0.0", AGENT, "immediate")

    proc = subprocess.Popen(
        [CLI, "--local", "traffic", "-a", AGENT, "--rps", "10", "--seed", "3"],
        env=local_stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal: a shell running the tests in the background ignores SIGINT.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    try:
        header = proc.stdout.readline()
        report = proc.stdout.readline()  # the first one comes 5 s after the start
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, header + report + rest
    assert header.startswith(f"simulated users of {AGENT} (production v1.0.0, 4+3 features")
    match = REPORT.match(report)
    assert match and 40 <= int(match.group(1)) <= 51, report
    summary = re.search(
        r"interrupted after [\d.]+ s: (\d+) visits sent, [\d.]+/s \| "
        r"production v1\.0\.0 (\d+) \(100\.0%\) ok \d+%$",
        rest.strip(),
    )
    assert summary, rest
    sent, served = int(summary.group(1)), int(summary.group(2))
    assert sent == served >= int(match.group(1))

    deadline = time.monotonic() + 15
    while True:
        records = logged_records(local_stack, AGENT)
        decisions = {r["decision_id"]: r for r in records if r["type"] == "decision"}
        feedback = [r for r in records if r["type"] == "feedback"]
        if len(decisions) >= served and len(feedback) >= served:
            break
        assert time.monotonic() < deadline, f"{len(decisions)}, {len(feedback)} of {served}"
        time.sleep(0.3)
    assert len(decisions) == len(feedback) == served
    assert {f["decision_id"] for f in feedback} == set(decisions)
    assert all(d["variant"] == "production" and len(d["context"]) == 4 for d in decisions.values())
    assert 0 < sum(f["success"] for f in feedback) < served


def test_the_readme_local_promote_with_traffic_reaches_production_in_minutes(
    local_stack: LocalStack,
) -> None:
    """README: `policyhub --local traffic` in one terminal, then a promote with
    examples/local_pipeline.json. Production and candidate both rank by the retrieval score
    (the candidate with a constant offset), so the candidate is equal in every respect."""
    agent = "readme_agent"
    client = PolicyHubClient(local_stack.base, local_stack.admin_key)
    weights = [0.0] * 16 + [1.0]  # 8 context + 8 item features, then the retrieval score
    for bias in (0.0, 0.5):
        artifact = base64.b64encode(linear_policy(weights, bias)).decode()
        client.register(artifact, 8, 8, agent, "ranks by retrieval score")
    client.promote("v1.0.0", agent, "immediate")
    pipeline = json.loads((ROOT / "examples" / "local_pipeline.json").read_text())
    traffic = subprocess.Popen(
        [CLI, "--local", "traffic", "-a", agent, "--rps", "20"],
        env=local_stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rollout = client.promote("v1.0.1", agent, "safe", "README line", pipeline)
        # 4.7 min median, 8.9 min at most in 400 simulated rollouts (`bench.canary_sim
        # --setting readme`; 4-11 min seen under the whole suite). A step's own deadline
        # (900 s) is what fails a stuck rollout.
        deadline = time.monotonic() + 900
        while True:
            rollout = client.rollout(rollout["rollout_id"], agent)
            if rollout["state"] in ("rolled_back", "aborted") or rollout.get("ended_at"):
                break
            assert time.monotonic() < deadline, rollout["steps"][-1]
            time.sleep(2)
    finally:
        traffic.terminate()
        traffic.wait(timeout=30)
    assert rollout["state"] == "promoted", rollout["outcome_reason"]
    assert [s["verdict"] for s in rollout["steps"]] == ["healthy"] * 7
    assert client.status(agent)["production"]["version"] == "v1.0.1"

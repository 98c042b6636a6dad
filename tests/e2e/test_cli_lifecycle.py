"""The lifecycle commands of `policyhub --local` against `make up`'s stack, on their own agent."""

from __future__ import annotations

import base64
import re
import subprocess
import time

import pytest

from policyhub.client import ApiError, PolicyHubClient
from policyhub.ml.onnx_models import random_mlp_policy
from tests.e2e.conftest import ROOT, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

AGENT = "cli_agent"


def cli(stack: LocalStack, *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "policyhub"), "--local", *args],
        env={**stack.env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def versions(local_stack: LocalStack) -> PolicyHubClient:
    client = PolicyHubClient(local_stack.base, local_stack.admin_key)
    for seed in (1, 2, 3):
        artifact = base64.b64encode(random_mlp_policy(9, 8, seed=seed)).decode()
        client.register(artifact, 4, 4, AGENT, f"cli test {seed}")
    client.promote("v1.0.0", AGENT, "immediate")
    return client


def test_compare_prints_estimates_or_says_why_it_cannot(
    local_stack: LocalStack, versions: PolicyHubClient
) -> None:
    out = cli(local_stack, "compare", "v1.0.0", "v1.0.1", "-a", AGENT)
    assert "recommendation: collect_more_data" in out
    assert "no held-out decision with feedback" in out


def test_a_rollout_is_listed_and_aborted(
    local_stack: LocalStack, versions: PolicyHubClient
) -> None:
    started = cli(
        local_stack,
        "promote",
        "v1.0.1",
        "-a",
        AGENT,
        "--strategy",
        "canary",
        "--pipeline",
        '{"step_seconds": 600, "max_step_seconds": 7200}',
    )
    rollout_id = re.search(r'"rollout_id": "([^"]+)"', started)
    assert rollout_id, started
    listed = cli(local_stack, "rollouts", "list", "-a", AGENT)
    assert rollout_id.group(1) in listed and "canary" in listed
    aborted = cli(local_stack, "rollouts", "abort", rollout_id.group(1), "-a", AGENT)
    assert "aborted" in aborted
    # watch ends at once on a finished rollout, and says it was not promoted
    cli(local_stack, "rollouts", "watch", rollout_id.group(1), "-a", AGENT, ok=False)
    bad = cli(local_stack, "promote", "v1.0.1", "--pipeline", "[1]", "-a", AGENT, ok=False)
    assert "must be a JSON object" in bad


def test_an_experiment_starts_shows_and_stops(
    local_stack: LocalStack, versions: PolicyHubClient
) -> None:
    started = cli(
        local_stack,
        "experiments",
        "start",
        "--name",
        "cli",
        "-a",
        AGENT,
        "-v",
        "v1.0.0=50",
        "-v",
        "v1.0.2=50",
    )
    experiment_id = re.search(r"experiment (ex_\S+)", started)
    assert experiment_id, started
    shown = cli(local_stack, "experiments", "show", experiment_id.group(1), "-a", AGENT)
    assert "v1.0.0" in shown and "v1.0.2" in shown and "winner none yet" in shown
    stopped = cli(local_stack, "experiments", "stop", experiment_id.group(1), "-a", AGENT)
    assert "stopped" in stopped
    with pytest.raises(ApiError) as err:
        versions.stop_experiment(experiment_id.group(1), AGENT)
    assert err.value.status == 409


def test_train_and_jobs_show_the_job(local_stack: LocalStack, versions: PolicyHubClient) -> None:
    refused = cli(local_stack, "train", "-a", AGENT, ok=False)
    assert "409 insufficient_data" in refused
    out = cli(local_stack, "train", "-a", AGENT, "--force")
    job_id = out.split(" · ")[0].strip()
    deadline = time.monotonic() + 30
    while versions.training_job(job_id)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    listed = cli(local_stack, "jobs", "-a", AGENT)
    assert job_id in listed and "failed" in listed  # no logs for this agent: nothing to learn
    assert f'"job_id": "{job_id}"' in cli(local_stack, "jobs", "--id", job_id)

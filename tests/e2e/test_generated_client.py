"""A client generated from the local stack's own /v1/openapi.json with openapi-python-client
drives status -> list -> compare -> promote -> rollback (issue 14).

The client is generated into a temporary directory at test time and imported from there, so
the test exercises what any user of the document would get: typed models parsed from every
response (a field the document gets wrong fails `from_dict`), and every status the document
does not list raises (`raise_on_unexpected_status`).

openapi-python-client caps typer below the version the CLI needs, so it lives in its own
environment, `.venv/codegen` (`make test` makes it; tests/e2e/codegen-requirements.txt).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ROOT, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
AGENT = "memory_manager"  # the agent the local stack seeds with versions and logged data
PACKAGE = "policyhub_generated_client"


def _generator() -> str:
    found = os.environ.get("OPENAPI_PYTHON_CLIENT") or shutil.which(
        "openapi-python-client", path=str(ROOT / ".venv" / "codegen" / "bin")
    )
    if not found:
        pytest.fail(
            "openapi-python-client is not installed: make test installs it "
            "(or .venv/codegen/bin/pip install -r tests/e2e/codegen-requirements.txt)"
        )
    return found


def _generate(stack: LocalStack, into: Path) -> ModuleType:
    spec = into / "openapi.json"
    spec.write_bytes(requests.get(f"{stack.base}/openapi.json", timeout=30).content)
    config = into / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    out = subprocess.run(
        [
            _generator(),
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(into / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # It generates every operation and model, or says what it skipped.
    assert "Warning" not in out.stdout + out.stderr, out.stdout + out.stderr
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(into))


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_drives_status_list_compare_promote_rollback(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    generated = _generate(local_stack, tmp_path)
    models = _module("models")
    client = generated.AuthenticatedClient(
        base_url=local_stack.base.removesuffix("/v1"),
        token=local_stack.admin_key,
        raise_on_unexpected_status=True,
        timeout=60,
    )

    status = _module("api.policies.get_status").sync(client=client, agent_type=AGENT)
    assert isinstance(status, models.StatusResponse), status
    assert status.rollout is None and status.production is not None
    production = status.production.version
    schema = status.production.feature_schema

    page = _module("api.policies.list_policies").sync(
        client=client, agent_type=AGENT, status=models.PolicyStatus.CANDIDATE, limit=100
    )
    assert isinstance(page, models.PolicyPage), page
    candidates = [v for v in page.items if v.feature_schema.to_dict() == schema.to_dict()]
    assert candidates, "the seed has candidates with production's feature schema"
    candidate = candidates[-1].version  # the oldest such candidate: trained on the most data

    compared = _module("api.policies.compare_policies").sync(
        client=client,
        body=models.CompareRequest(
            baseline_version=production, candidate_version=candidate, agent_type=AGENT
        ),
    )
    assert isinstance(compared, models.CompareResponse), compared
    assert compared.n_samples > 0 and compared.baseline.estimated_reward is not None
    assert compared.recommendation in set(models.CompareResponseRecommendation)

    # A safe promote answers 202 with the Rollout; an hour of shadow keeps it there.
    started = _module("api.policies.promote_policy").sync(
        client=client,
        body=models.PromoteRequest(
            version=candidate,
            agent_type=AGENT,
            strategy=models.PromoteRequestStrategy.SAFE,
            reason="generated client e2e",
            pipeline=models.PipelineConfig(shadow_seconds=3600, max_step_seconds=7200),
        ),
    )
    assert isinstance(started, models.Rollout), started
    assert started.state == models.RolloutState.SHADOW
    assert started.candidate_version == candidate and started.baseline_version == production
    assert started.config.shadow_seconds == 3600

    # Emergency rollback to production while the rollout runs: the rollout is aborted.
    restored = _module("api.policies.rollback_policy").sync(
        client=client,
        body=models.RollbackRequest(version=production, agent_type=AGENT, reason="e2e"),
    )
    assert isinstance(restored, models.RollbackResponse), restored
    assert restored.version == production
    assert restored.aborted_rollout_id == started.rollout_id

    after = _module("api.policies.get_status").sync(client=client, agent_type=AGENT)
    assert isinstance(after, models.StatusResponse)
    assert after.rollout is None and after.production is not None
    assert after.production.version == production
    get_policy = _module("api.policies.get_policy")
    again = get_policy.sync(client=client, version=candidate, agent_type=AGENT)
    assert isinstance(again, models.PolicyVersion)
    assert again.status == models.PolicyStatus.CANDIDATE  # promotable again after an abort

    # Errors are the documented envelope, typed per operation and status.
    missing = get_policy.sync(client=client, version="v99.0.0")
    assert type(missing).__name__ == "GetPolicyResponse404"
    assert str(missing.error.code) == "version_not_found"

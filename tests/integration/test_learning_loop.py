"""Train, training jobs, compare and the schedule through the handlers on moto."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.functions import load_handler
from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import partition, split_key
from policyhub.adapters.local_jobs import ThreadJobRunner
from policyhub.api import container
from policyhub.domain.holdout import split_of
from policyhub.domain.interaction_records import InteractionRecord
from policyhub.ml.onnx_models import linear_policy
from policyhub.settings import settings
from tests.support.api import Api, error_code
from tests.support.learning import simulated_records

pytestmark = pytest.mark.integration
CTX = ITEM = 3
DIM = CTX + ITEM + 1


def write_logs(records: Sequence[InteractionRecord]) -> None:
    """Put records where the log sink would: one JSON-lines object per partition."""
    groups: dict[str, list[InteractionRecord]] = defaultdict(list)
    for r in records:
        at = datetime.fromisoformat(r["at"].replace("Z", "+00:00"))
        groups[partition(r["tenant_id"], r["agent_type"], at, split_of(r["decision_id"]))].append(r)
    for i, (prefix, rows) in enumerate(sorted(groups.items())):
        body = "".join(json.dumps(r) + "\n" for r in rows).encode()
        aws.s3().put_object(
            Bucket=settings().interaction_bucket, Key=f"{prefix}seed-{i}.jsonl", Body=body
        )


def register(api: Api, weights: list[float]) -> str:
    r = api.post(
        "/policies",
        {
            "artifact_base64": base64.b64encode(linear_policy(weights)).decode(),
            "feature_schema": {"context_dim": CTX, "item_dim": ITEM},
        },
    )
    assert r.status == 201, r.body
    version: str = r.json()["version"]
    return version


RETRIEVAL = [0.0] * (DIM - 1) + [1.0]
UNIFORM = [0.0] * DIM  # constant scores: every candidate equally likely


def wait_for_jobs() -> None:
    runner = container.job_runner()
    assert isinstance(runner, ThreadJobRunner)
    runner.wait_idle()


@pytest.fixture
def logged(admin: Api) -> Api:
    """acme: production v1.0.0 scores by retrieval, which logged 2,500 decisions with feedback."""
    production = register(admin, RETRIEVAL)
    promoted = admin.post("/policies/promote", {"version": production, "strategy": "immediate"})
    assert promoted.status == 200
    write_logs(
        simulated_records(
            2500, tenant_id="acme", end=datetime.now(UTC), policy_version=production
        )
    )
    return admin


def test_train_runs_a_job_that_registers_a_candidate_with_lineage(logged: Api) -> None:
    r = logged.post("/policies/train", {"agent_type": "memory_manager"})
    assert r.status == 202, r.body
    job = r.json()
    assert (job["status"], job["trigger"], job["agent_type"]) == ("queued", "api", "memory_manager")
    assert job["new_interactions"] == 2500
    wait_for_jobs()
    done = logged.get(f"/policies/training-jobs/{job['job_id']}").json()
    assert done["status"] == "succeeded", done
    assert (done["candidate_version"], done["interactions_used"], done["error"]) == (
        "v1.0.1",
        2500,
        None,
    )
    assert done["started_at"] and done["finished_at"]
    version = logged.get("/policies/v1.0.1").json()
    assert version["status"] == "candidate"
    assert (version["parent_version"], version["training_job_id"]) == ("v1.0.0", job["job_id"])
    assert version["trained_on"]["interactions"] == 2500
    assert version["trained_on"]["window_end"] == job["window_end"]
    assert version["metrics"]["offline"]["onnx_max_abs_diff"] < 1e-4
    listed = logged.get("/policies/training-jobs").json()
    assert [j["job_id"] for j in listed["items"]] == [job["job_id"]]
    audit = logged.get("/policies/audit").json()["items"]
    assert [e["action"] for e in audit[:3]] == ["train", "register", "train"]
    # Nothing new since that training's window: the next request needs force.
    again = logged.post("/policies/train", {})
    assert again.status == 409 and error_code(again) == "insufficient_data"


def test_train_with_too_few_interactions_is_409_unless_forced(admin: Api) -> None:
    write_logs(simulated_records(40, tenant_id="acme", end=datetime.now(UTC)))
    r = admin.post("/policies/train", {})
    assert r.status == 409 and error_code(r) == "insufficient_data"
    assert "40 new interactions" in r.json()["error"]["message"]
    forced = admin.post("/policies/train", {"force": True})
    assert forced.status == 202
    wait_for_jobs()
    job = admin.get(f"/policies/training-jobs/{forced.json()['job_id']}").json()
    # 40 decisions leave fewer than the trainer's 50 training decisions: nothing is registered.
    assert job["status"] == "failed" and "training decisions" in job["error"]
    assert admin.get("/policies/status").json()["total_versions"] == 0


def test_unknown_training_job_is_404(admin: Api) -> None:
    r = admin.get("/policies/training-jobs/tj-20260101T000000.000000-deadbeef")
    assert r.status == 404 and error_code(r) == "job_not_found"


def test_compare_through_the_handler_gives_a_verdict(logged: Api) -> None:
    worse = register(logged, UNIFORM)
    r = logged.post(
        "/policies/compare",
        {"baseline_version": "v1.0.0", "candidate_version": worse, "min_samples": 200},
    )
    assert r.status == 200, r.body
    body = r.json()
    assert body["recommendation"] == "keep_current" and body["is_improvement"] is False
    assert body["method"] == "doubly_robust" and body["n_samples"] >= 200
    assert body["lift"]["ci_high"] < 0 < body["effective_sample_size"]
    assert body["candidate"]["estimated_reward"] < body["baseline"]["estimated_reward"]
    assert body["shadow"] is None and body["snips"]["lift"]["absolute"] < 0
    # ~500 held-out decisions: the reward model also learns from the ~2,000 training ones.
    pattern = re.compile(r"fit on (\d+) decisions of the training part")
    counts = [int(m[1]) for m in map(pattern.search, body["reasons"]) if m]
    assert len(counts) == 1 and counts[0] > 1500, body["reasons"]
    flipped = logged.post(
        "/policies/compare",
        {"baseline_version": worse, "candidate_version": "v1.0.0", "min_samples": 200},
    ).json()
    assert flipped["recommendation"] == "promote" and flipped["is_improvement"] is True


def test_compare_fetches_only_held_out_objects_for_its_estimate(
    logged: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 131: the held-out fifth is read alone; the training part is read after it,
    only because ~500 held-out decisions are too few for the reward model by themselves."""
    from policyhub.adapters.interaction_log_reader import S3InteractionLog

    reads: list[list[str]] = []
    download, table = S3InteractionLog._download, S3InteractionLog.table

    def counted(self: S3InteractionLog, entry: tuple[str, str]) -> object:
        reads[-1].append(entry[0])
        return download(self, entry)

    def read(self: S3InteractionLog, *args: Any) -> object:
        reads.append([])
        return table(self, *args)

    monkeypatch.setattr(S3InteractionLog, "_download", counted)
    monkeypatch.setattr(S3InteractionLog, "table", read)
    body = {"baseline_version": "v1.0.0", "candidate_version": "v1.0.0", "min_samples": 200}
    r = logged.post("/policies/compare", body)
    assert r.status == 200, r.body
    listed = aws.s3().list_objects_v2(Bucket=settings().interaction_bucket)["Contents"]
    by_split = {split: {o["Key"] for o in listed if split_key(o["Key"]) == split}
                for split in ("holdout", "train")}  # fmt: skip
    assert [set(keys) for keys in reads] == [by_split["holdout"], by_split["train"]]


def test_compare_with_too_few_samples_asks_for_more_data(logged: Api) -> None:
    r = logged.post(
        "/policies/compare",
        {"baseline_version": "v1.0.0", "candidate_version": "v1.0.0", "min_samples": 1000},
    )
    body = r.json()
    assert r.status == 200 and body["recommendation"] == "collect_more_data"
    assert body["n_samples"] < 1000 and any("minimum 1000" in x for x in body["reasons"])


def test_compare_of_an_unknown_version_is_404(logged: Api) -> None:
    r = logged.post(
        "/policies/compare", {"baseline_version": "v1.0.0", "candidate_version": "v9.9.9"}
    )
    assert r.status == 404 and error_code(r) == "version_not_found"


def test_a_window_whose_logs_do_not_fit_the_local_disk_is_422_before_anything_is_fetched(
    logged: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In AWS the reader's disk is the analysis function's ephemeral storage: a window larger
    than it is the caller's to shorten, not a failure halfway through the download."""
    from policyhub.adapters.interaction_log_reader import S3InteractionLog

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1000))
    downloads: list[tuple[str, str]] = []
    download = S3InteractionLog._download

    def counted(self: S3InteractionLog, entry: tuple[str, str]) -> object:
        downloads.append(entry)
        return download(self, entry)

    monkeypatch.setattr(S3InteractionLog, "_download", counted)
    body = {"baseline_version": "v1.0.0", "candidate_version": "v1.0.0"}
    r = logged.post("/policies/compare", body)
    assert r.status == 422 and error_code(r) == "validation_error", r.body
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == "body.window_hours"
    assert "GB of local disk" in detail["issue"] and "shorter window" in detail["issue"]
    assert downloads == []
    monkeypatch.setattr(shutil, "disk_usage", real)
    assert logged.post("/policies/compare", body).status == 200


def test_compare_of_versions_that_do_not_fit_the_logs_is_422(logged: Api) -> None:
    wide = logged.post(
        "/policies",
        {
            "artifact_base64": base64.b64encode(linear_policy([0.0] * 10 + [1.0])).decode(),
            "feature_schema": {"context_dim": 5, "item_dim": 5},
        },
    ).json()["version"]
    mixed = logged.post(
        "/policies/compare", {"baseline_version": "v1.0.0", "candidate_version": wide}
    )
    assert mixed.status == 422 and error_code(mixed) == "feature_dimension_mismatch"
    other = logged.post(
        "/policies/compare", {"baseline_version": wide, "candidate_version": wide}
    )
    assert other.status == 422 and "decisions logged" in other.json()["error"]["message"]


def test_schedule_handler_starts_training_once_for_agents_with_enough_data(logged: Api) -> None:
    now = datetime.now(UTC)
    write_logs(simulated_records(30, tenant_id="globex", agent_type="search", end=now))
    schedule = load_handler("training_schedule")
    first = schedule({"source": "aws.events"}, None)
    assert [(s["tenant_id"], s["agent_type"]) for s in first["started"]] == [
        ("acme", "memory_manager")
    ]
    assert first["skipped"] == [
        {"tenant_id": "globex", "agent_type": "search", "reason": "insufficient_data"}
    ]
    second = schedule({"source": "aws.events"}, None)
    assert second["started"] == [] and second["errors"] == []
    wait_for_jobs()
    third = schedule({"source": "aws.events"}, None)
    assert third["started"] == []
    jobs = logged.get("/policies/training-jobs").json()["items"]
    assert [(j["trigger"], j["status"]) for j in jobs] == [("schedule", "succeeded")]

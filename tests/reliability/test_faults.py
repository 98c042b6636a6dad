"""Fault injection on the embedded AWS: what the caller sees, and that nothing is lost or
half-written. Faults are injected at the botocore boundary (tests/reliability/faults.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import DEAD_LETTER_PREFIX, PREFIX
from policyhub.adapters.s3_artifacts import artifact_key
from policyhub.api import container
from policyhub.settings import settings
from tests.reliability import tally
from tests.reliability.faults import Fault, injected, s3_key_contains
from tests.reliability.support import (
    AGENT,
    ProbeApi,
    artifact_b64,
    bucket_objects,
    first_eight_rows_policy,
    nan_on_large_inputs_policy,
    promote,
    rank_body,
    register,
    table_snapshot,
)
from tests.support.api import new_key
from tests.support.interactions import logged, object_records

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability-faults")]


@pytest.fixture
def acme(embedded_aws: None, monkeypatch: pytest.MonkeyPatch) -> ProbeApi:
    """acme with v1.0.0 retired, v1.0.1 in production and v1.0.2 a candidate; EMF on stdout,
    as in AWS (the local stack puts its metrics to the embedded CloudWatch instead unless rollout
    health comes from the logs, decision 120)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POLICYHUB_HEALTH_SOURCE", "logs")
    monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0")
    container.reset()
    api = ProbeApi(new_key("acme"), fault_injected=True)
    versions = [register(api, seed) for seed in range(3)]
    for v in versions[:2]:
        assert promote(api, v).status == 200
    return api


def _sha(api: ProbeApi, version: str) -> str:
    sha: str = api.get(f"/policies/{version}").json()["artifact"]["sha256"]
    return sha


def _emf_errors(out: str) -> list[tuple[str, float]]:
    """(variant, Errors) of each EMF document printed on stdout."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            if "Errors" in doc and "agent_type" in doc:
                errors = doc["Errors"]
                total = sum(errors) if isinstance(errors, list) else errors
                found.append((doc["variant"], float(total)))
    return found


# ---- bad artifacts never fail the request ---------------------------------------------------
def _put_artifact(sha: str, body: bytes) -> None:
    aws.s3().put_object(
        Bucket=settings().artifact_bucket, Key=artifact_key("acme", AGENT, sha), Body=body
    )


def _delete_artifact(sha: str) -> None:
    bucket, key = settings().artifact_bucket, artifact_key("acme", AGENT, sha)
    versions = aws.s3().list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    for v in versions:
        aws.s3().delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])


ARTIFACT_FAULTS = [("missing", "missing"), ("corrupt", "sha256"), ("oversized", "cap")]


def test_a_bad_production_artifact_falls_back_to_retrieval_logged_and_counted(
    acme: ProbeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    sha = _sha(acme, "v1.0.1")
    original = aws.s3().get_object(
        Bucket=settings().artifact_bucket, Key=artifact_key("acme", AGENT, sha)
    )["Body"].read()
    before = table_snapshot()
    for fault, logged_error in ARTIFACT_FAULTS:
        container.rank_service()._sessions.evict(sha)  # a cold container meets the bad bytes
        if fault == "missing":
            _delete_artifact(sha)
        elif fault == "corrupt":
            _put_artifact(sha, original[:-1] + bytes([original[-1] ^ 1]))
        else:
            _put_artifact(sha, original + b"\0" * settings().max_artifact_bytes)
        tally.count("faults")
        capsys.readouterr()
        r = acme.post("/rank", rank_body())
        assert r.status == 200, (fault, r.body)
        assert (r.json()["variant"], r.json()["policy_version"]) == ("retrieval", None)
        assert ("production", 1.0) in _emf_errors(capsys.readouterr().out), "counted"
        decision = next(d for d in logged("acme") if d["decision_id"] == r.json()["decision_id"])
        assert decision["failed_version"] == "v1.0.1" and logged_error in decision["error"]
        assert table_snapshot() == before, "serving never writes the registry"
        _put_artifact(sha, original)  # healed: the next request serves the policy again
        assert acme.post("/rank", rank_body()).json()["policy_version"] == "v1.0.1"


@pytest.mark.parametrize(
    ("model", "why"),
    [(nan_on_large_inputs_policy, "non-finite"), (first_eight_rows_policy, "shape")],
    ids=["nan-output", "shape-error"],
)
def test_an_onnx_that_fails_at_run_time_never_fails_the_request(
    acme: ProbeApi, capsys: pytest.CaptureFixture[str], model: Any, why: str
) -> None:
    version = register(acme, 0, artifact=model())
    assert promote(acme, version).status == 200, "the registration probe cannot see it coming"
    tally.count("faults")
    capsys.readouterr()
    r = acme.post("/rank", rank_body(n=10, value=50.0))
    assert r.status == 200 and r.json()["variant"] == "retrieval"
    assert sorted(i["id"] for i in r.json()["ranking"]) == sorted(f"doc-{i}" for i in range(10))
    assert ("production", 1.0) in _emf_errors(capsys.readouterr().out)
    decision = next(d for d in logged("acme") if d["decision_id"] == r.json()["decision_id"])
    assert decision["failed_version"] == version and why in decision["error"]
    fb = acme.post("/feedback", {"decision_id": r.json()["decision_id"], "success": False})
    assert fb.status == 202, "the fallback decision still takes feedback"


# ---- DynamoDB throttling and transaction conflicts ------------------------------------------
def _is_clean(r: Any, status: int, code: str) -> None:
    assert r.status == status, r.body
    err = r.json()["error"]
    assert err["code"] == code and err["request_id"]
    assert "Traceback" not in r.body.decode() and "botocore" not in r.body.decode()


def _not_a_key_lookup(request: dict[str, Any]) -> bool:
    body = request.get("body") or b""
    return b"KEY#" not in (body if isinstance(body, bytes) else body.encode())


def _throttled(op: str, **kw: Any) -> Fault:
    return Fault("dynamodb", op, "ProvisionedThroughputExceededException", **kw)


MOVES = [
    ("promote", {"version": "v1.0.2", "strategy": "immediate"}),
    ("rollback", {"version": "v1.0.0", "agent_type": AGENT}),
]


@pytest.mark.parametrize(("op", "body"), MOVES, ids=[m[0] for m in MOVES])
def test_throttled_promote_or_rollback_is_a_clean_503_and_writes_nothing(
    acme: ProbeApi, op: str, body: dict[str, Any]
) -> None:
    before = table_snapshot()
    with injected(_throttled("TransactWriteItems")):
        r = acme.post(f"/policies/{op}", body)
    _is_clean(r, 503, "service_unavailable")
    assert table_snapshot() == before, "nothing half-written"
    assert acme.post(f"/policies/{op}", body).status == 200, "the retry succeeds"


@pytest.mark.parametrize(("op", "body"), MOVES, ids=[m[0] for m in MOVES])
def test_a_transaction_conflict_on_promote_or_rollback_is_409_and_writes_nothing(
    acme: ProbeApi, op: str, body: dict[str, Any]
) -> None:
    before = table_snapshot()
    conflicts = [
        Fault("dynamodb", "TransactWriteItems", "TransactionConflictException"),
        Fault(
            "dynamodb",
            "TransactWriteItems",
            "TransactionCanceledException",
            reasons=["TransactionConflict", "None"],
        ),
    ]
    for fault in conflicts:
        with injected(fault):
            r = acme.post(f"/policies/{op}", body)
        _is_clean(r, 409, "concurrent_change")
    assert table_snapshot() == before


def test_throttled_reads_and_constraint_writes_are_clean_503s(acme: ProbeApi) -> None:
    before = table_snapshot()
    # The authorizer's key lookup is left alone here (see the next test).
    with injected(_throttled("GetItem", when=_not_a_key_lookup), _throttled("Query")):
        _is_clean(acme.get("/policies/status"), 503, "service_unavailable")
        _is_clean(acme.get("/policies"), 503, "service_unavailable")
        _is_clean(acme.get("/policies/v1.0.1"), 503, "service_unavailable")
    with injected(_throttled("TransactWriteItems")):
        r = acme.post_json("PUT", "/policies/constraints", {"max_items_per_source": 2})
        _is_clean(r, 503, "service_unavailable")
    with injected(Fault("dynamodb", "TransactWriteItems", "TransactionConflictException")):
        r = acme.post_json("PUT", "/policies/constraints", {"max_items_per_source": 2})
        _is_clean(r, 409, "concurrent_change")
    assert table_snapshot() == before


def test_register_with_s3_down_is_503_and_leaves_the_registry_untouched(acme: ProbeApi) -> None:
    before = table_snapshot()
    with injected(Fault("s3", "PutObject", "SlowDown", status=503)):
        r = acme.post(
            "/policies",
            {
                "artifact_base64": artifact_b64(42),
                "feature_schema": {"context_dim": 2, "item_dim": 3},
            },
        )
    _is_clean(r, 503, "service_unavailable")
    assert table_snapshot() == before


def test_feedback_with_the_idempotency_table_throttled_is_503_and_retry_records_once(
    acme: ProbeApi,
) -> None:
    d = acme.post("/rank", rank_body()).json()["decision_id"]
    with injected(_throttled("PutItem")):
        _is_clean(acme.post("/feedback", {"decision_id": d, "success": True}), 503,
                  "service_unavailable")
    for _ in range(2):
        assert acme.post("/feedback", {"decision_id": d, "success": True}).status == 202
    assert sum(1 for r in logged("acme") if r["type"] == "feedback") == 1


# ---- interaction-log sink failures ----------------------------------------------------------
def _records_everywhere(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """decision ids found in the log prefix, the dead-letter prefix and the error log."""
    bucket = settings().interaction_bucket
    seen: dict[str, int] = {}
    for prefix in (PREFIX, DEAD_LETTER_PREFIX):
        for body in bucket_objects(bucket, prefix + "/").values():
            for found in object_records(body):
                seen[found["decision_id"] + found["type"]] = seen.get(found["decision_id"], 0) + 1
    for rec in caplog.records:
        if rec.getMessage().startswith("interaction record not delivered: "):
            r = json.loads(rec.getMessage().split(": ", 1)[1])
            seen[r["decision_id"] + r["type"]] = 1
    return seen


N_REQUESTS = tally.sized(8, 60)


@pytest.mark.parametrize("outage", ["log-prefix", "all-of-s3"])
def test_log_sink_failures_never_fail_a_request_and_lose_no_record(
    acme: ProbeApi, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    caplog.set_level(logging.WARNING, logger="policyhub.logs")
    sink = container.log_sink()
    sink.flush()  # type: ignore[union-attr]
    only = s3_key_contains(f"/{PREFIX}/") if outage == "log-prefix" else (lambda request: True)
    expected: set[str] = set()
    with injected(Fault("s3", "PutObject", "SlowDown", status=503, when=only)):
        for _ in range(N_REQUESTS):
            r = acme.post("/rank", rank_body())
            assert r.status == 200
            d = r.json()["decision_id"]
            assert acme.post("/feedback", {"decision_id": d, "reward": 0.5}).status == 202
            expected |= {d + "decision", d + "feedback"}
        sink.flush()  # type: ignore[union-attr]
    stats = sink.stats
    assert stats.retries > 0
    if outage == "log-prefix":
        assert stats.dead_lettered >= len(expected) and stats.lost == 0
    else:
        assert stats.lost >= len(expected), "counted, and written in full to the error log"
    missing = expected - set(_records_everywhere(caplog))
    tally.count("data_lost", len(missing))
    assert not missing


def test_firehose_down_dead_letters_every_record_and_the_request_succeeds(
    acme: ProbeApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POLICYHUB_LOG_STREAM", "interactions-stream")
    container.reset()
    expected = set()
    with injected(Fault("firehose", "PutRecord", "ServiceUnavailableException", status=503)):
        for _ in range(3):
            r = acme.post("/rank", rank_body())
            assert r.status == 200
            expected.add(r.json()["decision_id"] + "decision")
    stats = container.log_sink().stats
    assert (stats.delivered, stats.dead_lettered, stats.lost) == (0, 3, 0)
    missing = expected - set(_records_everywhere(caplog))
    tally.count("data_lost", len(missing))
    assert not missing


def test_a_throttled_key_lookup_is_a_retryable_503_not_a_401(acme: ProbeApi) -> None:
    # API Gateway answers AUTHORIZER_FAILURE, which the stack maps to 503 in the envelope.
    with injected(_throttled("GetItem")):
        _is_clean(acme.get("/policies/status"), 503, "service_unavailable")
    assert acme.get("/policies/status").status == 200

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from policyhub.adapters.emf_metrics import EmfRolloutMetrics, EmfServingMetrics
from policyhub.domain import latency_buckets


def test_a_rollback_is_counted_by_agent_in_one_emf_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    EmfRolloutMetrics().rollback("memory_manager", "auto")
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    meta = doc["_aws"]["CloudWatchMetrics"][0]
    assert meta["Namespace"] == "PolicyHub" and meta["Dimensions"] == [["agent_type"]]
    assert [m["Name"] for m in meta["Metrics"]] == ["Rollbacks"]
    assert doc["agent_type"] == "memory_manager" and doc["Rollbacks"] == [1.0]


def test_metrics_stay_silent_when_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    EmfRolloutMetrics().rollback("memory_manager", "manual")
    assert capsys.readouterr().out == ""


def test_a_decision_in_a_rollout_is_one_emf_document_under_both_dimension_sets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    EmfServingMetrics().decision("memory_manager", "canary", "ro_1", None, 3.5, True, 2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    meta = doc["_aws"]["CloudWatchMetrics"][0]
    assert meta["Dimensions"] == [["agent_type", "variant"], ["rollout_id", "variant"]]
    assert {m["Name"] for m in meta["Metrics"]} == {
        "Requests", "Latency", "Errors", "ConstraintViolations",
    }  # fmt: skip
    assert (doc["agent_type"], doc["variant"], doc["rollout_id"]) == (
        "memory_manager", "canary", "ro_1",
    )  # fmt: skip
    assert doc["Latency"] == [3.5] and doc["Errors"] == [1.0]
    assert doc["ConstraintViolations"] == [2.0]


def test_outside_rollouts_decisions_and_feedback_count_by_agent_and_variant_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics = EmfServingMetrics()
    metrics.decision("memory_manager", "production", None, None, 1.0, False, 0)
    metrics.feedback("memory_manager", "production", None, success=False)
    metrics.feedback("memory_manager", "production", None, success=None)  # nothing to count
    docs = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["agent_type", "variant"]]
        assert "rollout_id" not in doc
    assert docs[1]["Failures"] == [1.0]


def test_serving_metrics_stay_silent_when_disabled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = EmfServingMetrics()
    metrics.decision("memory_manager", "canary", "ro_1", None, 3.5, False, 0)
    metrics.feedback("memory_manager", "canary", "ro_1", success=True)
    assert capsys.readouterr().out == ""


def test_a_rollout_decision_counts_its_health_metrics_under_the_rollout_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    EmfServingMetrics().decision(
        "memory_manager", "production", "ro_1", None, 3.5, False, 2, shadow=True, shadow_error=True
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    serving, health = doc["_aws"]["CloudWatchMetrics"]
    assert serving["Dimensions"] == [["agent_type", "variant"], ["rollout_id", "variant"]]
    assert health["Namespace"] == "PolicyHub"
    assert health["Dimensions"] == [["rollout_id", "variant"]]
    bucket = latency_buckets.metric_name(3.5)
    names = {m["Name"] for m in health["Metrics"]}
    decade = latency_buckets.decade_name(3.5)
    assert names == {bucket, decade, "ViolatingDecisions", "ShadowDecisions", "ShadowErrors"}
    assert all(doc[name] == 1.0 for name in names)
    # Requests and Errors are the first directive's: no name is in both
    assert not names & {m["Name"] for m in serving["Metrics"]}


def test_experiment_decisions_carry_no_health_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    EmfServingMetrics().decision("memory_manager", "experiment", None, "ex_1", 3.5, False, 0)
    doc = json.loads(capsys.readouterr().out.strip())
    assert len(doc["_aws"]["CloudWatchMetrics"]) == 1


def test_counting_health_metrics_keeps_the_rollout_model_off_the_rank_path() -> None:
    """Decision 096: rank's cold start loads what rank needs; the health counts need names."""
    code = (
        "import sys, policyhub.services.ranking, policyhub.adapters.emf_metrics, "
        "policyhub.adapters.cloudwatch_metric_sink\n"
        "print(sorted(m for m in ('policyhub.domain.rollout', 'policyhub.domain.health',"
        " 'policyhub.domain.health_sums') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_document_is_what_powertools_writes_for_the_same_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Documents are filled into a skeleton Powertools built once (decision 128): each call's
    values and timestamp are its own, the rest is byte for byte Powertools' document."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics = EmfServingMetrics()
    metrics.decision("memory_manager", "canary", "ro_1", None, 3.5, True, 2)
    metrics.decision("memory_manager", "canary", "ro_1", None, 7.25, False, 0)
    first, second = (json.loads(x) for x in capsys.readouterr().out.strip().splitlines())
    reference = EphemeralMetrics(namespace="PolicyHub", service="")
    reference.add_dimension("agent_type", "memory_manager")
    reference.add_dimension("variant", "canary")
    reference.add_dimensions(rollout_id="ro_1", variant="canary")
    for name, unit, value in [("Requests", MetricUnit.Count, 1.0),
                              ("Latency", MetricUnit.Milliseconds, 7.25),
                              ("Errors", MetricUnit.Count, 0.0),
                              ("ConstraintViolations", MetricUnit.Count, 0.0)]:  # fmt: skip
        reference.add_metric(name=name, unit=unit, value=value)
    expected = json.loads(json.dumps(reference.serialize_metric_set()))
    expected["_aws"]["CloudWatchMetrics"].append(second["_aws"]["CloudWatchMetrics"][1])
    for doc in (first, second):
        assert abs(doc["_aws"].pop("Timestamp") - expected["_aws"]["Timestamp"]) < 60_000
    expected["_aws"].pop("Timestamp")
    health = {k: 1.0 for k in second if k not in expected}
    assert second == {**expected, **health}
    assert first["Latency"] == [3.5] and first["Errors"] == [1.0]
    assert first["ConstraintViolations"] == [2.0] and "ViolatingDecisions" in first
    assert "ViolatingDecisions" not in second

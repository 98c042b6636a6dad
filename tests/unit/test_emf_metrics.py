from __future__ import annotations

import json

import pytest

from policyhub.adapters.emf_metrics import EmfRolloutMetrics


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

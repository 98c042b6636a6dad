"""LogWindow: the window's shadow agreement, asked of the records `where` accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from policyhub.adapters.log_table import LogTable
from policyhub.domain.interaction_records import DecisionRecord, ShadowRun, decision_record
from policyhub.services.logged_data import LogWindow

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _decision(i: int, shadow: ShadowRun | None) -> DecisionRecord:
    return decision_record(
        tenant_id="t", agent_type="a", decision_id=f"d{i}", at=AT, policy_version="v1",
        variant="production", context=[1.0],
        candidates=[{"id": c, "retrieval_score": 0.5, "features": [0.0]} for c in "abc"],
        ranking=["a", "b", "c"], chosen_id="a", propensity=0.5, epsilon=0.1, temperature=1.0,
        latency_ms=1.0, shadow=shadow,
    )  # fmt: skip


def _shadow(version: str, ranking: list[str], error: str | None = None) -> ShadowRun:
    return {"policy_version": version, "ranking": ranking, "error": error}


def test_shadow_agreement_counts_the_shadows_of_the_version_that_ran() -> None:
    records = [
        _decision(0, _shadow("v2", ["a", "b", "c"])),
        _decision(1, _shadow("v2", ["b", "a", "c"])),
        _decision(2, _shadow("v2", [], "timeout")),
        _decision(3, _shadow("v3", ["a", "b", "c"])),
        _decision(4, None),
        _decision(5, _shadow("v2", ["c", "b", "a"])),
    ]
    with LogTable.of(records) as table:
        window = LogWindow(table, "decision_id != 'd5'")
        agreement = window.shadow_agreement("v2")
        every = window.shadow_agreement()
        none = window.shadow_agreement("v9")
    assert (agreement.decisions, agreement.top1_agreement) == (2, 0.5)
    assert (every.decisions, every.top1_agreement) == (3, 2 / 3)
    assert (none.decisions, none.top1_agreement) == (0, None)

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyhub.adapters.log_table import LogTable
from policyhub.ml.shadow import shadow_agreement, spearman
from policyhub.services.logged_data import LogWindow


def test_spearman_by_hand() -> None:
    # d = (0, 1, 1): 1 - 6·2 / (3·8)
    assert spearman(["a", "b", "c"], ["a", "c", "b"]) == pytest.approx(0.5)
    assert spearman(["a", "b", "c"], ["c", "b", "a"]) == pytest.approx(-1.0)


def test_spearman_uses_only_shared_ids() -> None:
    assert spearman(["a", "x", "b", "c"], ["a", "b", "y", "c"]) == pytest.approx(1.0)
    assert spearman(["a", "b"], ["a", "z"]) is None


@given(st.permutations(list("abcdefgh")))
def test_spearman_is_one_with_itself_and_minus_one_reversed(order: list[str]) -> None:
    assert spearman(order, order) == pytest.approx(1.0)
    assert spearman(order, order[::-1]) == pytest.approx(-1.0)


def test_agreement_counts_top1_matches_and_averages_correlation() -> None:
    result = shadow_agreement(
        [["a", "b", "c"], ["a", "b", "c"]],
        [["a", "c", "b"], ["c", "b", "a"]],
    )
    assert result.decisions == 2
    assert result.top1_agreement == pytest.approx(0.5)
    assert result.rank_correlation == pytest.approx((0.5 - 1.0) / 2)


def test_agreement_from_records_skips_failed_and_missing_shadows() -> None:
    records: list[dict[str, Any]] = [
        {"ranking": ["a", "b"], "shadow": {"policy_version": "v1.0.1", "ranking": ["a", "b"],
                                           "error": None}},
        {"ranking": ["a", "b"], "shadow": {"policy_version": "v1.0.1", "ranking": [],
                                           "error": "timeout"}},
        {"ranking": ["a", "b"], "shadow": None},
        {"ranking": ["a", "b"], "shadow": {"policy_version": "v9.0.0", "ranking": ["b", "a"],
                                           "error": None}},
    ]
    decisions = [{"type": "decision", "decision_id": f"d{i}", **r} for i, r in enumerate(records)]
    with LogTable.of(decisions) as table:
        result = LogWindow(table).shadow_agreement(shadow_version="v1.0.1")
        assert LogWindow(table).shadow_agreement().decisions == 2
    assert (result.decisions, result.top1_agreement, result.rank_correlation) == (1, 1.0, 1.0)
    with LogTable.of([]) as empty:
        assert LogWindow(empty).shadow_agreement().decisions == 0

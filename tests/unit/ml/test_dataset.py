from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from policyhub.adapters.log_table import join_logs
from policyhub.domain.holdout import in_holdout
from policyhub.domain.interaction_records import (
    DecisionRecord,
    FeedbackRecord,
    LoggedCandidate,
    decision_record,
    feedback_record,
)
from policyhub.ml import dataset
from policyhub.ml.dataset import (
    DatasetError,
    LoggedDataset,
    holdout_mask,
    split_holdout,
)

AT = datetime(2026, 11, 1, tzinfo=UTC)


def decision(
    decision_id: str,
    n_candidates: int = 2,
    chosen: int = 0,
    context: list[float] | None = None,
    item_dim: int = 2,
    propensity: float = 0.5,
) -> DecisionRecord:
    candidates: list[LoggedCandidate] = [
        {"id": f"c{j}", "retrieval_score": 0.1 * (j + 1), "features": [float(j)] * item_dim}
        for j in range(n_candidates)
    ]
    return decision_record(
        tenant_id="t",
        agent_type="memory_manager",
        decision_id=decision_id,
        at=AT,
        policy_version=None,
        variant="retrieval",
        context=context if context is not None else [1.0, 2.0],
        candidates=candidates,
        ranking=[c["id"] for c in candidates],
        chosen_id=f"c{chosen}",
        propensity=propensity,
        epsilon=0.1,
        temperature=0.5,
        latency_ms=1.0,
    )


def feedback(decision_id: str, **fields: Any) -> FeedbackRecord:
    return feedback_record(
        tenant_id="t",
        agent_type="memory_manager",
        decision_id=decision_id,
        at=AT + timedelta(seconds=1),
        variant="retrieval",
        policy_version=None,
        **fields,
    )


def test_reward_is_the_one_outcome_rule_with_the_chosen_item() -> None:
    decisions = [decision(d) for d in ("both", "success", "clicks", "other-click", "bad")]
    fb = [
        feedback("both", reward=0.3, success=True),
        feedback("success", success=False, clicked_ids=["c0"]),
        feedback("clicks", clicked_ids=["c1", "c0"]),
        feedback("other-click", clicked_ids=["c1"]),
        feedback("bad", reward=1.5),
    ]
    data, report = join_logs(decisions, fb, context_dim=2, item_dim=2)
    assert dict(zip(data.decision_ids, data.reward.tolist(), strict=True)) == {
        "both": 0.3,
        "success": 0.0,
        "clicks": 1.0,
        "other-click": 0.0,
    }
    assert report.skipped == {"no_outcome": 1}


def test_join_flattens_candidates_with_offsets_chosen_index_and_reward() -> None:
    decisions = [
        decision("a", n_candidates=2, chosen=1, propensity=0.4),
        decision("b", n_candidates=3, chosen=2, context=[5.0, 6.0], propensity=0.2),
    ]
    fb = [feedback("b", reward=0.25), feedback("a", success=True)]
    data, report = join_logs(decisions, fb, context_dim=2, item_dim=2)
    assert data.decision_ids == ("a", "b")
    assert data.offsets.tolist() == [0, 2, 5]
    assert data.chosen.tolist() == [1, 2]
    assert data.chosen_rows.tolist() == [1, 4]
    assert data.propensity.tolist() == [0.4, 0.2]
    assert data.reward.tolist() == [1.0, 0.25]
    assert data.features.dtype == np.float32
    np.testing.assert_allclose(data.features[4], [5.0, 6.0, 2.0, 2.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(data.features[0], [1.0, 2.0, 0.0, 0.0, 0.1], rtol=1e-6)
    assert report.joined == 2


def test_decisions_without_feedback_are_left_out_and_counted() -> None:
    data, report = join_logs(
        [decision("a"), decision("b")], [feedback("b", success=False)], context_dim=2, item_dim=2
    )
    assert data.decision_ids == ("b",)
    assert report.without_feedback == 1


def test_first_feedback_for_a_decision_wins() -> None:
    fb = [feedback("a", success=True), feedback("a", success=False)]
    data, report = join_logs([decision("a")], fb, context_dim=2, item_dim=2)
    assert data.reward.tolist() == [1.0]
    assert report.duplicate_feedback == 1


def test_records_with_wrong_dimensions_are_skipped_with_a_reason() -> None:
    ghost = decision("ghost")
    ghost["chosen_id"] = "missing"
    decisions = [
        decision("ok"),
        decision("short-context", context=[1.0]),
        decision("wide-items", item_dim=3),
        ghost,
        decision("zero-propensity", propensity=0.0),
    ]
    fb = [feedback(d["decision_id"], success=True) for d in decisions]
    data, report = join_logs(decisions, fb, context_dim=2, item_dim=2)
    assert data.decision_ids == ("ok",)
    assert report.skipped == {
        "context_dim_mismatch": 1,
        "item_dim_mismatch": 1,
        "chosen_not_a_candidate": 1,
        "bad_propensity": 1,
    }


def test_strict_join_raises_on_the_first_invalid_record() -> None:
    with pytest.raises(DatasetError, match="context_dim_mismatch"):
        join_logs(
            [decision("x", context=[1.0, 2.0, 3.0])],
            [feedback("x", success=True)],
            context_dim=2,
            item_dim=2,
            on_invalid="raise",
        )


def test_empty_logs_give_an_empty_dataset() -> None:
    data, _ = join_logs([], [], context_dim=3, item_dim=4)
    assert data.n_decisions == 0
    assert data.features.shape == (0, 8)


def test_dataset_rejects_inconsistent_arrays() -> None:
    with pytest.raises(DatasetError, match="chosen index"):
        LoggedDataset(
            decision_ids=("a",),
            features=np.zeros((2, 3), np.float32),
            offsets=np.array([0, 2]),
            chosen=np.array([2]),
            propensity=np.array([0.5]),
            reward=np.array([1.0]),
            context_dim=1,
            item_dim=1,
        )


def test_subset_keeps_each_decisions_own_rows() -> None:
    decisions = [decision(f"d{i}", n_candidates=i + 1, context=[i, i]) for i in range(4)]
    fb = [feedback(f"d{i}", reward=i / 4) for i in range(4)]
    data, _ = join_logs(decisions, fb, context_dim=2, item_dim=2)
    part = data.subset([3, 1])
    assert part.decision_ids == ("d3", "d1")
    assert part.offsets.tolist() == [0, 4, 6]
    assert np.all(part.features[:4, 0] == 3.0)
    assert np.all(part.features[4:, 0] == 1.0)
    assert part.reward.tolist() == [0.75, 0.25]


def test_holdout_split_is_stable_and_near_the_requested_fraction() -> None:
    ids = [f"decision-{i}" for i in range(5000)]
    mask = holdout_mask(ids, 0.2)
    assert 0.17 < mask.mean() < 0.23
    reversed_mask = holdout_mask(ids[::-1], 0.2)[::-1]
    assert np.array_equal(mask, reversed_mask)
    assert np.array_equal(mask[:100], holdout_mask(ids[:100], 0.2))


def test_split_holdout_partitions_the_decisions() -> None:
    decisions = [decision(f"d{i}") for i in range(200)]
    fb = [feedback(f"d{i}", success=i % 2 == 0) for i in range(200)]
    data, _ = join_logs(decisions, fb, context_dim=2, item_dim=2)
    train, held = split_holdout(data, 0.3)
    assert set(train.decision_ids) | set(held.decision_ids) == set(data.decision_ids)
    assert not set(train.decision_ids) & set(held.decision_ids)
    assert 30 < held.n_decisions < 90


def test_concat_keeps_both_datasets_decisions_with_their_own_rows() -> None:
    decisions = [decision(f"d{i}", n_candidates=i + 1, context=[i, i]) for i in range(4)]
    fb = [feedback(f"d{i}", reward=i / 4) for i in range(4)]
    data, _ = join_logs(decisions, fb, context_dim=2, item_dim=2)
    both = LoggedDataset.concat(data.subset([2, 0]), data.subset([3, 1]))
    assert both.decision_ids == ("d2", "d0", "d3", "d1")
    assert both.offsets.tolist() == [0, 3, 4, 8, 10]
    assert both.features[both.row_decision == 2, 0].tolist() == [3.0] * 4
    assert both.reward.tolist() == [0.5, 0.0, 0.75, 0.25]


def test_one_decisions_holdout_side_is_the_one_the_mask_gives() -> None:
    ids = [f"decision-{i}" for i in range(2000)]
    for salt in ("holdout", "crossfit"):
        mask = holdout_mask(ids, 0.3, salt)
        assert [in_holdout(d, 0.3, salt) for d in ids] == mask.tolist()
    with pytest.raises(ValueError, match="fraction"):
        in_holdout("d", 1.0)


def test_features_read_a_range_of_decisions_at_a_time_land_where_one_read_puts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decisions = [
        decision(f"d{i}", n_candidates=1 + i % 4, chosen=i % (1 + i % 4), context=[i, -i])
        for i in range(40)
    ]
    fb = [feedback(f"d{i}", reward=(i % 5) / 4) for i in range(40) if i % 7]
    whole, report = join_logs(decisions, fb, context_dim=2, item_dim=2)
    monkeypatch.setattr(dataset, "FEATURE_ROWS_PER_QUERY", 5)
    parts, parts_report = join_logs(decisions, fb, context_dim=2, item_dim=2)
    assert parts_report == report
    assert parts.decision_ids == whole.decision_ids
    assert np.array_equal(parts.offsets, whole.offsets)
    assert np.array_equal(parts.features, whole.features)
    assert np.array_equal(parts.chosen, whole.chosen)
    assert np.array_equal(parts.reward, whole.reward)


def test_chosen_only_keeps_each_decisions_logged_row_and_outcome() -> None:
    decisions = [decision(f"d{i}", n_candidates=3, chosen=i % 3, context=[i, i]) for i in range(4)]
    fb = [feedback(f"d{i}", reward=i / 4) for i in range(4)]
    data, _ = join_logs(decisions, fb, context_dim=2, item_dim=2)
    chosen = data.chosen_only()
    assert chosen.decision_ids == data.decision_ids
    assert np.array_equal(chosen.features, data.features[data.chosen_rows])
    assert np.array_equal(chosen.features[chosen.chosen_rows], data.features[data.chosen_rows])
    assert np.array_equal(chosen.reward, data.reward)
    assert np.array_equal(chosen.propensity, data.propensity)


@pytest.mark.parametrize("sizes", [[3, 3, 3, 3], [1, 4, 2, 3]])
def test_each_decisions_context_fills_the_rows_of_its_candidates_whatever_their_number(
    sizes: list[int],
) -> None:
    context = np.arange(8, dtype=np.float32).reshape(4, 2) + 1
    features = np.zeros((sum(sizes), 5), dtype=np.float32)
    dataset._spread(features[:, :2], context, np.array(sizes, dtype=np.int64))
    assert np.array_equal(features[:, :2], np.repeat(context, sizes, axis=0))
    assert not features[:, 2:].any()


@pytest.mark.parametrize("rows", [[2, 3, 4, 5], [5, 2, 4, 3]])
def test_candidate_values_land_in_their_rows_whether_or_not_they_came_out_in_order(
    rows: list[int],
) -> None:
    found = {"row": np.array(rows), "v0": np.array([1, 2, 3, 4], dtype=np.float32),
             "v1": np.array([5, 6, 7, 8], dtype=np.float32)}  # fmt: skip
    features = np.zeros((7, 3), dtype=np.float32)
    dataset._place(features, 1, found, 2)
    expected = np.zeros((7, 3), dtype=np.float32)
    for k, row in enumerate(rows):
        expected[row, 1:] = found["v0"][k], found["v1"][k]
    assert np.array_equal(features, expected)

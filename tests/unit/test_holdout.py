"""The held-out split (domain/holdout.py) and where its records are logged (decision 131)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from policyhub.adapters.interaction_logs import (
    UNSPLIT,
    day_partition,
    hour_partition,
    partition,
    split_key,
)
from policyhub.domain.holdout import HOLDOUT_FRACTION, SPLITS, in_holdout, split_of, splits_holding

FRACTIONS = st.floats(min_value=0.01, max_value=0.99)


@given(st.text(min_size=1, max_size=40), FRACTIONS)
def test_the_splits_read_for_a_side_hold_every_decision_of_that_side(
    decision_id: str, fraction: float
) -> None:
    side = in_holdout(decision_id, fraction)
    assert split_of(decision_id) in splits_holding(fraction, held_out=side)


def test_the_logged_fraction_reads_one_split_per_side_and_others_need_both() -> None:
    assert splits_holding(HOLDOUT_FRACTION, held_out=True) == {"holdout"}
    assert splits_holding(HOLDOUT_FRACTION, held_out=False) == {"train"}
    assert splits_holding(0.3, held_out=True) == set(SPLITS)
    assert splits_holding(0.1, held_out=False) == set(SPLITS)


def test_about_a_fifth_of_decisions_are_logged_as_held_out() -> None:
    held = sum(split_of(f"dec_{n}") == "holdout" for n in range(20_000))
    assert 0.19 < held / 20_000 < 0.21


def test_an_objects_split_comes_from_its_key_and_objects_from_before_the_split_have_none() -> None:
    at = datetime(2026, 12, 1, 7, tzinfo=UTC)
    # a tenant or agent named like a split folder does not confuse it
    for split in SPLITS:
        key = partition("split=train", "split=holdout", at, split) + "x.parquet"
        assert split_key(key) == split
    assert split_key(hour_partition("acme", "a", at) + "before-split.parquet") is None
    assert split_key(hour_partition("acme", "a", at) + f"split={UNSPLIT}/x.parquet") is None
    assert split_key(day_partition("acme", "a", at) + "before-hours.parquet") is None

"""The held-out split: the decisions no trainer fits on, so that compare judges versions on
rewards they never saw.

A decision's side is a function of its id alone: the first 8 bytes of sha256("holdout:" + id)
as a uniform in [0, 1), held out below `HOLDOUT_FRACTION`. Training and compare ask it in bulk
(`ml.dataset.holdout_mask`, `holdout_sql`); the log writers ask it of each record and write the
two sides under separate prefixes (`split=holdout/`, `split=train/`), so that compare fetches and
decodes a fifth of a window, not all of it (docs/decisions/131-held-out-split-in-the-log-layout.md).
"""

from __future__ import annotations

from hashlib import sha256
from typing import Literal

HOLDOUT_FRACTION = 0.2
"""The share of decisions held out, for training and compare alike."""
HOLDOUT_SALT = "holdout"

Split = Literal["holdout", "train"]
SPLITS: tuple[Split, ...] = ("holdout", "train")
BOTH_SPLITS: frozenset[Split] = frozenset(SPLITS)


def threshold(fraction: float) -> int:
    """`fraction` of the 64-bit hash range: a hash below it is on the held-out side."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    return int(fraction * 2**64)


def hash64(salt: str, decision_id: str) -> int:
    return int.from_bytes(sha256(f"{salt}:{decision_id}".encode()).digest()[:8], "big")


def in_holdout(
    decision_id: str, fraction: float = HOLDOUT_FRACTION, salt: str = HOLDOUT_SALT
) -> bool:
    return hash64(salt, decision_id) < threshold(fraction)


def split_of(decision_id: str) -> Split:
    """The side a decision (and its feedback) is logged under."""
    return "holdout" if in_holdout(decision_id) else "train"


def splits_holding(fraction: float, held_out: bool) -> frozenset[Split]:
    """The logged splits that hold every decision of one side at `fraction`: the held-out part
    at most the logged fraction lies in `holdout` alone, a training part at least as large as
    the logged one in `train` alone; any other fraction needs both."""
    if held_out:
        return frozenset({"holdout"}) if fraction <= HOLDOUT_FRACTION else BOTH_SPLITS
    return frozenset({"train"}) if fraction >= HOLDOUT_FRACTION else BOTH_SPLITS

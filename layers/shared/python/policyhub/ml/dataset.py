"""Decision and feedback log records joined into array-backed data for learning and OPE.

Layout: the candidates of all decisions back to back. Decision i owns feature rows
``features[offsets[i]:offsets[i + 1]]`` (context ⊕ item features ⊕ [retrieval_score], float32),
its logged top item is the local index ``chosen[i]`` with propensity ``propensity[i]`` and the
observed reward ``reward[i]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from policyhub.domain.interaction_records import outcome_of
from policyhub.ml.exploration import segment_ids, validate_offsets

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Record = Mapping[str, Any]


class DatasetError(ValueError):
    """Log records that cannot be turned into a dataset."""


@dataclass(frozen=True)
class LoggedDataset:
    decision_ids: tuple[str, ...]
    features: Float32Array
    offsets: IntArray
    chosen: IntArray
    propensity: FloatArray
    reward: FloatArray
    context_dim: int
    item_dim: int

    def __post_init__(self) -> None:
        n = len(self.decision_ids)
        width = self.context_dim + self.item_dim + 1
        if self.features.ndim != 2 or self.features.shape[1] != width:
            raise DatasetError(
                f"features must be [rows, {width}], "
                f"got {list(self.features.shape)}"
            )
        try:
            validate_offsets(self.offsets, self.features.shape[0])
        except ValueError as exc:
            raise DatasetError(str(exc)) from exc
        if not (self.offsets.size == n + 1 == self.chosen.size + 1):
            raise DatasetError("offsets, chosen and decision_ids disagree on the decision count")
        if self.propensity.shape != (n,) or self.reward.shape != (n,):
            raise DatasetError("propensity and reward need one value per decision")
        if np.any((self.chosen < 0) | (self.chosen >= self.sizes)):
            raise DatasetError("chosen index outside its decision's candidates")
        if np.any(~(self.propensity > 0) | (self.propensity > 1)):
            raise DatasetError("propensity must be in (0, 1]")

    @property
    def n_decisions(self) -> int:
        return len(self.decision_ids)

    @property
    def feature_dim(self) -> int:
        return self.context_dim + self.item_dim + 1

    @property
    def sizes(self) -> IntArray:
        return np.diff(self.offsets)

    @property
    def chosen_rows(self) -> IntArray:
        """Global row index of each decision's logged top item."""
        rows: IntArray = self.offsets[:-1] + self.chosen
        return rows

    @property
    def row_decision(self) -> IntArray:
        return segment_ids(self.offsets)

    def subset(self, decisions: npt.ArrayLike) -> LoggedDataset:
        """The decisions at the given indices (in that order), with their candidate rows."""
        idx = np.asarray(decisions, dtype=np.int64).reshape(-1)
        sizes = self.sizes[idx]
        new_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        rows = np.repeat(self.offsets[idx] - new_offsets[:-1], sizes) + np.arange(
            new_offsets[-1], dtype=np.int64
        )
        return LoggedDataset(
            decision_ids=tuple(self.decision_ids[i] for i in idx.tolist()),
            features=self.features[rows],
            offsets=new_offsets,
            chosen=self.chosen[idx],
            propensity=self.propensity[idx],
            reward=self.reward[idx],
            context_dim=self.context_dim,
            item_dim=self.item_dim,
        )

    @staticmethod
    def concat(first: LoggedDataset, second: LoggedDataset) -> LoggedDataset:
        """The decisions of both, first's then second's (same feature schema)."""
        if (first.context_dim, first.item_dim) != (second.context_dim, second.item_dim):
            raise DatasetError("datasets with different feature schemas cannot be joined")
        return LoggedDataset(
            decision_ids=first.decision_ids + second.decision_ids,
            features=np.concatenate([first.features, second.features]),
            offsets=np.concatenate([first.offsets, second.offsets[1:] + first.offsets[-1]]),
            chosen=np.concatenate([first.chosen, second.chosen]),
            propensity=np.concatenate([first.propensity, second.propensity]),
            reward=np.concatenate([first.reward, second.reward]),
            context_dim=first.context_dim,
            item_dim=first.item_dim,
        )


@dataclass
class JoinReport:
    """What happened to the records while joining (nothing is dropped silently)."""

    decisions: int = 0
    feedback: int = 0
    joined: int = 0
    without_feedback: int = 0
    duplicate_feedback: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _decision_problem(record: Record, context_dim: int, item_dim: int) -> str | None:
    context = record.get("context")
    candidates = record.get("candidates")
    if not isinstance(context, list) or not isinstance(candidates, list) or not candidates:
        return "malformed"
    if len(context) != context_dim:
        return "context_dim_mismatch"
    if any(len(c.get("features", ())) != item_dim for c in candidates):
        return "item_dim_mismatch"
    if record.get("chosen_id") not in {c.get("id") for c in candidates}:
        return "chosen_not_a_candidate"
    propensity = record.get("propensity")
    if not isinstance(propensity, int | float) or not 0.0 < float(propensity) <= 1.0:
        return "bad_propensity"
    return None


def join_logs(
    decisions: Iterable[Record],
    feedback: Iterable[Record],
    *,
    context_dim: int,
    item_dim: int,
    on_invalid: Literal["skip", "raise"] = "skip",
) -> tuple[LoggedDataset, JoinReport]:
    """Join decisions with their feedback (by decision_id) into a `LoggedDataset`.

    Decisions without feedback are not used. When one decision has several feedback records the
    first one read wins (feedback is idempotent in the API). The reward is `outcome_of` the
    feedback with the decision's chosen item; feedback without an outcome is skipped and counted
    (`no_outcome`). Decisions whose dimensions do not match the schema, or that are malformed,
    are skipped and counted (or raise with ``on_invalid="raise"``).
    """
    report = JoinReport()
    first_feedback: dict[str, Record] = {}
    for fb in feedback:
        report.feedback += 1
        did = fb.get("decision_id")
        if not isinstance(did, str):
            report.skip("feedback_malformed")
        elif did in first_feedback:
            report.duplicate_feedback += 1
        else:
            first_feedback[did] = fb

    ids: list[str] = []
    rows: list[list[float]] = []
    sizes: list[int] = []
    chosen: list[int] = []
    propensity: list[float] = []
    reward: list[float] = []
    seen: set[str] = set()
    for record in decisions:
        report.decisions += 1
        problem = _decision_problem(record, context_dim, item_dim)
        did = record.get("decision_id")
        if problem is None and (not isinstance(did, str) or did in seen):
            problem = "duplicate_decision" if isinstance(did, str) else "malformed"
        if problem is not None:
            if on_invalid == "raise":
                raise DatasetError(f"decision {did!r}: {problem}")
            report.skip(problem)
            continue
        assert isinstance(did, str)
        seen.add(did)
        found = first_feedback.get(did)
        if found is None:
            report.without_feedback += 1
            continue
        chosen_id = record["chosen_id"]
        outcome = outcome_of(found, chosen_id)
        if outcome is None:
            if on_invalid == "raise":
                raise DatasetError(f"decision {did!r}: its feedback has no outcome")
            report.skip("no_outcome")
            continue
        context = [float(v) for v in record["context"]]
        candidates = record["candidates"]
        for c in candidates:
            rows.append([*context, *c["features"], float(c["retrieval_score"])])
        ids.append(did)
        sizes.append(len(candidates))
        chosen.append(next(i for i, c in enumerate(candidates) if c["id"] == chosen_id))
        propensity.append(float(record["propensity"]))
        reward.append(outcome.reward)
        report.joined += 1

    width = context_dim + item_dim + 1
    features = np.asarray(rows, dtype=np.float32).reshape(-1, width)
    if not np.isfinite(features).all():
        raise DatasetError("feature rows contain NaN or infinity")
    dataset = LoggedDataset(
        decision_ids=tuple(ids),
        features=features,
        offsets=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
        chosen=np.asarray(chosen, dtype=np.int64),
        propensity=np.asarray(propensity, dtype=np.float64),
        reward=np.asarray(reward, dtype=np.float64),
        context_dim=context_dim,
        item_dim=item_dim,
    )
    return dataset, report


def _threshold(fraction: float) -> int:
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1)")
    return int(fraction * 2**64)


def _hash64(prefix: bytes, decision_id: str) -> int:
    return int.from_bytes(sha256(prefix + decision_id.encode()).digest()[:8], "big")


def in_holdout(decision_id: str, fraction: float, salt: str = "holdout") -> bool:
    """`holdout_mask` for one decision (log readers ask line by line)."""
    return _hash64(f"{salt}:".encode(), decision_id) < _threshold(fraction)


def holdout_mask(decision_ids: Sequence[str], fraction: float, salt: str = "holdout") -> BoolArray:
    """True for decisions in the held-out part: sha256(salt:decision_id) as a uniform in [0, 1).

    A decision stays on the same side whatever else is in the logs or in which order.
    """
    threshold = _threshold(fraction)
    prefix = f"{salt}:".encode()
    return np.fromiter(
        (_hash64(prefix, d) < threshold for d in decision_ids),
        dtype=np.bool_,
        count=len(decision_ids),
    )


def split_holdout(
    data: LoggedDataset, fraction: float = 0.2, salt: str = "holdout"
) -> tuple[LoggedDataset, LoggedDataset]:
    """(train, held-out) by decision_id hash."""
    mask = holdout_mask(data.decision_ids, fraction, salt)
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))

"""Decision and feedback log records joined into array-backed data for learning and OPE.

Layout: the candidates of all decisions back to back. Decision i owns feature rows
``features[offsets[i]:offsets[i + 1]]`` (context ⊕ item features ⊕ [retrieval_score], float32),
its logged top item is the local index ``chosen[i]`` with propensity ``propensity[i]`` and the
observed reward ``reward[i]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from policyhub.domain.holdout import HOLDOUT_FRACTION, HOLDOUT_SALT, threshold
from policyhub.domain.interaction_records import OUTCOME_REWARD
from policyhub.ml.exploration import segment_ids, validate_offsets

if TYPE_CHECKING:
    from policyhub.ports import LogTable

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

    def chosen_only(self) -> LoggedDataset:
        """The same decisions with their logged top item as their only candidate (what a
        reward model learns from), without copying the other rows."""
        return LoggedDataset(
            decision_ids=self.decision_ids,
            features=self.features[self.chosen_rows],
            offsets=np.arange(self.n_decisions + 1, dtype=np.int64),
            chosen=np.zeros(self.n_decisions, dtype=np.int64),
            propensity=self.propensity,
            reward=self.reward,
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


_PROBLEM = """
    CASE
        WHEN context IS NULL OR candidates IS NULL OR len(candidates) = 0 THEN 'malformed'
        WHEN len(context) != $context_dim THEN 'context_dim_mismatch'
        WHEN list_bool_or(list_transform(candidates, c -> coalesce(len(c.features), 0)
                                                          != $item_dim)) THEN 'item_dim_mismatch'
        WHEN chosen_id IS NULL OR NOT list_contains(list_transform(candidates, c -> c.id),
                                                    chosen_id) THEN 'chosen_not_a_candidate'
        WHEN propensity IS NULL OR NOT (propensity > 0 AND propensity <= 1) THEN 'bad_propensity'
        WHEN decision_id IS NULL THEN 'malformed'
    END"""
"""Why a decision cannot be learned from (NULL when it can), checked in this order."""

def join_table(
    table: LogTable,
    *,
    context_dim: int,
    item_dim: int,
    on_invalid: Literal["skip", "raise"] = "skip",
    where: str = "TRUE",
    source: str = "records",
) -> tuple[LoggedDataset, JoinReport]:
    """Join the table's decisions with their feedback (by decision_id) into a `LoggedDataset`.

    Only records of `source` (a table or view of the records' columns) that `where` (SQL)
    accepts are read. Decisions without
    feedback are not used. When one decision has several feedback records the first one read
    wins (feedback is idempotent in the API). The reward is `outcome_of` the feedback with the
    decision's chosen item; feedback without an outcome is skipped and counted (`no_outcome`).
    Decisions whose dimensions do not match the schema, or that are malformed, are skipped and
    counted (or raise with ``on_invalid="raise"``). Features are built for joined decisions only.
    """
    report = JoinReport()
    dims = {"context_dim": context_dim, "item_dim": item_dim}
    table.execute(f"""
        CREATE OR REPLACE TEMP TABLE join_feedback AS
        SELECT decision_id, success, reward, clicked_ids,
               row_number() OVER (PARTITION BY decision_id ORDER BY ord) AS nth
        FROM {source} WHERE type = 'feedback' AND ({where})""")
    feedback, malformed, duplicates = table.rows("""
        SELECT count(*), count(*) FILTER (decision_id IS NULL),
               count(*) FILTER (decision_id IS NOT NULL AND nth > 1)
        FROM join_feedback""")[0]
    report.feedback, report.duplicate_feedback = int(feedback), int(duplicates)
    if malformed:
        report.skipped["feedback_malformed"] = int(malformed)
    table.execute(f"""
        CREATE OR REPLACE TEMP TABLE join_decisions AS
        SELECT *, CASE
                WHEN problem IS NULL AND row_number() OVER (
                    PARTITION BY decision_id, problem IS NULL ORDER BY ord) > 1
                THEN 'duplicate_decision' ELSE problem END AS why_not
        FROM (SELECT ord, decision_id, chosen_id, propensity, len(candidates) AS size,
                     list_position(list_transform(candidates, c -> c.id), chosen_id) - 1
                         AS chosen,
                     {_PROBLEM} AS problem
              FROM {source} WHERE type = 'decision' AND ({where}))""", dims)
    table.execute(f"""
        CREATE OR REPLACE TEMP TABLE join_outcomes AS
        SELECT d.ord, d.decision_id, d.why_not,
               d.why_not IS NULL AND f.decision_id IS NOT NULL AS answered,
               {OUTCOME_REWARD.replace("chosen_id", "d.chosen_id")} AS outcome
        FROM (SELECT ord, decision_id, why_not, chosen_id FROM join_decisions) AS d
        LEFT JOIN (SELECT decision_id, success, reward, clicked_ids FROM join_feedback
                   WHERE nth = 1 AND decision_id IS NOT NULL) AS f
        ON f.decision_id = d.decision_id""")
    if on_invalid == "raise":
        first = table.rows("""
            SELECT decision_id, coalesce(why_not, 'no_outcome') FROM join_outcomes
            WHERE why_not IS NOT NULL OR (answered AND outcome IS NULL)
            ORDER BY ord LIMIT 1""")
        if first:
            did, problem = first[0]
            if problem == "no_outcome":
                raise DatasetError(f"decision {did!r}: its feedback has no outcome")
            raise DatasetError(f"decision {did!r}: {problem}")
    for reason, n in table.rows("""
            SELECT coalesce(why_not, 'no_outcome'), count(*) FROM join_outcomes
            WHERE why_not IS NOT NULL OR (answered AND outcome IS NULL)
            GROUP BY ALL ORDER BY ALL"""):
        report.skipped[str(reason)] = int(n)
    decisions, without = table.rows("""
        SELECT count(*), count(*) FILTER (why_not IS NULL AND NOT answered)
        FROM join_outcomes""")[0]
    report.decisions, report.without_feedback = int(decisions), int(without)
    table.execute("""
        CREATE OR REPLACE TEMP TABLE join_kept AS
        SELECT d.ord, d.decision_id, d.chosen, d.propensity, o.outcome, d.size,
               row_number() OVER (ORDER BY d.ord) - 1 AS pos,
               (sum(d.size) OVER (ORDER BY d.ord) - d.size)::BIGINT AS first_row
        FROM join_decisions AS d
        JOIN (SELECT ord, outcome FROM join_outcomes
              WHERE why_not IS NULL AND answered AND outcome IS NOT NULL) AS o USING (ord)""")
    dataset = _dataset_of_kept(table, source, context_dim, item_dim)
    report.joined = dataset.n_decisions
    table.execute("DROP TABLE join_kept; DROP TABLE join_outcomes; DROP TABLE join_decisions; "
                  "DROP TABLE join_feedback")
    return dataset, report


FEATURE_ROWS_PER_QUERY = 1 << 20
"""Feature rows read per query: what one query returns is held twice (DuckDB's result and its
numpy columns), so all of 10M decisions' rows at once would take GBs more (decision 126)."""


def _dataset_of_kept(
    table: LogTable, source: str, context_dim: int, item_dim: int
) -> LoggedDataset:
    """`join_kept` as arrays, in read order (`pos`), its features taken from `source`.

    The context comes out of DuckDB a column per value with its decision's `pos`, candidates
    unnested a row each, with the feature row they go to (`first_row` + their index) and a
    column per value. They are placed by those: no query's output order is relied on, and the
    nested candidate lists are never sorted or copied between tables. They are read a range of
    decisions (in `ord`, so in `pos`) at a time, about `FEATURE_ROWS_PER_QUERY` rows each."""
    head = table.columns("""
        SELECT decision_id, chosen::BIGINT AS chosen, propensity, outcome,
               size::BIGINT AS size, ord
        FROM join_kept ORDER BY pos""")
    n = len(head["decision_id"])
    sizes = head["size"].astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    width = context_dim + item_dim + 1
    features = np.empty((int(offsets[-1]), width), dtype=np.float32)
    ords = head["ord"].astype(np.int64)
    cuts = np.searchsorted(
        offsets, np.arange(0, int(offsets[-1]), FEATURE_ROWS_PER_QUERY), side="right"
    ) - 1
    bounds = [*np.unique(cuts[cuts < n]).tolist(), n] if n else [0]
    for first, end in itertools.pairwise(bounds):
        part = _KeptRange(table, source, int(ords[first]), int(ords[end - 1]))
        rows = slice(int(offsets[first]), int(offsets[end]))
        found = part.per_decision([f"w.context[{i + 1}]" for i in range(context_dim)])
        context = np.empty((end - first, context_dim), dtype=np.float32)
        for i in range(context_dim):
            context[found["pos"] - first, i] = found[f"v{i}"]
        _spread(features[rows, :context_dim], context, sizes[first:end])
        found = part.per_candidate(
            [f"c.features[{i + 1}]" for i in range(item_dim)] + ["c.retrieval_score"]
        )
        _place(features, context_dim, found, item_dim + 1)
        del found
    if not np.isfinite(features).all():
        raise DatasetError("feature rows contain NaN or infinity")
    return LoggedDataset(
        decision_ids=tuple(head["decision_id"].tolist()),
        features=features,
        offsets=offsets,
        chosen=head["chosen"].astype(np.int64),
        propensity=head["propensity"].astype(np.float64),
        reward=head["outcome"].astype(np.float64),
        context_dim=context_dim,
        item_dim=item_dim,
    )


def _spread(target: Float32Array, context: Float32Array, sizes: IntArray) -> None:
    """Each decision's context into the rows of its candidates (`target`, in decision order)."""
    if sizes.size and sizes.min() == sizes.max():  # as many candidates each: a broadcast
        target.reshape(sizes.size, int(sizes[0]), -1)[:] = context[:, None, :]
    else:  # a gather by decision (np.repeat of the rows is 3x slower)
        target[:] = context[np.repeat(np.arange(sizes.size), sizes)]


def _place(
    features: Float32Array, first_column: int, found: dict[str, npt.NDArray[Any]], width: int
) -> None:
    """The `found` candidates' values `v0`.. into their feature `row`s from `first_column` on:
    column by column into a slice when the rows came out in order (DuckDB's usual), else one
    scattered block."""
    rows = found["row"]
    if rows.size and rows[-1] - rows[0] == rows.size - 1 and bool((np.diff(rows) == 1).all()):
        for i in range(width):
            features[rows[0] : rows[-1] + 1, first_column + i] = found[f"v{i}"]
        return
    block = np.empty((rows.size, width), dtype=np.float32)
    for i in range(width):
        block[:, i] = found[f"v{i}"]
    features[rows, first_column:] = block


@dataclass(frozen=True)
class _KeptRange:
    """The kept decisions read from `ord` low to high (a range of `pos`, as `pos` is in `ord`
    order), with their records in `source`."""

    table: LogTable
    source: str
    low: int
    high: int

    def _query(self, select: str, values: list[str]) -> dict[str, npt.NDArray[Any]]:
        columns = ", ".join(f"({v})::FLOAT AS v{i}" for i, v in enumerate(values))
        return self.table.columns(select.format(columns=columns, kept=f"""
            (SELECT * FROM {self.source} WHERE ord BETWEEN $low AND $high) AS w
            JOIN (SELECT ord, pos, first_row FROM join_kept WHERE ord BETWEEN $low AND $high)
                AS k
            USING (ord)"""), {"low": self.low, "high": self.high})  # fmt: skip

    def per_decision(self, values: list[str]) -> dict[str, npt.NDArray[Any]]:
        """`pos` and the `values` (SQL over `w`, the decision's record) as `v0`, `v1`, ..."""
        return self._query("SELECT k.pos::BIGINT AS pos, {columns} FROM {kept}", values)

    def per_candidate(self, values: list[str]) -> dict[str, npt.NDArray[Any]]:
        """The candidate's feature `row` and the `values` (SQL over `c`, the candidate) as
        `v0`, `v1`, ... for every candidate: a row per candidate, not per value."""
        return self._query("""
            SELECT row::BIGINT AS row, {columns} FROM (
                SELECT unnest(range(k.first_row, k.first_row + len(w.candidates))) AS row,
                       unnest(w.candidates) AS c
                FROM {kept})""", values)


def holdout_sql(fraction: float, salt: str = HOLDOUT_SALT, held_out: bool = True) -> str:
    """`in_holdout(decision_id)` as a SQL condition (`not in_holdout` with held_out False):
    the first 16 hex digits of the sha256 compare as text as the 64-bit number compares."""
    if "'" in salt:
        raise ValueError("a salt cannot hold a quote")
    hashed = f"substr(sha256('{salt}:' || decision_id), 1, 16)"
    return f"{hashed} {'<' if held_out else '>='} '{threshold(fraction):016x}'"


def holdout_mask(
    decision_ids: Sequence[str], fraction: float, salt: str = HOLDOUT_SALT
) -> BoolArray:
    """True for decisions in the held-out part: sha256(salt:decision_id) as a uniform in [0, 1).

    A decision stays on the same side whatever else is in the logs or in which order.
    """
    below = np.uint64(threshold(fraction))
    prefix = f"{salt}:".encode()
    # The first 8 bytes of every digest as big-endian uint64s, compared at once (1.25 s for
    # 2M decisions, 1.57 s with a Python int per decision).
    heads = b"".join(sha256(prefix + d.encode()).digest()[:8] for d in decision_ids)
    mask: BoolArray = np.frombuffer(heads, dtype=">u8") < below
    return mask


def split_holdout(
    data: LoggedDataset, fraction: float = HOLDOUT_FRACTION, salt: str = HOLDOUT_SALT
) -> tuple[LoggedDataset, LoggedDataset]:
    """(train, held-out) by decision_id hash."""
    mask = holdout_mask(data.decision_ids, fraction, salt)
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))

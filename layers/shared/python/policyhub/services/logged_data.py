"""Which logged records the learning loop may learn from, and in which feature schema.

Training and compare read the same window of decision and feedback records. Decisions served
with `use_rl_ranking: false` are pure retrieval order with propensity 1: no policy chose them,
so they say nothing about any policy's choices and are left out (counted). Everything else,
including decisions that fell back after a policy error, carries the propensity of what was
actually served and is usable.
"""

from __future__ import annotations

from collections import Counter

from policyhub.domain.versions import FeatureSchema
from policyhub.ml.dataset import JoinReport, LoggedDataset, join_table
from policyhub.ml.shadow import ShadowAgreement, shadow_agreement
from policyhub.ports import LogTable

USABLE = "use_rl_ranking IS DISTINCT FROM false"
_SHADOWED = (
    "shadow IS NOT NULL AND coalesce(shadow.error, '') = '' AND len(shadow.ranking) > 0"
)
_LEARNING_COLUMNS = (
    "ord, type, decision_id, use_rl_ranking, context, candidates, chosen_id, propensity, "
    f"success, reward, clicked_ids, {_SHADOWED} AS shadowed, shadow.policy_version AS shadow_of"
)


class LogWindow:
    """The records of a window's table that `where` (SQL) accepts, for learning.

    They are read from the table's files once, into the table `window_records` that every
    question then asks (the Parquet files' nested candidate lists cost most to decode)."""

    def __init__(self, table: LogTable, where: str = "TRUE") -> None:
        self._table = table
        self._where = where
        table.execute(
            f"CREATE OR REPLACE TEMP TABLE window_records AS SELECT {_LEARNING_COLUMNS} "
            f"FROM records WHERE {where}"
        )
        self.opted_out = int(table.rows(
            "SELECT count(*) FROM window_records WHERE type = 'decision' "
            "AND use_rl_ranking = false"
        )[0][0])  # fmt: skip
        """Decisions served with use_rl_ranking false (left out)."""

    @property
    def _decisions(self) -> str:
        return f"type = 'decision' AND {USABLE}"

    def joined_count(self) -> int:
        """Decisions that have feedback (before any schema or validity check)."""
        return int(self._table.rows(f"""
            SELECT count(*) FROM window_records WHERE {self._decisions} AND decision_id IN (
                SELECT decision_id FROM window_records WHERE type = 'feedback')
        """)[0][0])  # fmt: skip

    def schemas(self) -> Counter[FeatureSchema]:
        found: Counter[FeatureSchema] = Counter()
        for context_dim, item_dim, n in self._table.rows(f"""
            SELECT len(context), len(candidates[1].features), count(*) FROM window_records
            WHERE {self._decisions} AND len(candidates) > 0
                AND candidates[1].features IS NOT NULL AND context IS NOT NULL
            GROUP BY ALL"""):
            try:
                found[FeatureSchema(context_dim=context_dim, item_dim=item_dim)] += int(n)
            except ValueError:
                continue
        return found

    def dominant_schema(self) -> FeatureSchema | None:
        """The feature schema most decisions of the window were served with."""
        counts = self.schemas().most_common(1)
        return counts[0][0] if counts else None

    def dataset(self, schema: FeatureSchema) -> tuple[LoggedDataset, JoinReport]:
        data, report = join_table(
            self._table,
            context_dim=schema.context_dim,
            item_dim=schema.item_dim,
            where=f"type = 'feedback' OR {USABLE}",
            source="window_records",
        )
        if self.opted_out:
            report.skipped["use_rl_ranking_false"] = self.opted_out
        return data, report

    def shadow_agreement(self, shadow_version: str | None = None) -> ShadowAgreement:
        """Agreement over decisions whose shadow ranking exists and did not fail."""
        params = {"version": shadow_version} if shadow_version is not None else {}
        of = "" if shadow_version is None else "AND shadow_of = $version"
        # Most windows have no shadow: asking window_records first spares reading every file
        # again (`where` over all of them) for the rankings.
        if not self._table.rows(
            f"SELECT count(*) FROM window_records WHERE {self._decisions} AND shadowed {of}",
            params,
        )[0][0]:
            return shadow_agreement([], [])
        version = "" if shadow_version is None else "AND shadow.policy_version = $version"
        rows = self._table.rows(
            f"""SELECT ranking, shadow.ranking FROM records WHERE {self._decisions}
                AND ({self._where}) AND {_SHADOWED} {version} ORDER BY ord""",
            params,
        )
        return shadow_agreement([r[0] for r in rows], [r[1] for r in rows])

"""Which logged records the learning loop may learn from, and in which feature schema.

Training and compare read the same window of decision and feedback records. Decisions served
with `use_rl_ranking: false` are pure retrieval order with propensity 1: no policy chose them,
so they say nothing about any policy's choices and are left out (counted). Everything else,
including decisions that fell back after a policy error, carries the propensity of what was
actually served and is usable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from policyhub.domain.versions import FeatureSchema
from policyhub.ml.dataset import JoinReport, LoggedDataset, join_logs

Record = dict[str, Any]


@dataclass
class LogWindow:
    decisions: list[Record] = field(default_factory=list)
    feedback: list[Record] = field(default_factory=list)
    opted_out: int = 0
    """Decisions served with use_rl_ranking false (left out)."""

    @classmethod
    def of(cls, records: Iterable[Record]) -> LogWindow:
        window = cls()
        for record in records:
            kind = record.get("type")
            if kind == "feedback":
                window.feedback.append(record)
            elif kind == "decision":
                if record.get("use_rl_ranking") is False:
                    window.opted_out += 1
                else:
                    window.decisions.append(record)
        return window

    def joined_count(self) -> int:
        """Decisions that have feedback (before any schema or validity check)."""
        answered = {f.get("decision_id") for f in self.feedback}
        return sum(1 for d in self.decisions if d.get("decision_id") in answered)

    def schemas(self) -> Counter[FeatureSchema]:
        found: Counter[FeatureSchema] = Counter()
        for d in self.decisions:
            shape = _shape(d)
            if shape is not None:
                found[shape] += 1
        return found

    def dominant_schema(self) -> FeatureSchema | None:
        """The feature schema most decisions of the window were served with."""
        counts = self.schemas().most_common(1)
        return counts[0][0] if counts else None

    def dataset(self, schema: FeatureSchema) -> tuple[LoggedDataset, JoinReport]:
        data, report = join_logs(
            self.decisions,
            self.feedback,
            context_dim=schema.context_dim,
            item_dim=schema.item_dim,
        )
        if self.opted_out:
            report.skipped["use_rl_ranking_false"] = self.opted_out
        return data, report


def _shape(record: Record) -> FeatureSchema | None:
    context = record.get("context")
    candidates = record.get("candidates")
    if not isinstance(context, list) or not isinstance(candidates, list) or not candidates:
        return None
    first = candidates[0].get("features") if isinstance(candidates[0], dict) else None
    if not isinstance(first, list):
        return None
    try:
        return FeatureSchema(context_dim=len(context), item_dim=len(first))
    except ValueError:
        return None

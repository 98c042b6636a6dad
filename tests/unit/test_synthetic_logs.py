"""The bench's fast log writer writes what `dataset_records` and the sink would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bench.synthetic_logs import write_records_parquet
from policyhub.adapters.local_log_sink import parquet_body
from policyhub.domain.holdout import SPLITS, split_of
from policyhub.domain.interaction_columns import COLUMNS
from policyhub.ml.scorers import retrieval_scorer
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig, dataset_records

END = datetime(2026, 11, 1, 12, tzinfo=UTC)
AFTER = END - timedelta(minutes=30)


def _rows(path: Path) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT * FROM read_parquet('{path}', file_row_number=true) ORDER BY file_row_number"
        ).fetchall()


@pytest.mark.parametrize("candidates", [1, 5])
def test_writes_the_records_dataset_records_makes_in_their_order(
    tmp_path: Path, candidates: int
) -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=3, item_dim=2, n_candidates=candidates))
    data = sim.log_dataset(300, retrieval_scorer, seed=4)
    scores = retrieval_scorer(data.features)
    slow = tmp_path / "slow.parquet"
    slow.write_bytes(parquet_body(dataset_records(
        data, scores, tenant_id="t", agent_type="a", policy_version=None, after=AFTER, end=END,
    )))  # fmt: skip
    fast = tmp_path / "fast.parquet"
    write_records_parquet(data, scores, str(fast), tenant_id="t", agent_type="a",
                          after=AFTER, end=END)  # fmt: skip
    expected = _rows(slow)
    assert len(expected) == 600
    assert _rows(fast) == expected


def test_a_chunk_gets_the_times_of_its_place_in_the_whole_log(tmp_path: Path) -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=2, item_dim=2, n_candidates=3))
    data = sim.log_dataset(10, retrieval_scorer, seed=1)
    scores = retrieval_scorer(data.features)
    whole = dataset_records(data, scores, tenant_id="t", agent_type="a", policy_version=None,
                            after=AFTER, end=END)  # fmt: skip
    part = tmp_path / "part.parquet"
    write_records_parquet(data.subset(range(4, 10)), scores[12:], str(part), tenant_id="t",
                          agent_type="a", after=AFTER, end=END, first=4, total=10)  # fmt: skip
    with duckdb.connect() as con:
        stamps = [r[0] for r in con.execute(f"SELECT \"at\" FROM '{part}'").fetchall()]
    assert stamps == [r["at"] for r in whole[8:]]


def test_each_split_gets_its_decisions_and_their_feedback_and_together_they_are_the_log(
    tmp_path: Path,
) -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=2, item_dim=2, n_candidates=3))
    data = sim.log_dataset(200, retrieval_scorer, seed=2)
    scores = retrieval_scorer(data.features)
    whole = tmp_path / "whole.parquet"
    write_records_parquet(data, scores, str(whole), tenant_id="t", agent_type="a",
                          after=AFTER, end=END)  # fmt: skip
    sides: dict[str, list[tuple[object, ...]]] = {}
    for split in SPLITS:
        path = tmp_path / f"{split}.parquet"
        write_records_parquet(data, scores, str(path), tenant_id="t", agent_type="a",
                              after=AFTER, end=END, split=split)  # fmt: skip
        sides[split] = [row[:-1] for row in _rows(path)]  # without file_row_number
        ids = {row[list(COLUMNS).index("decision_id")] for row in sides[split]}
        assert ids and {split_of(str(d)) for d in ids} == {split}
    assert sorted(map(repr, sides["holdout"] + sides["train"])) == sorted(
        repr(row[:-1]) for row in _rows(whole)
    )

"""Millions of logged decisions as Parquet objects, fast: `dataset_records` without the dicts.

`simulator.dataset_records` builds a Python dict per record and the sink's `parquet_body` goes
through JSON lines: 36 s per 100k decisions, days for 10M. This writes the same records (the
same columns, values and row order: a decision, then its feedback) from `log_dataset`'s arrays
straight to Parquet with DuckDB, a chunk of decisions per object, as Firehose would deliver them.
Bench-only: nothing in the service writes logs this way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from policyhub.domain.holdout import HOLDOUT_FRACTION, Split
from policyhub.domain.interaction_columns import COLUMNS
from policyhub.domain.interaction_columns import duckdb as duckdb_type
from policyhub.domain.interaction_records import SUCCESS_REWARD
from policyhub.ml.dataset import LoggedDataset, holdout_mask
from policyhub.ml.exploration import DEFAULT_EPSILON, DEFAULT_TEMPERATURE

_MICROSECOND = timedelta(microseconds=1)


def _stamp(column: str) -> str:
    """`utc_iso` of microseconds since the epoch."""
    return f"strftime(make_timestamp({column}), '%Y-%m-%dT%H:%M:%S.%fZ')"


def _select(values: dict[str, str]) -> str:
    """Every column of COLUMNS, in table order, from `values` (SQL) or NULL."""
    return ", ".join(
        f'CAST({values.get(name, "NULL")} AS {duckdb_type(t)}) AS "{name}"'
        for name, t in COLUMNS.items()
    )


def write_records_parquet(
    data: LoggedDataset,
    scores: npt.NDArray[np.float64],
    target: str,
    *,
    tenant_id: str,
    agent_type: str,
    after: datetime,
    end: datetime,
    first: int = 0,
    total: int | None = None,
    split: Split | None = None,
) -> None:
    """`dataset_records(data, scores, policy_version=None, ...)` as one Parquet file (zstd),
    as `parquet_body` would write them.

    `data` is decisions `first` .. `first + n` of `total` (default: all of them) spread evenly
    in (after, end), so a long log can be written a chunk at a time with the times one call of
    `dataset_records` over all `total` decisions would give. Every decision has the same number
    of candidates (as `log_dataset` makes them). With `split`, only the decisions on that side
    of the held-out split and their feedback, as the sinks write each side to its own object."""
    n = data.n_decisions
    total = n if total is None else total
    sizes = data.sizes
    k = int(sizes[0]) if n else 0
    if n and not np.all(sizes == k):
        raise ValueError("every decision needs the same number of candidates")
    dc, di = data.context_dim, data.item_dim
    rows = data.features.reshape(n, k, dc + di + 1)
    step = (end - after) / (total + 1)
    step_us, half_us = step // _MICROSECOND, (step / 2) // _MICROSECOND
    after_us = (after - datetime(1970, 1, 1, tzinfo=after.tzinfo)) // _MICROSECOND
    index = np.arange(first, first + n, dtype=np.int64)
    at_us = after_us + step_us * (index + 1)
    top = data.chosen.astype(np.int64)
    # The served order: the drawn top item, then the rest by descending score (stable).
    order = np.argsort(-scores.reshape(n, k), axis=1, kind="stable")
    rest = order[order != top[:, None]].reshape(n, k - 1)
    ranking = np.concatenate([top[:, None], rest], axis=1)
    table: dict[str, npt.NDArray[Any]] = {
        "i": index,
        "decision_id": np.array(data.decision_ids, dtype=object),
        "at_us": at_us,
        "feedback_us": at_us + half_us,
        "top": top,
        "propensity": data.propensity.astype(np.float64),
        "success": data.reward >= SUCCESS_REWARD,
    }
    for c in range(dc):
        table[f"x{c}"] = rows[:, 0, c]
    for j in range(k):
        table[f"s{j}"] = rows[:, j, -1]
        table[f"r{j}"] = ranking[:, j]
        for c in range(di):
            table[f"a{j}_{c}"] = rows[:, j, dc + c]
    if split is not None:
        held = holdout_mask(data.decision_ids, HOLDOUT_FRACTION)
        kept = held if split == "holdout" else ~held
        table = {name: column[kept] for name, column in table.items()}
    candidates = ", ".join(
        f"{{'id': 'item-{j}', 'retrieval_score': s{j}, 'features': ["
        + ", ".join(f"a{j}_{c}" for c in range(di)) + "]}"
        for j in range(k)
    )  # fmt: skip
    ranked = "[" + ", ".join(f"'item-' || r{j}" for j in range(k)) + "]"
    common = {
        "tenant_id": "$tenant_id",
        "agent_type": "$agent_type",
        "decision_id": "decision_id",
        "seed_key": "decision_id",
        "variant": "'retrieval'",
    }
    decision = _select({
        **common, "type": "'decision'", "at": _stamp("at_us"),
        "assigned": "{'variant': 'retrieval', 'policy_version': NULL}",
        "use_rl_ranking": "true",
        "context": "[" + ", ".join(f"x{c}" for c in range(dc)) + "]",
        "candidates": f"[{candidates}]", "ranking": ranked, "proposed": ranked,
        "chosen_id": "'item-' || top", "propensity": "propensity",
        "exploration": f"{{'epsilon': {DEFAULT_EPSILON!r}, 'temperature': "
                       f"{DEFAULT_TEMPERATURE!r}}}",
        "latency_ms": "1.0", "violations": "MAP {}",
    })  # fmt: skip
    feedback = _select({
        **common, "type": "'feedback'", "at": _stamp("feedback_us"), "success": "success",
        "clicked_ids": "CASE WHEN success THEN ['item-' || top] ELSE [] END",
    })  # fmt: skip
    with duckdb.connect(config={"threads": 1}) as con:
        con.register("chunk", table)
        con.execute(
            f"COPY (SELECT * EXCLUDE (k) FROM ("
            f"SELECT {decision}, 2 * i AS k FROM chunk UNION ALL "
            f"SELECT {feedback}, 2 * i + 1 AS k FROM chunk) ORDER BY k) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)",
            {"tenant_id": tenant_id, "agent_type": agent_type},
        )

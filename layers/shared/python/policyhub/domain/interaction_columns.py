"""The interaction records as a table: one column type per field of `interaction_records`.

Decision and feedback records share one table (the union of their fields; a field the record
does not have is null). From this one tree come the Glue table Firehose converts JSON to Parquet
with (`hive`), the columns the local sink writes its Parquet files with and the readers read JSON
lines with (`duckdb`); a test holds it to the TypedDicts (tests/unit/test_interaction_columns.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scalar:
    hive: str
    duckdb: str


@dataclass(frozen=True)
class ArrayOf:
    element: ColumnType


@dataclass(frozen=True)
class StructOf:
    fields: tuple[tuple[str, ColumnType], ...]


@dataclass(frozen=True)
class MapOf:
    key: ColumnType
    value: ColumnType


ColumnType = Scalar | ArrayOf | StructOf | MapOf

STRING = Scalar("string", "VARCHAR")
DOUBLE = Scalar("double", "DOUBLE")
BOOLEAN = Scalar("boolean", "BOOLEAN")
INT = Scalar("int", "INTEGER")
STRINGS = ArrayOf(STRING)
DOUBLES = ArrayOf(DOUBLE)


def hive(t: ColumnType) -> str:
    """The Hive DDL type (what a Glue table column's `type` is)."""
    if isinstance(t, Scalar):
        return t.hive
    if isinstance(t, ArrayOf):
        return f"array<{hive(t.element)}>"
    if isinstance(t, MapOf):
        return f"map<{hive(t.key)},{hive(t.value)}>"
    return "struct<" + ",".join(f"{name}:{hive(f)}" for name, f in t.fields) + ">"


def duckdb(t: ColumnType) -> str:
    """The DuckDB type (`read_json(columns=...)`, `CAST`)."""
    if isinstance(t, Scalar):
        return t.duckdb
    if isinstance(t, ArrayOf):
        return f"{duckdb(t.element)}[]"
    if isinstance(t, MapOf):
        return f"MAP({duckdb(t.key)}, {duckdb(t.value)})"
    return "STRUCT(" + ", ".join(f'"{name}" {duckdb(f)}' for name, f in t.fields) + ")"


COLUMNS: dict[str, ColumnType] = {
    # both records
    "type": STRING,
    "tenant_id": STRING,
    "agent_type": STRING,
    "decision_id": STRING,
    "seed_key": STRING,
    "at": STRING,  # utc_iso: fixed width, so it sorts and compares as text
    "policy_version": STRING,
    "variant": STRING,
    "rollout_id": STRING,
    "experiment_id": STRING,
    # decision
    "assigned": StructOf((("variant", STRING), ("policy_version", STRING))),
    "use_rl_ranking": BOOLEAN,
    "context": DOUBLES,
    "candidates": ArrayOf(
        StructOf((("id", STRING), ("retrieval_score", DOUBLE), ("features", DOUBLES)))
    ),
    "ranking": STRINGS,
    "proposed": STRINGS,
    "chosen_id": STRING,
    "propensity": DOUBLE,
    "exploration": StructOf((("epsilon", DOUBLE), ("temperature", DOUBLE))),
    "latency_ms": DOUBLE,
    "error": STRING,
    "failed_version": STRING,
    "violations": MapOf(STRING, INT),
    "shadow": StructOf((("policy_version", STRING), ("ranking", STRINGS), ("error", STRING))),
    # feedback
    "success": BOOLEAN,
    "reward": DOUBLE,
    "clicked_ids": STRINGS,
}
"""Every field of a decision or feedback record, in table order."""

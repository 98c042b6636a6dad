"""The table schema and the record TypedDicts describe the same fields, nested ones too."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin, get_type_hints

from policyhub.domain import interaction_records as records
from policyhub.domain.interaction_columns import (
    COLUMNS,
    ArrayOf,
    ColumnType,
    MapOf,
    Scalar,
    StructOf,
    duckdb,
    hive,
)

_SCALARS = {str: "string", float: "double", bool: "boolean", int: "int"}


def _matches(annotation: Any, column: ColumnType) -> bool:
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return len(args) == 1 and _matches(args[0], column)
    if origin is typing.Literal:
        return isinstance(column, Scalar) and column.hive == "string"
    if origin is list:
        return isinstance(column, ArrayOf) and _matches(args[0], column.element)
    if origin is dict:
        return (
            isinstance(column, MapOf)
            and _matches(args[0], column.key)
            and _matches(args[1], column.value)
        )
    if typing.is_typeddict(annotation):
        hints = get_type_hints(annotation)
        return (
            isinstance(column, StructOf)
            and [name for name, _ in column.fields] == list(hints)
            and all(_matches(hints[name], t) for name, t in column.fields)
        )
    if isinstance(annotation, str) or annotation in _SCALARS:
        return isinstance(column, Scalar) and column.hive == _SCALARS.get(annotation, "string")
    return False


def test_every_record_field_has_a_column_and_every_column_a_field() -> None:
    assert set(COLUMNS) == records.DECISION_FIELDS | records.FEEDBACK_FIELDS


def test_each_column_type_matches_its_typeddict_annotation_nested_fields_included() -> None:
    hints = {
        **get_type_hints(records.FeedbackRecord),
        **get_type_hints(records.DecisionRecord),
    }
    wrong = {
        name: hive(column) for name, column in COLUMNS.items() if not _matches(hints[name], column)
    }
    assert wrong == {}


def test_types_render_for_glue_and_duckdb() -> None:
    candidates = COLUMNS["candidates"]
    assert hive(candidates) == (
        "array<struct<id:string,retrieval_score:double,features:array<double>>>"
    )
    assert duckdb(candidates) == (
        'STRUCT("id" VARCHAR, "retrieval_score" DOUBLE, "features" DOUBLE[])[]'
    )
    assert duckdb(COLUMNS["violations"]) == "MAP(VARCHAR, INTEGER)"

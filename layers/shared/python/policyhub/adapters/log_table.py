"""The interaction records of one window as a DuckDB view, read from local Parquet files.

Every reader (compare, training, experiment statistics, the local health reader) asks its
questions in SQL against the view `records`: every column of `interaction_columns.COLUMNS`, plus
`ord`, the order the records were read in (file by file, row by row: "the first feedback read
wins" needs it). Old JSON-lines objects become Parquet with the same column types before they
are read (`jsonl_to_parquet`), so a reader sees one table whatever wrote the object
(docs/decisions/113-log-readers-on-duckdb.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from policyhub.domain.interaction_columns import COLUMNS
from policyhub.domain.interaction_columns import duckdb as duckdb_type
from policyhub.domain.timestamps import utc_iso

PARQUET_MAGIC = b"PAR1"
_JSON_COLUMNS = "{" + ", ".join(f"'{n}': '{duckdb_type(t)}'" for n, t in COLUMNS.items()) + "}"
_EMPTY = ", ".join(f'CAST(NULL AS {duckdb_type(t)}) AS "{n}"' for n, t in COLUMNS.items())
_COLUMN_LIST = ", ".join(f'"{n}"' for n in COLUMNS)


def _quoted(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def jsonl_to_parquet(source: str, target: str) -> None:
    """A JSON-lines file as Parquet (zstd) with the columns of COLUMNS, rows in file order."""
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_json({_quoted(source)}, columns={_JSON_COLUMNS}, "
            f"format='newline_delimited')) TO {_quoted(target)} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )


def records_to_parquet(records: Iterable[Mapping[str, Any]], target: str) -> None:
    """Records as a Parquet file of COLUMNS (what the local sink writes, one per flush)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")))
            f.write("\n")
    try:
        jsonl_to_parquet(f.name, target)
    finally:
        os.unlink(f.name)


Params = Sequence[object] | Mapping[str, object]


def _bound(params: Params) -> list[object] | dict[str, object]:
    return dict(params) if isinstance(params, Mapping) else list(params)


def iso(at: datetime) -> str:
    """A window bound as the records stamp `at` (fixed-width UTC text compares as time)."""
    return utc_iso(at.astimezone(UTC) if at.tzinfo else at)


class LogTable:
    """A DuckDB connection with the view `records` over some Parquet files, optionally only the
    records stamped in [since, until]. Close it (or use `with`) to free the files it holds."""

    def __init__(
        self,
        files: Sequence[str],
        since: datetime | None = None,
        until: datetime | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._on_close = on_close
        self._con = duckdb.connect()
        if not files:
            self._con.execute(f"CREATE TEMP TABLE records AS SELECT {_EMPTY}, 0::BIGINT AS ord "
                              "LIMIT 0")
            return
        self._con.execute("CREATE TEMP TABLE log_files (filename VARCHAR, file_index BIGINT)")
        self._con.executemany("INSERT INTO log_files VALUES (?, ?)",
                              [(f, i) for i, f in enumerate(files)])
        window = []
        if since is not None:
            window.append(f"\"at\" >= '{iso(since)}'")
        if until is not None:
            window.append(f"\"at\" <= '{iso(until)}'")
        where = f"WHERE {' AND '.join(window)}" if window else ""
        listed = ", ".join(_quoted(f) for f in files)
        self._con.execute(
            f"CREATE TEMP VIEW records AS SELECT {_COLUMN_LIST}, "
            "(log_files.file_index << 32) + file_row_number AS ord "
            f"FROM read_parquet([{listed}], filename=true, file_row_number=true, "
            "union_by_name=true) AS p JOIN log_files USING (filename) " + where
        )

    @classmethod
    def of(cls, records: Iterable[Mapping[str, Any]]) -> LogTable:
        """In-memory records as a table (tests, fakes and callers that hold records)."""
        folder = tempfile.mkdtemp(prefix="policyhub-records-")
        path = str(Path(folder) / "records.parquet")
        records_to_parquet(records, path)
        return cls([path], on_close=lambda: shutil.rmtree(folder, ignore_errors=True))

    def execute(self, query: str, params: Params = ()) -> None:
        self._con.execute(query, _bound(params))

    def rows(self, query: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(query, _bound(params)).fetchall()

    def columns(
        self, query: str, params: Params = ()
    ) -> dict[str, npt.NDArray[Any]]:
        """The result's columns as numpy arrays (masked arrays become plain ones)."""
        found = self._con.execute(query, _bound(params)).fetchnumpy()
        return {k: np.asarray(v) for k, v in found.items()}

    def dicts(self, query: str, params: Params = ()) -> list[dict[str, Any]]:
        result = self._con.execute(query, _bound(params))
        names = [d[0] for d in result.description or ()]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def close(self) -> None:
        self._con.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> LogTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

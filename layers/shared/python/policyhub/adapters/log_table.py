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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt

from policyhub.domain.interaction_columns import COLUMNS
from policyhub.domain.interaction_columns import duckdb as duckdb_type
from policyhub.domain.timestamps import utc_iso
from policyhub.ml.dataset import JoinReport, LoggedDataset, join_table

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


def concatenate_parquet(sources: Sequence[str], target: str) -> None:
    """Parquet files of records as one (zstd), rows in the order of the files and their rows."""
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT {_COLUMN_LIST} FROM read_parquet([{', '.join(map(_quoted, sources))}]))"
            f" TO {_quoted(target)} (FORMAT parquet, COMPRESSION zstd)"
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


@dataclass(frozen=True)
class LogFile:
    path: str
    first_at: str | None = None
    last_at: str | None = None
    """The earliest and latest `at` in the file, when known (`stamps`)."""


def stamps(path: str) -> tuple[str | None, str | None]:
    """The earliest and latest `at` of a Parquet file of records."""
    with duckdb.connect() as con:
        found = con.execute(f'SELECT min("at"), max("at") FROM read_parquet({_quoted(path)})')
        first, last = found.fetchone() or (None, None)
    return first, last


class LogTable:
    """A DuckDB connection with the view `records` over some Parquet files, optionally only the
    records stamped in [since, until]. Close it (or use `with`) to free the files it holds.

    Files are linked into a folder of the table's own as `<index>.parquet`, so the read order
    (`ord`) comes from each row's file name and row number, without a join; a file whose stamps
    lie inside the window is read without comparing each record's `at`."""

    def __init__(
        self,
        files: Sequence[str | LogFile],
        since: datetime | None = None,
        until: datetime | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._on_close = on_close
        self._links: str | None = None
        if not files:
            self._con = duckdb.connect()
            self._con.execute(f"CREATE TEMP TABLE records AS SELECT {_EMPTY}, 0::BIGINT AS ord "
                              "LIMIT 0")
            return
        self._links = tempfile.mkdtemp(prefix="policyhub-table-")
        self._con = duckdb.connect(config={
            # Readers order what they need by `ord`; unordered results let DuckDB build tables
            # and joins in parallel without keeping scan order.
            "preserve_insertion_order": False,
            # What does not fit in memory spills here, not to `.tmp` in the working directory
            # (read-only in a Lambda), and goes when the table closes.
            "temp_directory": str(Path(self._links) / "spill"),
        })  # fmt: skip
        low = iso(since) if since is not None else None
        high = iso(until) if until is not None else None
        inside: list[str] = []
        edge: list[str] = []
        for i, f in enumerate(files):
            f = f if isinstance(f, LogFile) else LogFile(f)
            link = str(Path(self._links) / f"{i:09d}.parquet")
            os.symlink(f.path, link)
            within = (low is None or (f.first_at is not None and f.first_at >= low)) and (
                high is None or (f.last_at is not None and f.last_at <= high))  # fmt: skip
            (inside if within else edge).append(link)
        window = []
        if low is not None:
            window.append(f"\"at\" >= '{low}'")
        if high is not None:
            window.append(f"\"at\" <= '{high}'")
        parts = [
            f"SELECT {_COLUMN_LIST}, (parse_filename(filename, true)::BIGINT << 32) "
            f"+ file_row_number AS ord FROM read_parquet([{', '.join(map(_quoted, group))}], "
            "filename=true, file_row_number=true)" + where
            for group, where in ((inside, ""), (edge, f" WHERE {' AND '.join(window) or 'TRUE'}"))
            if group
        ]
        self._con.execute("CREATE TEMP VIEW records AS " + " UNION ALL ".join(parts))

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
        if self._links is not None:
            shutil.rmtree(self._links, ignore_errors=True)
            self._links = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> LogTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_logs(
    decisions: Iterable[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    *,
    context_dim: int,
    item_dim: int,
    on_invalid: Literal["skip", "raise"] = "skip",
) -> tuple[LoggedDataset, JoinReport]:
    """`ml.dataset.join_table` over records in memory (decisions first, then feedback)."""
    records = [
        *({**d, "type": "decision"} for d in decisions),
        *({**f, "type": "feedback"} for f in feedback),
    ]
    with LogTable.of(records) as table:
        return join_table(
            table, context_dim=context_dim, item_dim=item_dim, on_invalid=on_invalid
        )

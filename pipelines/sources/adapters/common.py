"""Plumbing every source adapter shares: find input tables, check their columns, load the code
lists, run the mapping SQL, stream the result to Parquet.

Nothing here knows what a source row *means*: that lives in ``sql/sources/<kind>/*.sql`` and
the code lists in ``sql/reference/sources/*.csv`` (plus ``sql/reference/*.csv``).

Naming rules, one for each kind of thing:

- a CSV is read by :func:`mgca.sources.csv_reader.csv_reader_sql` (every column text);
- a reference file ``<stem>.csv`` (``sql/reference/sources/`` first, then ``sql/reference/``)
  is loaded as table ``ref_<stem>``;
- an adapter's SQL is ``sql/sources/<kind>/<name>.sql``, and the adapter's ``SQL_FILES`` lists
  the names in run order (the one place the order is written). :func:`run_sql_files` runs them,
  and the name says what happens to the file's result:

  - ``<canonical table>.sql`` (e.g. ``persons.sql``): one SELECT whose rows are that table,
    written to ``<table>.parquet``;
  - ``care_events.sql``: one SELECT whose rows are the optional ``care_events`` table (ICU
    stays, dialysis), written to ``care_events.parquet``;
  - ``source_rows.sql``: one SELECT of the source row counts, written to
    ``source_rows.parquet``;
  - ``orphan_codes.sql``: statements defining the view ``orphan_candidates``, which
    ``sql/sources/common/orphan_codes.sql`` then aggregates into ``orphan_codes.parquet`` (the
    codes that look like a study analyte or drug but are in no code list);
  - ``stage_<name>.sql``: one SELECT written once to a private Parquet file and read back as
    view ``stage_<name>``, so a big input table is scanned once;
  - any other name: statements (views, macros, tables) that later files read;
    ``common/<name>`` runs ``sql/sources/common/<name>.sql`` (macros several adapters share,
    e.g. ``common/carrier_fluids``).

Output is written with ``COPY (SELECT …) TO … (FORMAT parquet)`` to a temporary name and
renamed, with ``preserve_insertion_order = false`` so DuckDB streams without buffering the
whole result.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig
from mgca.engine.database import CANONICAL_TABLES, CARE_EVENTS_FILE
from mgca.sources.adapters import ORPHAN_CODES_FILE, Log, write_source_rows
from mgca.sources.csv_reader import (
    compression_hint,
    csv_reader_sql,
    delimiter_hint,
    encoding_hint,
    sql_literal,
)
from mgca.sources.resolve import CANONICAL_TABLE_NAMES, SourceError

# Extensions an input table may have, in the order they are looked for.
TABLE_EXTENSIONS = (".csv.gz", ".csv", ".parquet")

# Folders of the mgca.sql package that hold reference files, in the order they are searched.
REFERENCE_FOLDERS = ("reference/sources", "reference")


@dataclass(frozen=True)
class InputTable:
    """One input table: its name as written in messages (e.g. ``hosp/labevents``) and file."""

    name: str
    file: Path

    @property
    def is_parquet(self) -> bool:
        return self.file.suffix == ".parquet" or self.file.is_dir()


def find_table(root: Path, name: str, extensions: Sequence[str] = TABLE_EXTENSIONS) -> Path | None:
    """The file holding table ``name`` (``hosp/labevents`` → ``hosp/labevents.csv.gz`` …)."""
    for ext in extensions:
        candidate = root / f"{name}{ext}"
        if candidate.is_file():
            return candidate
    folder = root / name  # a folder of Parquet parts (as DuckDB/Spark write them)
    if folder.is_dir() and any(folder.glob("*.parquet")):
        return folder
    return None


def reader_sql(file: Path, delimiter: str = ",") -> str:
    """A DuckDB table function reading ``file``: Parquet (a file or a folder of parts) as
    stored, anything else as CSV with every column text."""
    if file.is_dir():
        return f"read_parquet({sql_literal((file / '*.parquet').as_posix())})"
    if file.suffix == ".parquet":
        return f"read_parquet({sql_literal(file.as_posix())})"
    return csv_reader_sql(file, delimiter)


def input_columns(table: InputTable, kind: str, delimiter: str = ",") -> list[str]:
    """The column names of ``table`` as DuckDB reads them (raises SourceError if unreadable)."""
    if table.file.is_file() and table.file.stat().st_size == 0:
        raise SourceError(
            f"--source {kind}: {table.file} ({table.name}) is empty (0 bytes). Fix: re-export "
            "it with its header row (a table with no rows still needs the header), or remove "
            "it from the extract if the table is optional."
        )
    con = duckdb.connect()
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader_sql(table.file, delimiter)}").fetchall()
    except duckdb.Error as exc:
        hint = compression_hint(table.file) + encoding_hint(str(exc), table.file)
        raise SourceError(
            f"--source {kind}: {table.file} ({table.name}) cannot be read: "
            f"{str(exc).splitlines()[0]}.{hint} Fix: supply the table as the distributor ships "
            "it (delimited .csv/.csv.gz with a header row, or Parquet)."
        ) from exc
    finally:
        con.close()
    return [name for name, *_ in rows]


def require_columns(
    table: InputTable, required: Iterable[str], kind: str, delimiter: str = ","
) -> list[str]:
    """Check ``table`` has every ``required`` column; return its columns.

    The error names the file, the missing column(s), what was found, and the fix.
    """
    required = list(required)
    columns = input_columns(table, kind, delimiter)
    present = {c.lower() for c in columns}
    missing = [c for c in required if c.lower() not in present]
    if missing:
        found = ", ".join(columns[:12]) + (" …" if len(columns) > 12 else "")
        raise SourceError(
            f"--source {kind}: {table.file} ({table.name}) has no column "
            f"{', '.join(repr(m) for m in missing)}; expected columns "
            f"{', '.join(required)}; found: {found}.{delimiter_hint(columns, delimiter)} Fix: "
            "supply the table with its original header (see README, 'Sources')."
        )
    return columns


def open_adapter_db(target: Path, config: MgcaConfig) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``target/.duckdb_tmp`` (inside the private staging
    area) and streams COPY without preserving insertion order."""
    tmp = target / ".duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        config={
            "memory_limit": config.engine.duckdb_memory_limit,
            "threads": config.engine.duckdb_threads,
            "temp_directory": str(tmp),
            "preserve_insertion_order": False,
        }
    )


def _reference_entry(stem: str):
    """The reference file ``<stem>.csv`` inside the ``mgca.sql`` package."""
    package = resources.files("mgca.sql")
    for folder in REFERENCE_FOLDERS:
        entry = package.joinpath(*folder.split("/"), f"{stem}.csv")
        if entry.is_file():
            return entry
    raise KeyError(f"no reference file {stem}.csv in sql/{' or sql/'.join(REFERENCE_FOLDERS)}")


def load_reference(con: duckdb.DuckDBPyConnection, stems: Iterable[str]) -> None:
    """Load each reference file ``<stem>.csv`` as table ``ref_<stem>`` (every column text)."""
    for stem in stems:
        with resources.as_file(_reference_entry(stem)) as path:
            con.execute(
                f'CREATE OR REPLACE TABLE "ref_{stem}" AS SELECT * FROM {csv_reader_sql(path)}'
            )


def reference_rows(stem: str) -> list[dict[str, str]]:
    """A reference file as dicts (small files only; used for push-down filters and checks)."""
    con = duckdb.connect()
    try:
        load_reference(con, (stem,))
        rel = con.execute(f'SELECT * FROM "ref_{stem}"')
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def source_sql(kind: str, name: str) -> str:
    """The text of ``sql/sources/<kind>/<name>.sql``."""
    return (
        resources.files("mgca.sql").joinpath("sources", kind, f"{name}.sql").read_text("utf-8")
    )


def copy_to_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, out: Path) -> None:
    """Stream ``select_sql`` into ``out`` (Parquet), written to a temporary name first."""
    tmp = out.with_name(out.name + ".tmp")
    body = select_sql.strip().rstrip(";")
    con.execute(f"COPY ({body}) TO {sql_literal(tmp.as_posix())} (FORMAT parquet)")
    tmp.replace(out)


def run_sql_files(
    con: duckdb.DuckDBPyConnection, kind: str, names: Sequence[str], target: Path, log: Log
) -> None:
    """Run ``sql/sources/<kind>/<name>.sql`` for each of ``names`` in order; what happens to
    each file's result follows from its name (module docstring)."""
    stage = target / ".stage"
    try:
        for name in names:
            text = source_sql(*name.split("/", 1)) if "/" in name else source_sql(kind, name)
            if name in CANONICAL_TABLE_NAMES:
                copy_to_parquet(con, text, target / f"{name}.parquet")
            elif name == "care_events":
                copy_to_parquet(con, text, target / CARE_EVENTS_FILE)
            elif name == "source_rows":
                write_source_rows(con, text, target)
            elif name == "orphan_codes":
                con.execute(text)
                write_orphan_codes(con, target)
            elif name.startswith("stage_"):
                log(f"{kind}: staging {name.removeprefix('stage_')}")
                stage.mkdir(parents=True, exist_ok=True)
                out = stage / f"{name.removeprefix('stage_')}.parquet"
                copy_to_parquet(con, text, out)
                con.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM '
                    f"read_parquet({sql_literal(out.as_posix())})"
                )
            else:
                con.execute(text)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_orphan_codes(con: duckdb.DuckDBPyConnection, target: Path) -> None:
    """Aggregate the view ``orphan_candidates`` into ``orphan_codes.parquet`` in ``target``
    (``sql/sources/common/orphan_codes.sql``; loads its look-alike rules, value signatures and
    left-out codes from ``sql/reference/sources/``)."""
    load_reference(con, ("orphan_patterns", "orphan_value_signatures", "lab_codes_left_out"))
    copy_to_parquet(con, source_sql("common", "orphan_codes"), target / ORPHAN_CODES_FILE)


def export_canonical(
    con: duckdb.DuckDBPyConnection, views: dict[str, str], target: Path
) -> dict[str, int]:
    """COPY each mapped view (rows with ``skip_reason IS NULL``) to ``<table>.parquet``.

    ``views`` maps canonical table → view name. Columns are cast to the canonical types here,
    so every source writes identical Parquet schemas. DuckDB streams the COPY: rows are never
    held in Python. Returns rows written per table.
    """
    written: dict[str, int] = {}
    for table, view in views.items():
        cols = ", ".join(
            f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in CANONICAL_TABLES[table]
        )
        copy_to_parquet(
            con,
            f"SELECT {cols} FROM {view} WHERE skip_reason IS NULL",
            target / f"{table}.parquet",
        )
        (written[table],) = con.execute(
            "SELECT count(*) FROM read_parquet(?)", [str(target / f"{table}.parquet")]
        ).fetchone()
    return written


def create_view(con: duckdb.DuckDBPyConnection, view: str, table: InputTable | None,
                columns: Sequence[str], delimiter: str = ",") -> None:
    """Create view ``view`` over ``table`` with ``columns`` (lower-cased names, text or typed as
    read); an absent optional table becomes an empty view with the same columns (all NULL)."""
    if table is None:
        cols = ", ".join(f'CAST(NULL AS VARCHAR) AS "{c}"' for c in columns)
        con.execute(f'CREATE OR REPLACE VIEW "{view}" AS SELECT {cols} WHERE false')
        return
    present = {c.lower(): c for c in input_columns(table, "", delimiter)}
    cols = ", ".join(
        (f'"{present[c.lower()]}" AS "{c}"' if c.lower() in present
         else f'CAST(NULL AS VARCHAR) AS "{c}"')
        for c in columns
    )
    con.execute(
        f'CREATE OR REPLACE VIEW "{view}" AS SELECT {cols} FROM {reader_sql(table.file, delimiter)}'
    )

"""Shared plumbing of the source adapters: find tables, check their columns, stream SQL to Parquet.

Everything here moves data; what a source row *means* lives in ``sql/sources/<kind>/*.sql``
and the code lists in ``sql/reference/sources/*.csv``.

Input tables are read by DuckDB as text (``all_varchar``) and cast in the mapping SQL with
``TRY_CAST``, so a value that does not parse becomes a counted skip instead of a crash halfway
through a 100-million-row file. Output is written with ``COPY (SELECT …) TO … (FORMAT parquet)``
to a temporary name and renamed, with ``preserve_insertion_order = false`` so DuckDB streams
without buffering the whole result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig
from mgca.sources.resolve import SourceError

# Extensions an input table may have, in the order they are looked for.
TABLE_EXTENSIONS = (".csv.gz", ".csv", ".parquet")


@dataclass(frozen=True)
class InputTable:
    """One input table: its name as written in messages (e.g. ``hosp/labevents``) and file."""

    name: str
    file: Path

    @property
    def is_parquet(self) -> bool:
        return self.file.suffix == ".parquet" or self.file.is_dir()


def sql_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


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
    """A DuckDB table function reading ``file`` with every column as text."""
    if file.is_dir():
        return f"read_parquet({sql_literal((file / '*.parquet').as_posix())})"
    if file.suffix == ".parquet":
        return f"read_parquet({sql_literal(file.as_posix())})"
    return (
        f"read_csv({sql_literal(file.as_posix())}, header = true, all_varchar = true, "
        f"delim = {sql_literal(delimiter)}, quote = '\"', escape = '\"', "
        "compression = 'auto', strict_mode = false)"
    )


def encoding_hint(message: str, file: Path) -> str:
    """Extra advice when DuckDB's error says the bytes are not UTF-8 (else "")."""
    if "unicode" not in message.lower() and "utf-8" not in message.lower():
        return ""
    return (
        f" The file is not UTF-8 encoded (e.g. Latin-1 'µ' in a unit): re-encode it as UTF-8, "
        f"e.g. iconv -f latin1 -t utf-8 {file.name} > utf8_{file.name}."
    )


def _delimiter_hint(header: str) -> str:
    for sep, name in (("\t", "tabs"), (";", "semicolons"), ("|", "pipes")):
        if sep in header:
            return f" The header contains {name}: the file looks {name}-delimited, not comma."
    return ""


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
        hint = ""
        if table.file.name.endswith(".gz"):
            hint = " If it is not gzip-compressed, drop the .gz suffix; if it is, re-download it."
        hint += encoding_hint(str(exc), table.file)
        raise SourceError(
            f"--source {kind}: {table.file} ({table.name}) cannot be read: "
            f"{str(exc).splitlines()[0]}.{hint} Fix: supply the table as the distributor ships "
            "it (comma-separated .csv/.csv.gz with a header row, or Parquet)."
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
    columns = input_columns(table, kind, delimiter)
    present = {c.lower() for c in columns}
    missing = [c for c in required if c.lower() not in present]
    if missing:
        found = ", ".join(columns[:12]) + (" …" if len(columns) > 12 else "")
        hint = _delimiter_hint(columns[0]) if len(columns) == 1 else ""
        raise SourceError(
            f"--source {kind}: {table.file} ({table.name}) has no column "
            f"{', '.join(repr(m) for m in missing)}; expected columns "
            f"{', '.join(required)}; found: {found}.{hint} Fix: supply the table with its "
            "original header (see README, 'Sources')."
        )
    return columns


def open_adapter_db(target: Path, config: MgcaConfig) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``target/.duckdb_tmp`` (inside the private staging
    area) and streams COPY without preserving insertion order."""
    tmp = target / ".duckdb_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": config.engine.duckdb_memory_limit,
            "threads": config.engine.duckdb_threads,
            "temp_directory": str(tmp),
            "preserve_insertion_order": False,
        }
    )
    return con


def load_reference_csv(con: duckdb.DuckDBPyConnection, table: str, relative: str) -> None:
    """Load ``relative`` (a CSV inside the ``mgca.sql`` package, e.g.
    ``reference/sources/lab_codes.csv``) as table ``table``, every column text so codes such as
    LOINC ``1995-0`` or itemid ``050960`` stay as written."""
    entry = resources.files("mgca.sql").joinpath(*relative.split("/"))
    with resources.as_file(entry) as path:
        con.execute(
            f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM read_csv(?, header = true, '
            "all_varchar = true)",
            [str(path)],
        )


def load_code_list(con: duckdb.DuckDBPyConnection, stem: str) -> None:
    """Load ``sql/reference/sources/<stem>.csv`` (every column text) as table ``<stem>``."""
    load_reference_csv(con, stem, f"reference/sources/{stem}.csv")


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

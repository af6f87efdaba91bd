"""The one way mgca reads a CSV file: every column as text, the delimiter stated, never guessed.

Every CSV the pipeline reads (a source table, an OMOP table, a code list of
``sql/reference/sources/``, a reference file of ``sql/reference/``) goes through
:func:`csv_reader_sql`, so delimiters, the header row, quoting, compression and column types
behave the same everywhere:

- the first row is the header;
- the delimiter is the one the caller states (a config key, the distributor's format, or
  :func:`header_delimiter` for formats documented as "comma or tab");
- fields are quoted and escaped with ``"`` (RFC 4180), ``.gz`` is decompressed;
- every column is text (``all_varchar``): values are cast by the SQL that reads them, with
  ``TRY_CAST`` in the source mappings, so a value that does not parse becomes a counted skip
  instead of a crash halfway through a 100-million-row file, and codes such as LOINC
  ``1995-0`` or itemid ``050960`` stay as written.

This module imports nothing of mgca, so the engine and the source adapters can both use it.
"""

from __future__ import annotations

import gzip
from pathlib import Path

#: Delimiters a header may use → their name in messages.
DELIMITER_NAMES: dict[str, str] = {",": "commas", "\t": "tabs", ";": "semicolons", "|": "pipes"}


def sql_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


CSV_BUFFER_BYTES = 8 * 2**20
"""DuckDB's CSV read buffer per scan (bytes; its default is 32 MB). A source's row counts read
its ten-odd small tables in one query, and each scan holds a buffer: at the default they
alone pass a 200 MB ``engine.duckdb_memory_limit``. 8 MB still holds lines of up to
DuckDB's 2 MB maximum and reads a multi-million-row labevents file as fast."""


def csv_reader_sql(file: Path | str, delimiter: str = ",") -> str:
    """A DuckDB table function reading the CSV ``file`` (plain or ``.gz``), every column text."""
    return (
        f"read_csv({sql_literal(Path(file).as_posix())}, header = true, all_varchar = true, "
        f"delim = {sql_literal(delimiter)}, quote = '\"', escape = '\"', "
        f"compression = 'auto', strict_mode = false, buffer_size = {CSV_BUFFER_BYTES})"
    )


def _header_line(file: Path) -> str:
    """The first line of ``file`` (decompressed when it ends in .gz; "" if unreadable)."""
    try:
        if file.name.endswith(".gz"):
            with gzip.open(file, "rt", encoding="utf-8", errors="replace") as fh:
                return fh.readline()
        with open(file, encoding="utf-8", errors="replace") as fh:
            return fh.readline()
    except (OSError, EOFError):
        return ""


def header_delimiter(file: Path) -> str:
    """The delimiter the header row of ``file`` uses most (comma when it holds none)."""
    header = _header_line(file)
    counts = {sep: header.count(sep) for sep in DELIMITER_NAMES}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def delimiter_hint(columns: list[str], delimiter: str) -> str:
    """Advice when only one column was read: the header holds another delimiter (else "")."""
    if len(columns) != 1:
        return ""
    for sep, name in DELIMITER_NAMES.items():
        if sep != delimiter and sep in columns[0]:
            return (
                f" Only one column was read and the header contains {name}: the file looks "
                f"delimited by {sep!r}, not {delimiter!r}."
            )
    return f" Only one column was read: is the file delimited by {delimiter!r}?"


def encoding_hint(message: str, file: Path) -> str:
    """Advice when DuckDB's error says the bytes are not UTF-8 (else "")."""
    if "unicode" not in message.lower() and "utf-8" not in message.lower():
        return ""
    return (
        f" The file is not UTF-8 encoded (e.g. Latin-1 'µ' in a unit): re-encode it as UTF-8, "
        f"e.g. iconv -f latin1 -t utf-8 {file.name} > utf8_{file.name}."
    )


def compression_hint(file: Path) -> str:
    """Advice for a ``.gz`` file DuckDB cannot read (else "")."""
    if not file.name.endswith(".gz"):
        return ""
    return " If it is not gzip-compressed, drop the .gz suffix; if it is, re-download it."

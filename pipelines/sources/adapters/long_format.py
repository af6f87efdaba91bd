"""Plain long-format extracts (``--source csv``): CSV or Parquet files from anywhere else.

    mgca run --source csv --path extract/ --config my_config.yaml --out runs/extract

The config's ``long_format`` section names the files (relative to ``--path``) and which column
of each holds which canonical field (README, "Sources"). Labs are required; medications,
persons and encounters are optional (a warning each when absent). Analyte values are canonical
analyte names or LOINC codes (``sql/reference/sources/lab_codes.csv``); ingredient values
are names of ``sql/reference/ingredients.csv``. The mapping rules are SQL in
``sql/sources/csv/``, run in the order of :data:`SQL_FILES`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb

from mgca.config import LongFormatConfig, MgcaConfig, _LongFormatTable
from mgca.sources.adapters import AdapterResult, Log
from mgca.sources.adapters.common import (
    InputTable,
    input_columns,
    load_reference,
    open_adapter_db,
    reader_sql,
    run_sql_files,
)
from mgca.sources.csv_reader import delimiter_hint, encoding_hint
from mgca.sources.resolve import CANONICAL_TABLE_NAMES, SourceError

KIND = "csv"
ROLES = ("labs", "medications", "persons", "encounters")
# Reference files the mapping joins (tables ref_<stem>): analyte names are those of
# analyte_bounds.csv, ingredient names those of ingredients.csv.
REFERENCE_STEMS = ("lab_codes", "analyte_bounds", "ingredients")
# sql/sources/csv/<name>.sql in run order (common.run_sql_files: what each name does).
SQL_FILES = ("classify", *CANONICAL_TABLE_NAMES, "source_rows", "orphan_codes")
# canonical field names of each role's view, in order ("file" is not a column)
FIELDS: dict[str, tuple[str, ...]] = {
    "labs": ("subject_id", "encounter_id", "time", "analyte", "value", "unit"),
    "medications": (
        "subject_id", "encounter_id", "time", "ingredient", "dose", "dose_unit", "route", "given",
    ),
    "persons": ("subject_id", "sex", "year_of_birth"),
    "encounters": (
        "encounter_id", "subject_id", "admit_time", "discharge_time", "age_years",
        "died_in_hospital",
    ),
}


def _tables(root: Path, lf: LongFormatConfig) -> dict[str, tuple[_LongFormatTable, Path | None]]:
    out = {}
    for role in ROLES:
        spec = getattr(lf, role)
        if spec is None:
            continue
        file = root / spec.file
        out[role] = (spec, file if file.is_file() else None)
    return out


def _check(root: Path, lf: LongFormatConfig) -> dict[str, tuple[_LongFormatTable, Path | None]]:
    if not root.is_dir():
        raise SourceError(
            f"--path {root} is not a folder; --source csv expects the folder holding the "
            f"extract's files (labs: {lf.labs.file})"
        )
    tables = _tables(root, lf)
    if tables["labs"][1] is None:
        raise SourceError(
            f"--source csv: labs file {root / lf.labs.file} not found. Fix: set "
            "long_format.labs.file in the config to the lab results file (relative to --path)."
        )
    for role, (spec, file) in tables.items():
        if file is None:
            continue
        table = InputTable(role, file)
        read = input_columns(table, KIND, lf.delimiter)
        columns = {c.lower() for c in read}
        for field in FIELDS[role]:
            column = getattr(spec, field)
            if column is not None and column.lower() not in columns:
                found = ", ".join(sorted(columns)[:12])
                hint = delimiter_hint(read, lf.delimiter)
                raise SourceError(
                    f"--source csv: {file} ({role}) has no column {column!r} for {field}; "
                    f"found: {found}.{hint} Fix: set long_format.{role}.{field} in the config "
                    "to the column that holds it (null if the extract has none), or "
                    "long_format.delimiter to the file's delimiter."
                )
    return tables


def check(path: Path) -> None:
    """Fast checks that need no config: ``path`` is an existing folder. The files and their
    columns depend on the run's ``long_format`` config and are checked, before any row is
    read, at the start of :func:`to_canonical`."""
    root = Path(path)
    if not root.is_dir():
        raise SourceError(
            f"--path {root} {'is a file' if root.exists() else 'does not exist'}; --source csv "
            "expects the folder holding the extract's files (named in the config's "
            "long_format section)"
        )


def _create_view(con: duckdb.DuckDBPyConnection, role: str, spec: _LongFormatTable | None,
                 file: Path | None, delimiter: str) -> None:
    fields = FIELDS[role]
    if spec is None or file is None:
        cols = ", ".join(f'CAST(NULL AS VARCHAR) AS "{f}"' for f in fields)
        extra = ", false AS given_configured" if role == "medications" else ""
        con.execute(f'CREATE OR REPLACE VIEW "src_{role}" AS SELECT {cols}{extra} WHERE false')
        return
    present = {c.lower(): c for c in input_columns(InputTable(role, file), KIND, delimiter)}
    parts = []
    for field in fields:
        column = getattr(spec, field)
        parts.append(
            f'"{present[column.lower()]}" AS "{field}"' if column else f'NULL AS "{field}"'
        )
    if role == "medications":
        parts.append(f"{'true' if spec.given else 'false'} AS given_configured")
    con.execute(
        f'CREATE OR REPLACE VIEW "src_{role}" AS SELECT {", ".join(parts)} '
        f"FROM {reader_sql(file, delimiter)}"
    )


def _read_error(exc: duckdb.Error, tables: dict[str, tuple[_LongFormatTable, Path | None]]
                ) -> SourceError:
    """A DuckDB failure while reading the extract's rows, as a message naming file and line."""
    text = str(exc)
    files = [str(f) for _, f in tables.values() if f is not None]
    named = next((f for f in files if f in text), None)
    line = re.search(r"Line: (\d+)", text)
    where = (named or "one of " + ", ".join(files)) + (f", line {line.group(1)}" if line else "")
    return SourceError(
        f"--source csv: {where} cannot be read: {text.splitlines()[0]}."
        f"{encoding_hint(text, Path(named or files[0]))} Fix: repair or re-export that file "
        "(UTF-8 text, one header row, the delimiter of long_format.delimiter)."
    )


def to_canonical(path: Path, target: Path, config: MgcaConfig, log: Log) -> AdapterResult:
    """Map a long-format extract onto the canonical tables in ``target``."""
    root = Path(path)
    lf = config.long_format
    tables = _check(root, lf)
    warnings = []
    for role in ROLES:
        if role not in tables:
            note = "set to null in the config"
        elif tables[role][1] is None:
            note = f"file {tables[role][0].file} not found"
        else:
            continue
        consequence = {
            "medications": "no doses: every stay counts as unexposed",
            "persons": "sex and year of birth unknown",
            "encounters": "one pseudo-stay per subject, age unknown (excluded by the age rule)",
        }[role]
        warnings.append(f"long-format {role}: {note}; {consequence}")
    con = open_adapter_db(target, config)
    try:
        load_reference(con, REFERENCE_STEMS)
        for role in ROLES:
            spec, file = tables.get(role, (None, None))
            _create_view(con, role, spec, file, lf.delimiter)
        has_encounters = "encounters" in tables and tables["encounters"][1] is not None
        con.execute(f"CREATE OR REPLACE TABLE long_format_flags AS SELECT {has_encounters} "
                    "AS has_encounters")
        try:
            run_sql_files(con, KIND, SQL_FILES, target, log)
        except duckdb.Error as exc:  # a bad row past the header (bytes, quoting)
            raise _read_error(exc, tables) from exc
    finally:
        con.close()
        shutil.rmtree(target / ".duckdb_tmp", ignore_errors=True)
    files = tuple(f for _, f in tables.values() if f is not None)
    log(f"csv: mapped {len(files)} extract file(s)")
    return AdapterResult(data_dir=target, input_files=files, warnings=tuple(warnings))

"""Source adapters: map one distributed data shape onto the canonical schema.

Every adapter ends in the same place, a folder of the four canonical Parquet tables
(``persons``, ``encounters``, ``lab_results``, ``medication_administrations``; ARCHITECTURE.md,
"Canonical schema") plus ``source_rows.parquet``, the count of every source row read, by the
canonical table it fed and whether it was mapped or skipped (and why), and, for adapters with
an ``orphan_codes`` SQL file, ``orphan_codes.parquet`` (codes that look like a study analyte or
drug but are in no code list, with their row and stay counts). The flow then loads that
folder exactly as it loads synthetic data, so every source runs the same SQL and models.

An adapter is a module under ``mgca.sources.adapters`` named in :data:`ADAPTERS` that defines

- ``check(path: Path) -> None``: fast checks before any work starts (location exists, required
  tables present, required columns present); raises :class:`mgca.sources.resolve.SourceError` whose
  message names the file, the column, what was expected, and the fix;
- ``to_canonical(path, target, config, log) -> AdapterResult``: write the canonical folder
  into ``target`` (a folder inside the run's private staging area). Large inputs are streamed
  by DuckDB (``read_csv``/``read_parquet`` → ``COPY … TO``), never held in Python memory;
- ``SQL_FILES``: the names of its ``sql/sources/<kind>/<name>.sql`` files in run order (the
  one place that order is written; :mod:`mgca.sources.adapters.common` says what each name
  does).

Mapping rules live in ``sql/sources/<kind>/`` and code lists in ``sql/reference/sources/``
(with their vocabulary), not in Python.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb

Log = Callable[[str], None]

# --source kind → module. "synthetic" and "canonical" are handled by mgca.sources.resolve itself.
ADAPTERS: dict[str, str] = {
    "mimic": "mgca.sources.adapters.mimic",
    "meds": "mgca.sources.adapters.meds",
    "csv": "mgca.sources.adapters.long_format",
    "omop": "mgca.sources.adapters.omop",
    "fhir": "mgca.sources.adapters.fhir",
}

SOURCE_ROWS_FILE = "source_rows.parquet"
# Orphan-code diagnostics beside source_rows (sql/sources/common/orphan_codes.sql): one row per
# unlisted source code that looks like a study analyte or drug, aggregates only.
ORPHAN_CODES_FILE = "orphan_codes.parquet"
ORPHAN_CODES_COLUMNS: dict[str, str] = {
    "source_kind": "VARCHAR",
    "source_table": "VARCHAR",  # e.g. 'measurement', 'Observation'
    "domain": "VARCHAR",  # 'lab' | 'drug'
    "looks_like": "VARCHAR",  # orphan_patterns.csv: magnesium, calcium, albumin, pth, …
    "code": "VARCHAR",  # e.g. 'LOINC:2862-1 (OMOP 3016723)', 'source:ALB EP', 'text:…'
    "display": "VARCHAR",  # the vocabulary's name, or the site's text
    "unit": "VARCHAR",  # the most frequent unit
    "n_rows": "BIGINT",
    "n_stays": "BIGINT",
    "n_stays_added": "BIGINT",  # stays with no mapped row of the look-alike's analytes
    "value_p05": "DOUBLE",
    "value_p50": "DOUBLE",
    "value_p95": "DOUBLE",
    "matched_by": "VARCHAR",  # 'name' | 'left_out_list' | 'unit_value' (orphan_codes.sql)
    "left_out_why": "VARCHAR",  # lab_codes_left_out.csv: known and left out on purpose; else NULL
}

# Columns of source_rows.parquet, in order (one row per source table × target × status × reason).
SOURCE_ROWS_COLUMNS: dict[str, str] = {
    "source_kind": "VARCHAR",  # e.g. 'mimic'
    "source_table": "VARCHAR",  # e.g. 'hosp/labevents' (never a full path: no site names)
    "canonical_table": "VARCHAR",  # e.g. 'lab_results' (NULL for rows that fed nothing)
    "status": "VARCHAR",  # 'mapped' | 'skipped'
    # skipped: why (e.g. 'itemid not in code list'); mapped: NULL, or a note on a kept row
    # that the core SQL will quarantine or treat specially (e.g. 'no numeric value',
    # 'not given: Held')
    "reason": "VARCHAR",
    "n_rows": "BIGINT",
}


@dataclass(frozen=True)
class AdapterResult:
    """What an adapter wrote: the canonical folder and every input file it read."""

    data_dir: Path
    input_files: tuple[Path, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def adapter_module(kind: str) -> ModuleType:
    """The adapter module for ``kind`` (imported on first use)."""
    return importlib.import_module(ADAPTERS[kind])


def source_rows_select_list() -> str:
    """``CAST(col AS type) AS col, …`` over SOURCE_ROWS_COLUMNS, for writers and readers."""
    return ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in SOURCE_ROWS_COLUMNS.items())


def write_source_rows(con: duckdb.DuckDBPyConnection, select_sql: str, target: Path) -> None:
    """Write ``source_rows.parquet`` in ``target`` from a query returning SOURCE_ROWS_COLUMNS."""
    from mgca.sources.adapters.common import copy_to_parquet

    copy_to_parquet(
        con,
        f"SELECT {source_rows_select_list()} FROM ({select_sql})",
        target / SOURCE_ROWS_FILE,
    )

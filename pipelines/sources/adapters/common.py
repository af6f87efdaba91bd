"""Helpers shared by the OMOP and FHIR adapters: reference code lists, SQL files, Parquet export.

Nothing here knows a source's mapping rules: those live in ``sql/sources/<kind>/*.sql`` and the
code lists in ``sql/reference/sources/*.csv`` (plus ``sql/reference/ingredients.csv`` for
RxNorm ingredient codes).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import duckdb

from mgca.engine.database import CANONICAL_TABLES
from mgca.sources.adapters import write_source_rows
from mgca.sources.adapters._common import copy_to_parquet, load_reference_csv

# Reference files every adapter may join: stem → path inside the mgca.sql package.
REFERENCE_FILES = {
    "ingredients": "reference/ingredients.csv",
    "lab_codes": "reference/sources/lab_codes.csv",
    "drug_route_codes": "reference/sources/drug_route_codes.csv",
    "fhir_statuses": "reference/sources/fhir_statuses.csv",
    "omop_drug_types": "reference/sources/omop_drug_types.csv",
    "omop_visit_types": "reference/sources/omop_visit_types.csv",
    "omop_gender": "reference/sources/omop_gender.csv",
    "omop_columns": "reference/sources/omop_columns.csv",
    "fhir_encounter_classes": "reference/sources/fhir_encounter_classes.csv",
}


def load_reference(con: duckdb.DuckDBPyConnection, stems: tuple[str, ...]) -> None:
    """Load code lists as tables named ``ref_<stem>`` (every column text, codes stay text)."""
    for stem in stems:
        load_reference_csv(con, f"ref_{stem}", REFERENCE_FILES[stem])


def reference_rows(stem: str) -> list[dict[str, str]]:
    """A code list as dicts (small files only; used for push-down filters and checks)."""
    con = duckdb.connect()
    try:
        load_reference(con, (stem,))
        rel = con.execute(f"SELECT * FROM ref_{stem}")
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def run_source_sql(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Run every ``sql/sources/<kind>/*.sql`` file in name order."""
    folder = resources.files("mgca.sql").joinpath("sources", kind)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            con.execute(entry.read_text(encoding="utf-8"))


def export_canonical(
    con: duckdb.DuckDBPyConnection, views: dict[str, str], target: Path, source_rows_sql: str
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
    write_source_rows(con, source_rows_sql, target)
    return written


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)

"""What a source's codes map to, and which look-alike codes no list maps (``mgca codes``).

:func:`code_report` runs the source's adapter into a temporary private folder (deleted
afterwards) and returns aggregates only: per canonical analyte or ingredient, the source codes
that fed it with their row and stay counts; and the orphan codes the adapter found
(``orphan_codes.parquet``: ``sql/sources/common/orphan_codes.sql``), with their rows, stays and
the stays they would add. Counts here are raw: whoever shows them suppresses small ones
(``mgca.analysis.report.quality_section.orphan_code_records``, as results.json does).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from mgca.config import MgcaConfig
from mgca.sources.adapters import ORPHAN_CODES_COLUMNS, ORPHAN_CODES_FILE
from mgca.sources.resolve import check_source, resolve_source

ORPHAN_COLUMNS = tuple(ORPHAN_CODES_COLUMNS)


@dataclass(frozen=True)
class CodeReport:
    """Aggregates of one source's codes (raw counts: suppress before showing)."""

    kind: str
    mapped: list[dict[str, Any]]
    orphans: list[dict[str, Any]] | None  # None: this adapter has no orphan diagnostics
    warnings: tuple[str, ...] = field(default_factory=tuple)


def read_orphan_codes(data_dir: Path) -> list[dict[str, Any]] | None:
    """The rows of ``orphan_codes.parquet`` in ``data_dir``, or None when there is none."""
    file = Path(data_dir) / ORPHAN_CODES_FILE
    if not file.is_file():
        return None
    rel = duckdb.sql(f"SELECT {', '.join(ORPHAN_COLUMNS)} FROM read_parquet(?)", params=[str(file)])
    names = [d[0] for d in rel.description]
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def _mapped_codes(data_dir: Path) -> list[dict[str, Any]]:
    con = duckdb.connect()
    try:
        rel = con.execute(
            "SELECT 'lab_results' AS canonical_table, analyte AS canonical, source_code, "
            "count(*) AS n_rows, count(DISTINCT encounter_id) AS n_stays "
            "FROM read_parquet(?) GROUP BY ALL "
            "UNION ALL "
            "SELECT 'medication_administrations', ingredient, source_code, count(*), "
            "count(DISTINCT encounter_id) FROM read_parquet(?) GROUP BY ALL "
            "ORDER BY canonical_table, canonical, n_rows DESC, source_code",
            [
                str(data_dir / "lab_results.parquet"),
                str(data_dir / "medication_administrations.parquet"),
            ],
        )
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    finally:
        con.close()


def code_report(
    kind: str, path: str | Path, config: MgcaConfig, log: Callable[[str], None] = print
) -> CodeReport:
    """Map ``path`` (a ``--source kind`` input) in a temporary folder and summarise its codes."""
    check_source(kind, path, config)
    with tempfile.TemporaryDirectory(prefix="mgca-codes-") as tmp:
        warnings: list[str] = []

        def collect(message: str) -> None:
            if message.startswith("warning: "):
                warnings.append(message.removeprefix("warning: "))
            else:
                log(message)

        source = resolve_source(kind, path, Path(tmp), config, collect)
        data_dir = Path(source.data_dir)
        orphans = read_orphan_codes(data_dir)
        return CodeReport(
            kind=kind,
            mapped=_mapped_codes(data_dir),
            orphans=orphans,
            warnings=tuple(warnings),
        )

"""Patient stories for the SQL tests: tiny hand-written tables in, derived tables out.

A story is a few rows per canonical table, written as a readable pipe table, in the spirit of
OpenSAFELY ehrQL's spec tests::

    story = build(
        encounters='''
            encounter_id | subject_id | admit_time | discharge_time | age_years
            e1           | p1         | d1 00:00   | d9 00:00       | 70
        ''',
        labs='''
            subject_id | encounter_id | time     | analyte   | value | unit
            p1         | e1           | d1 08:00 | magnesium | 0.55  | mmol/L
        ''',
    )
    story.rows("hypomagnesaemia_episodes")

``build`` writes the canonical Parquet files to a temporary folder, loads them with
:func:`mgca.engine.database.load_canonical` (the real loader, explicit casts), writes
``study_config`` and the reference tables, and runs :func:`mgca.engine.derive.derive`.

Cells: ``-`` or an empty cell is null; ``dN HH:MM`` is day N of the story (``d1 08:00`` is
2024-01-01 08:00), ISO ``2024-01-01 08:00`` works too; ``true``/``false`` are booleans.
Columns a story leaves out take the defaults in :data:`DEFAULTS` (e.g. age 60, sex F, route
iv, given true, no source codes); ``persons`` defaults to one woman per subject mentioned.
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mgca.config import MgcaConfig, StudyConfig
from mgca.engine.database import (
    CANONICAL_TABLES,
    CARE_EVENTS_COLUMNS,
    load_canonical,
    load_care_events,
    load_reference_tables,
    open_database,
    write_study_config,
)
from mgca.engine.derive import derive

DAY_ZERO = datetime(2023, 12, 31)  # so that d1 is 2024-01-01

DEFAULTS: dict[str, dict[str, Any]] = {
    "persons": {"sex": "F", "year_of_birth": None},
    "encounters": {"age_years": 60.0, "died_in_hospital": False},
    "lab_results": {"source_code": None},
    "medication_administrations": {"route": "iv", "given": True, "source_code": None},
    "care_events": {"end_time": None, "source_code": None},
}

_TABLE_COLUMNS = {**CANONICAL_TABLES, "care_events": CARE_EVENTS_COLUMNS}
"""The four canonical tables and the optional care_events."""

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP": pa.timestamp("us"),
    "BOOLEAN": pa.bool_(),
}
_STORY_TIME = re.compile(r"^d(\d+)\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_INTEGER = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$|^-?nan$|^-?inf$")


def at(text: str) -> datetime:
    """A story time: ``at("d2 06:30")`` is 2024-01-02 06:30."""
    match = _STORY_TIME.match(text.strip())
    if match:
        day, hour, minute, second = match.groups()
        return DAY_ZERO + timedelta(
            days=int(day), hours=int(hour), minutes=int(minute), seconds=int(second or 0)
        )
    return datetime.fromisoformat(text.strip())


def _cell(text: str, kind: str | None) -> Any:
    """One cell as a value: of the canonical ``kind`` if given, else by its look."""
    text = text.strip()
    if text in {"", "-"}:
        return None
    if kind == "VARCHAR":
        return text
    if kind == "TIMESTAMP":
        return at(text)
    if kind == "BOOLEAN" or (kind is None and text.lower() in {"true", "false"}):
        if text.lower() not in {"true", "false"}:
            raise ValueError(f"not a boolean: {text!r}")
        return text.lower() == "true"
    if kind == "INTEGER" or (kind is None and _INTEGER.match(text)):
        return int(text)
    if kind == "DOUBLE" or (kind is None and _FLOAT.match(text)):
        return float(text)
    if kind is None and (_STORY_TIME.match(text) or re.match(r"^\d{4}-\d{2}-\d{2}", text)):
        return at(text)
    return text


def parse_table(text: str, types: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of a pipe table; cells typed by ``types`` (column -> canonical type) or by look."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return []
    header = [name.strip() for name in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        if set(line) <= set("-|+ "):  # a ruler line under the header
            continue
        cells = line.strip("|").split("|")
        if len(cells) != len(header):
            raise ValueError(f"row has {len(cells)} cells, header {len(header)}: {line!r}")
        rows.append(
            {
                name: _cell(cell, (types or {}).get(name))
                for name, cell in zip(header, cells, strict=True)
            }
        )
    return rows


Rows = str | list[dict[str, Any]] | None


def _rows(table: str, given: Rows) -> list[dict[str, Any]]:
    if given is None:
        return []
    if isinstance(given, str):
        types = {column.name: column.type for column in _TABLE_COLUMNS[table]}
        given = parse_table(given, types)
    unknown = {key for row in given for key in row} - {c.name for c in _TABLE_COLUMNS[table]}
    if unknown:
        raise ValueError(f"{table}: columns {sorted(unknown)} are not canonical")
    return [{**DEFAULTS[table], **row} for row in given]


def _write_parquet(folder: Path, table: str, rows: list[dict[str, Any]]) -> None:
    columns = _TABLE_COLUMNS[table]
    arrays = {
        column.name: pa.array([row.get(column.name) for row in rows], _ARROW_TYPES[column.type])
        for column in columns
    }
    pq.write_table(pa.table(arrays), folder / f"{table}.parquet")


@dataclass
class Story:
    """A derived story database and helpers to read it."""

    con: duckdb.DuckDBPyConnection

    def rows(
        self, table: str, columns: list[str] | None = None, where: str = "TRUE"
    ) -> list[dict[str, Any]]:
        """All rows of ``table`` (optionally a column subset and filter), sorted by all
        selected columns so the order never depends on the engine."""
        selected = ", ".join(columns) if columns else "*"
        relation = self.con.execute(f"SELECT {selected} FROM {table} WHERE {where}")
        names = [d[0] for d in relation.description]
        order = sorted(relation.fetchall(), key=lambda row: tuple((v is None, v) for v in row))
        return [dict(zip(names, row, strict=True)) for row in order]

    def value(self, sql: str) -> Any:
        """The single value of a query."""
        (result,) = self.con.execute(sql).fetchone()
        return result

    def attrition(self) -> dict[int, tuple[int, int | None]]:
        """step_order -> (n_remaining, n_excluded)."""
        return {
            step: (n_remaining, n_excluded)
            for step, n_remaining, n_excluded in self.con.execute(
                "SELECT step_order, n_remaining, n_excluded FROM attrition"
            ).fetchall()
        }

    def excluded_at(self, encounter_id: str) -> int | None:
        """The attrition step a stay was excluded at (None: analysed)."""
        return self.value(
            "SELECT first_failed_step FROM cohort_eligibility "
            f"WHERE encounter_id = '{encounter_id}'"
        )


def build(
    *,
    encounters: Rows,
    labs: Rows = None,
    meds: Rows = None,
    persons: Rows = None,
    care: Rows = None,
    **study: Any,
) -> Story:
    """Load a story into an in-memory DuckDB and derive every table.

    ``care``: rows of the optional ``care_events`` table (ICU stays, dialysis); None writes
    no file, as a source that does not record them. Keyword arguments other than the tables
    override StudyConfig fields (e.g. ``grace_hours=12``)."""
    tables = {
        "encounters": _rows("encounters", encounters),
        "lab_results": _rows("lab_results", labs),
        "medication_administrations": _rows("medication_administrations", meds),
    }
    person_rows = _rows("persons", persons)
    if persons is None:
        subjects = sorted({row["subject_id"] for rows in tables.values() for row in rows})
        person_rows = _rows("persons", [{"subject_id": s} for s in subjects])
    tables["persons"] = person_rows
    config = MgcaConfig(study=StudyConfig(**study))
    con = open_database(":memory:", config)
    with tempfile.TemporaryDirectory(prefix="mgca-story-") as folder:
        for table, rows in tables.items():
            _write_parquet(Path(folder), table, rows)
        load_canonical(con, Path(folder))
        if care is not None:
            _write_parquet(Path(folder), "care_events", _rows("care_events", care))
        load_care_events(con, Path(folder))
    write_study_config(con, config)
    load_reference_tables(con)
    derive(con)
    return Story(con)


def expect(text: str) -> list[dict[str, Any]]:
    """Expected rows written as a pipe table (cells typed by their look)."""
    return parse_table(text)


def expect_one(text: str) -> list[dict[str, Any]]:
    """One expected row written vertically, a ``column | value`` line per column (for rows
    too wide to read across)."""
    pairs = parse_table("name | value\n" + text)
    return [{pair["name"]: pair["value"] for pair in pairs}]


def _same(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(actual, expected, rel_tol=0, abs_tol=1e-6)
    return actual == expected


def assert_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """``actual`` rows equal ``expected`` in order, on the columns ``expected`` names
    (numbers to 1e-6)."""
    columns = list(expected[0]) if expected else []
    shown = [{c: row.get(c) for c in columns} for row in actual]
    assert len(actual) == len(expected), f"expected {len(expected)} rows, got:\n{shown}"
    for number, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        missing = [c for c in columns if c not in got]
        assert not missing, f"columns {missing} not in the derived table"
        wrong = {c: (got[c], want[c]) for c in columns if not _same(got[c], want[c])}
        assert not wrong, f"row {number}: (got, expected) {wrong}\nall rows: {shown}"


# A stay's qualifying draws, shared by the window and secondary-table stories: Mg 0.55 mmol/L
# at d1 08:00, total Ca 1.90 mmol/L with albumin 30 g/L at d1 10:00 (corrected 2.10 mmol/L),
# so index is d1 10:00; creatinine 90 umol/L at d1 06:00 for the baseline.
QUALIFYING_LABS = """
subject_id | encounter_id | time     | analyte       | value | unit
p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
p1         | e1           | d1 10:00 | albumin       | 30    | g/L
"""


def calcium_at(*draws: tuple[str, float]) -> str:
    """Later calcium draws ("d3 10:00", total mmol/L) for patient p1 / stay e1, each with
    albumin 40 g/L beside it, so the corrected value equals the total."""
    return "".join(
        f"\np1 | e1 | {time} | calcium_total | {value} | mmol/L"
        f"\np1 | e1 | {time} | albumin       | 40      | g/L"
        for time, value in draws
    )

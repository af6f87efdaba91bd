"""Open the run's DuckDB database and load what the SQL in ``mgca.sql`` reads.

Public API:

- :func:`open_database` opens (or creates) the database with the engine settings of the config.
- :func:`load_canonical` loads the four canonical Parquet files (ARCHITECTURE.md, "Canonical
  schema") into ``persons``, ``encounters``, ``lab_results`` and
  ``medication_administrations``, casting every column explicitly to its canonical type after
  checking, before any row is read, that each file has the columns and types the contract asks
  for. Anything wrong raises :class:`CanonicalSchemaError` naming the file, the column, what was
  expected and how to fix it. Tables named in ``in_place`` (the run passes
  :data:`IN_PLACE_TABLES`) become views that read the Parquet file where it is, with the same
  casts and checks, instead of copies.
- :func:`lab_results_from_harmonised` turns ``lab_results`` into a view over
  ``lab_harmonised`` once that is derived, so the database never depends on the source files
  after derive.
- :func:`write_study_config` writes the one-row ``study_config`` table the SQL takes every
  threshold from, and ``study_outcome_horizons`` (one row per outcome horizon), values as
  bound parameters, never formatted into SQL.
- :func:`load_reference_tables` loads ``sql/reference/*.csv`` (unit conversions, plausibility
  bounds and reporting precision, ingredients, CTCAE grade cut-points) as tables named after
  the file stems.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig, StudyConfig
from mgca.sources.csv_reader import csv_reader_sql


class CanonicalSchemaError(ValueError):
    """A canonical input file that the pipeline cannot use; the message says how to fix it."""


class ReferenceDataError(ValueError):
    """A reference CSV in ``sql/reference`` that breaks its own invariants."""


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    type: str
    nullable: bool = True
    optional: bool = False  # may be absent from the file: loaded as all NULL


CANONICAL_TABLES: dict[str, tuple[Column, ...]] = {
    "persons": (
        Column("subject_id", "VARCHAR", nullable=False),
        Column("sex", "VARCHAR"),
        Column("year_of_birth", "INTEGER", optional=True),
    ),
    "encounters": (
        Column("encounter_id", "VARCHAR", nullable=False),
        Column("subject_id", "VARCHAR", nullable=False),
        Column("admit_time", "TIMESTAMP", nullable=False),
        Column("discharge_time", "TIMESTAMP", nullable=False),
        Column("age_years", "DOUBLE"),
        Column("died_in_hospital", "BOOLEAN", optional=True),
    ),
    "lab_results": (
        Column("subject_id", "VARCHAR", nullable=False),
        Column("encounter_id", "VARCHAR"),
        Column("time", "TIMESTAMP", nullable=False),
        Column("analyte", "VARCHAR", nullable=False),
        Column("value", "DOUBLE"),
        Column("unit", "VARCHAR"),
        Column("source_code", "VARCHAR", optional=True),
    ),
    "medication_administrations": (
        Column("subject_id", "VARCHAR", nullable=False),
        Column("encounter_id", "VARCHAR"),
        Column("time", "TIMESTAMP", nullable=False),
        Column("ingredient", "VARCHAR", nullable=False),
        Column("dose", "DOUBLE"),
        Column("dose_unit", "VARCHAR"),
        Column("route", "VARCHAR", optional=True),
        Column("given", "BOOLEAN", nullable=False),
        Column("source_code", "VARCHAR", optional=True),
    ),
}

# Columns whose values must be unique in their file.
UNIQUE_KEYS: dict[str, str] = {"persons": "subject_id", "encounters": "encounter_id"}

_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
_TIMESTAMP_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})

# Parquet column types (as DuckDB reads them) that cast losslessly to each canonical type.
_ACCEPTED_TYPES: dict[str, frozenset[str]] = {
    "VARCHAR": frozenset({"VARCHAR"}) | _INTEGER_TYPES,  # integer ids become their digits
    "INTEGER": _INTEGER_TYPES,
    "DOUBLE": frozenset({"DOUBLE", "FLOAT"}) | _INTEGER_TYPES,
    "TIMESTAMP": _TIMESTAMP_TYPES,
    "BOOLEAN": frozenset({"BOOLEAN"}),
}

_FIX_HINT = {
    "VARCHAR": "write it as a string column (e.g. pyarrow pa.string())",
    "INTEGER": "write it as an integer column (e.g. pyarrow pa.int32())",
    "DOUBLE": "write it as a floating-point column (e.g. pyarrow pa.float64())",
    "TIMESTAMP": (
        "write it as a naive timestamp in the source's own clock (e.g. pyarrow "
        "pa.timestamp('us')); convert time-zone-aware times to local naive times and "
        "parse strings or dates to timestamps in the adapter"
    ),
    "BOOLEAN": "write it as a boolean column (true/false), not as text or 0/1",
}


def _accepts(canonical: str, found: str) -> bool:
    if found.startswith("DECIMAL"):
        return canonical == "DOUBLE"
    return found in _ACCEPTED_TYPES[canonical]


def open_database(path: str | Path, config: MgcaConfig) -> duckdb.DuckDBPyConnection:
    """Open (or create) the DuckDB database at ``path`` (``":memory:"`` for a throw-away one).

    ``memory_limit``, ``threads`` and ``temp_directory`` (where DuckDB spills beyond the
    memory limit) come from ``config.engine``. ``preserve_insertion_order`` is off: no SQL
    step relies on the order rows were inserted in (every reader orders explicitly), and
    keeping it would make DuckDB buffer whole intermediate results to restore that order.
    """
    settings: dict[str, str | int | bool] = {
        "memory_limit": config.engine.duckdb_memory_limit,
        "threads": config.engine.duckdb_threads,
        "preserve_insertion_order": False,
    }
    if config.engine.duckdb_temp_directory is not None:
        settings["temp_directory"] = config.engine.duckdb_temp_directory
    return duckdb.connect(str(path), config=settings)


def _parquet_schema(con: duckdb.DuckDBPyConnection, file: Path) -> dict[str, str]:
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(file)]).fetchall()
    except duckdb.Error as exc:
        raise CanonicalSchemaError(
            f"{file}: cannot be read as Parquet ({exc}). Re-write it with the source adapter."
        ) from exc
    return {name: column_type for name, column_type, *_ in rows}


def _schema_problems(table: str, file: Path, schema: dict[str, str]) -> list[str]:
    return _column_problems(CANONICAL_TABLES[table], file, schema)


def _column_problems(
    columns: Iterable[Column], file: Path, schema: dict[str, str]
) -> list[str]:
    problems = []
    for column in columns:
        found = schema.get(column.name)
        if found is None:
            if column.optional:
                continue
            problems.append(
                f"{file.name}: column '{column.name}' is missing; expected {column.type}"
                f"{'' if column.nullable else ' NOT NULL'}. Fix: have the source adapter write "
                f"'{column.name}'"
                + (" (all null if the source lacks it)" if column.nullable else "")
                + "; see ARCHITECTURE.md, Canonical schema."
            )
        elif found == '"NULL"' and column.nullable:
            continue  # an all-null column written without a type: casts to anything
        elif not _accepts(column.type, found):
            problems.append(
                f"{file.name}: column '{column.name}' has type {found}; expected "
                f"{column.type}. Fix: {_FIX_HINT[column.type]}."
            )
    return problems


def _select_list(columns: Iterable[Column], present: set[str]) -> str:
    parts = []
    for column in columns:
        source = f'"{column.name}"' if column.name in present else "NULL"
        parts.append(f'CAST({source} AS {column.type}) AS "{column.name}"')
    return ",\n    ".join(parts)


def _content_problems(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    problems = []
    for column in CANONICAL_TABLES[table]:
        if column.nullable:
            continue
        (n_null,) = con.execute(
            f'SELECT count(*) FROM "{table}" WHERE "{column.name}" IS NULL'
        ).fetchone()
        if n_null:
            problems.append(
                f"{table}.parquet: column '{column.name}' has {n_null} null value(s); "
                f"expected NOT NULL. Fix: drop or repair those rows in the source adapter."
            )
    key = UNIQUE_KEYS.get(table)
    if key:
        (n_dup,) = con.execute(
            f'SELECT count(*) - count(DISTINCT "{key}") FROM "{table}"'
        ).fetchone()
        if n_dup:
            problems.append(
                f"{table}.parquet: column '{key}' has {n_dup} repeated value(s); expected "
                f"unique. Fix: write one row per {key} in the source adapter."
            )
    return problems


def _failing_cast_column(
    con: duckdb.DuckDBPyConnection, file: Path, columns: Iterable[Column], present: set[str]
) -> Column | None:
    """The first column of ``file`` holding a value its canonical type cannot hold (e.g. a
    year of birth beyond INTEGER), or None."""
    for column in columns:
        if column.name not in present:
            continue
        (n_bad,) = con.execute(
            f'SELECT count(*) FROM read_parquet(?) WHERE "{column.name}" IS NOT NULL '
            f'AND TRY_CAST("{column.name}" AS {column.type}) IS NULL',
            [str(file)],
        ).fetchone()
        if n_bad:
            return column
    return None


IN_PLACE_TABLES: tuple[str, ...] = ("lab_results",)
"""Canonical tables a run reads from their Parquet file instead of copying them into the
database: the lab rows, by far the largest input, which the SQL reads only to derive
``lab_harmonised`` (every row, with every source column) and to count them. Copying them cost
a write of every lab row (0.4 CPU s per million rows) and stored each lab row twice;
:func:`lab_results_from_harmonised` re-points the view at ``lab_harmonised`` after derive."""


def load_canonical(
    con: duckdb.DuckDBPyConnection, data_dir: Path, in_place: Iterable[str] = ()
) -> dict[str, int]:
    """Load the four canonical Parquet files of ``data_dir``; return rows loaded per table.

    Every file's columns and types are checked before anything is loaded, and all problems
    are reported at once. Columns are cast explicitly to their canonical types. After loading,
    NOT NULL columns and unique keys are checked.

    Tables named in ``in_place`` become views over their Parquet file (same columns, casts and
    checks, nothing copied): the file must then stay where it is until the SQL has read it
    (:func:`mgca.engine.derive.derive` calls :func:`lab_results_from_harmonised` at its end).
    The default copies every table, so the folder may be deleted right after loading.
    """
    in_place = frozenset(in_place)
    data_dir = Path(data_dir)
    schemas: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for table in CANONICAL_TABLES:
        file = data_dir / f"{table}.parquet"
        if not file.is_file():
            problems.append(
                f"{file.name}: not found in {data_dir}. Fix: point at the folder a source "
                "adapter wrote (it holds persons, encounters, lab_results and "
                "medication_administrations .parquet)."
            )
            continue
        schemas[table] = _parquet_schema(con, file)
        problems += _schema_problems(table, file, schemas[table])
    if problems:
        raise CanonicalSchemaError(
            f"canonical input in {data_dir} does not match the contract:\n  "
            + "\n  ".join(problems)
        )

    counts: dict[str, int] = {}
    for table, columns in CANONICAL_TABLES.items():
        file = data_dir / f"{table}.parquet"
        select = _select_list(columns, set(schemas[table]))
        try:
            if table in in_place:
                # a view cannot take a bound parameter: the absolute path as a quoted literal
                literal = "'" + str(file.resolve()).replace("'", "''") + "'"
                con.execute(f'DROP TABLE IF EXISTS "{table}"')
                con.execute(
                    f'CREATE OR REPLACE VIEW "{table}" AS\nSELECT\n    {select}\n'
                    f"FROM read_parquet({literal})"
                )
            else:
                con.execute(f'DROP VIEW IF EXISTS "{table}"')
                con.execute(
                    f'CREATE OR REPLACE TABLE "{table}" AS\nSELECT\n    {select}\n'
                    "FROM read_parquet(?)",
                    [str(file)],
                )
        except duckdb.Error as exc:
            column = _failing_cast_column(con, file, columns, set(schemas[table]))
            where = (
                f"column '{column.name}' has values that do not fit {column.type}"
                if (column)
                else "values do not cast to the canonical types"
            )
            raise CanonicalSchemaError(
                f"{file.name}: {where} ({str(exc).splitlines()[0]}). Fix: write the columns "
                "with the types and ranges of ARCHITECTURE.md, Canonical schema."
            ) from exc
        problems += _content_problems(con, table)
        (counts[table],) = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    if problems:
        raise CanonicalSchemaError(
            f"canonical input in {data_dir} breaks the contract:\n  " + "\n  ".join(problems)
        )
    return counts


def lab_results_from_harmonised(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``lab_results`` a view over ``lab_harmonised`` when it is a view over the source's
    Parquet file (:data:`IN_PLACE_TABLES`), so the run's database (and its cached copy) never
    reads the source folder again. ``lab_harmonised`` holds every ``lab_results`` row once
    with every source column; the source's encounter_id is its encounter_id unless the stay was
    attached by time (``encounter_assigned_by_time``: the source gave none). A copied table is
    left as it is."""
    (n_views,) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name = 'lab_results' AND table_type = 'VIEW'"
    ).fetchone()
    if not n_views:
        return
    con.execute(
        "CREATE OR REPLACE VIEW lab_results AS\n"
        "SELECT\n"
        "    subject_id,\n"
        "    CASE WHEN encounter_assigned_by_time THEN NULL ELSE encounter_id END"
        " AS encounter_id,\n"
        "    time,\n"
        "    analyte,\n"
        "    value,\n"
        "    unit,\n"
        "    source_code\n"
        "FROM lab_harmonised"
    )


def load_source_rows(
    con: duckdb.DuckDBPyConnection, data_dir: Path, canonical_counts: dict[str, int]
) -> None:
    """Create ``source_row_counts``: every source row read, by target table, status and reason.

    A source adapter writes ``source_rows.parquet`` beside the canonical tables (see
    ``mgca.sources.adapters``). A canonical or synthetic folder has none: its rows are the canonical
    tables themselves, each counted as mapped.
    """
    from mgca.sources.adapters import SOURCE_ROWS_COLUMNS, SOURCE_ROWS_FILE, source_rows_select_list

    load_orphan_codes(con, data_dir)
    file = Path(data_dir) / SOURCE_ROWS_FILE
    if file.is_file():
        con.execute(
            "CREATE OR REPLACE TABLE source_row_counts AS "
            f"SELECT {source_rows_select_list()} FROM read_parquet(?)",
            [str(file)],
        )
        return
    rows = [
        ("canonical", f"{table}.parquet", table, "mapped", None, n)
        for table, n in canonical_counts.items()
    ]
    con.execute(
        "CREATE OR REPLACE TABLE source_row_counts ("
        + ", ".join(f"{c} {t}" for c, t in SOURCE_ROWS_COLUMNS.items())
        + ")"
    )
    con.executemany("INSERT INTO source_row_counts VALUES (?, ?, ?, ?, ?, ?)", rows)



def load_orphan_codes(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Create ``source_orphan_codes`` from the adapter's ``orphan_codes.parquet`` (codes that
    look like a study analyte or drug but are in no code list; aggregates only), empty when the
    source wrote none (synthetic, canonical, or an adapter without orphan diagnostics)."""
    from mgca.sources.adapters import ORPHAN_CODES_COLUMNS, ORPHAN_CODES_FILE

    file = Path(data_dir) / ORPHAN_CODES_FILE
    if file.is_file():
        columns = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in ORPHAN_CODES_COLUMNS.items())
        con.execute(
            f"CREATE OR REPLACE TABLE source_orphan_codes AS SELECT {columns} "
            "FROM read_parquet(?)",
            [str(file)],
        )
        return
    con.execute(
        "CREATE OR REPLACE TABLE source_orphan_codes ("
        + ", ".join(f"{c} {t}" for c, t in ORPHAN_CODES_COLUMNS.items())
        + ")"
    )


CARE_EVENTS_FILE = "care_events.parquet"
"""The optional fifth canonical file: care a stay received that is neither a lab nor a drug."""

CARE_EVENTS_COLUMNS: tuple[Column, ...] = (
    Column("subject_id", "VARCHAR", nullable=False),
    Column("encounter_id", "VARCHAR"),
    Column("start_time", "TIMESTAMP", nullable=False),
    Column("end_time", "TIMESTAMP"),
    Column("event", "VARCHAR", nullable=False),
    Column("source_code", "VARCHAR", optional=True),
)
"""``care_events``: one row per ICU stay or dialysis session. ``event`` is one of
:data:`CARE_EVENTS`; ``end_time`` null for a point event (a dialysis session charted once)."""

CARE_EVENTS: tuple[str, ...] = ("icu_stay", "dialysis")
"""``icu_stay``: a stay in an intensive care unit (a severity proxy); ``dialysis``: any renal
replacement therapy (haemodialysis, CRRT, peritoneal: an eligibility exclusion)."""


def create_care_events_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the empty ``care_events`` table with its canonical columns."""
    columns_sql = ", ".join(
        f"{c.name} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in CARE_EVENTS_COLUMNS
    )
    con.execute(f"CREATE OR REPLACE TABLE care_events ({columns_sql})")


def load_care_events(con: duckdb.DuckDBPyConnection, data_dir: Path) -> int:
    """Create ``care_events`` from ``care_events.parquet`` of ``data_dir``; return its rows.

    The file is optional: a source that does not record ICU stays or dialysis writes none and
    the table is empty, so the SQL sees "not recorded by this source" (index_severity.sql) and
    excludes nobody for dialysis. Columns are checked and cast like the four required tables.
    """
    file = Path(data_dir) / CARE_EVENTS_FILE
    create_care_events_table(con)
    if not file.is_file():
        return 0
    schema = _parquet_schema(con, file)
    problems = _column_problems(CARE_EVENTS_COLUMNS, file, schema)
    if problems:
        raise CanonicalSchemaError(
            f"{file.name} does not match the contract:\n  " + "\n  ".join(problems)
        )
    select = _select_list(CARE_EVENTS_COLUMNS, set(schema))
    try:
        con.execute(f"INSERT INTO care_events SELECT {select} FROM read_parquet(?)", [str(file)])
    except duckdb.Error as exc:
        raise CanonicalSchemaError(
            f"{file.name}: values do not fit the canonical types or a required column is "
            f"empty ({str(exc).splitlines()[0]}). Fix: write the columns of ARCHITECTURE.md, "
            "Canonical schema, care_events."
        ) from exc
    (unknown,) = con.execute(
        "SELECT count(*) FROM care_events WHERE event NOT IN "
        f"({', '.join(repr(e) for e in CARE_EVENTS)})"
    ).fetchone()
    if unknown:
        raise CanonicalSchemaError(
            f"{file.name}: column 'event' holds values other than {', '.join(CARE_EVENTS)}"
        )
    (n,) = con.execute("SELECT count(*) FROM care_events").fetchone()
    return int(n)


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_TYPE = {float: "DOUBLE", int: "INTEGER", bool: "BOOLEAN", str: "VARCHAR"}

# StudyConfig list fields: each becomes a one-column table (never a study_config column).
STUDY_LIST_TABLES: dict[str, str] = {"outcome_horizons_hours": "study_outcome_horizons"}
# ReportConfig keys the SQL reads from study_config (trajectory_sample.sql).
REPORT_SQL_KEYS: tuple[str, ...] = ("trajectory_sample_size", "trajectory_sample_seed")


def study_config_values(config: MgcaConfig) -> dict[str, float | int]:
    """The values of the one-row ``study_config`` table, in column order (list fields such as
    ``outcome_horizons_hours`` are left out: see :func:`study_outcome_horizons`)."""
    values: dict[str, float | int] = {
        name: value
        for name, value in config.study.model_dump().items()
        if name not in STUDY_LIST_TABLES
    }
    values["small_cell_threshold"] = config.privacy.small_cell_threshold
    values.update({name: getattr(config.report, name) for name in REPORT_SQL_KEYS})
    values["per_protocol_interval_hours"] = config.per_protocol.interval_hours
    return values


def study_outcome_horizons(config: MgcaConfig) -> list[tuple[int, bool]]:
    """Rows of ``study_outcome_horizons`` (horizon_hours, is_primary): every entry of
    ``outcome_horizons_hours`` plus the primary ``horizon_hours`` if it is not listed,
    ascending."""
    study = config.study
    horizons = sorted({*study.outcome_horizons_hours, study.horizon_hours})
    return [(hours, hours == study.horizon_hours) for hours in horizons]


def _study_config_types() -> dict[str, str]:
    types = {
        name: _SQL_TYPE[field.annotation]
        for name, field in StudyConfig.model_fields.items()
        if name not in STUDY_LIST_TABLES
    }
    types["small_cell_threshold"] = "INTEGER"
    types.update({name: "INTEGER" for name in REPORT_SQL_KEYS})
    types["per_protocol_interval_hours"] = "INTEGER"
    return types


def write_study_config(con: duckdb.DuckDBPyConnection, config: MgcaConfig) -> None:
    """Create the one-row ``study_config`` table (one column per scalar StudyConfig field plus
    ``small_cell_threshold``, ``trajectory_sample_size`` and ``trajectory_sample_seed``) and
    ``study_outcome_horizons`` (horizon_hours INTEGER, is_primary BOOLEAN: one row per
    target-trial outcome horizon, so SQL joins the horizons instead of building queries).
    Values travel as bound parameters."""
    values = study_config_values(config)
    types = _study_config_types()
    for name in values:
        if not _IDENTIFIER.match(name):  # field names are code, but never trust a name in SQL
            raise ValueError(f"study config key {name!r} is not a plain SQL identifier")
    columns = ", ".join(f"{name} {types[name]}" for name in values)
    con.execute(f"CREATE OR REPLACE TABLE study_config ({columns})")
    placeholders = ", ".join("?" for _ in values)
    con.execute(f"INSERT INTO study_config VALUES ({placeholders})", list(values.values()))
    con.execute(
        "CREATE OR REPLACE TABLE study_outcome_horizons "
        "(horizon_hours INTEGER NOT NULL, is_primary BOOLEAN NOT NULL)"
    )
    for hours, is_primary in study_outcome_horizons(config):
        con.execute("INSERT INTO study_outcome_horizons VALUES (?, ?)", [hours, is_primary])


# Typed columns and key of each reference CSV; CSVs not listed load with detected types.
REFERENCE_SCHEMAS: dict[str, dict[str, str]] = {
    "unit_conversions": {
        "analyte": "VARCHAR",
        "unit": "VARCHAR",
        "si_unit": "VARCHAR",
        "factor_to_si": "DOUBLE",
        "source": "VARCHAR",
    },
    "analyte_bounds": {
        "analyte": "VARCHAR",
        "si_unit": "VARCHAR",
        "plausible_low": "DOUBLE",
        "plausible_high": "DOUBLE",
        "reporting_decimals": "INTEGER",
        "source": "VARCHAR",
    },
    "ingredients": {
        "ingredient": "VARCHAR",
        "role": "VARCHAR",
        "drug_class": "VARCHAR",
        "elemental_mmol_per_g": "DOUBLE",
        "valence": "INTEGER",
        "rxnorm": "VARCHAR",
        "rxnorm_status": "VARCHAR",
        "atc": "VARCHAR",
        "atc_status": "VARCHAR",
        "source": "VARCHAR",
        "omop_concept_id": "BIGINT",
        "code_verification": "VARCHAR",
    },
    "ctcae_grades": {
        "measure": "VARCHAR",
        "grade": "INTEGER",
        "below_si": "DOUBLE",
        "si_unit": "VARCHAR",
        "ctcae_term": "VARCHAR",
        "source": "VARCHAR",
    },
    "egfr_ckd_epi_2021": {
        "sex": "VARCHAR",
        "kappa_mg_dl": "DOUBLE",
        "alpha": "DOUBLE",
        "sex_factor": "DOUBLE",
        "intercept": "DOUBLE",
        "exponent_above_kappa": "DOUBLE",
        "age_factor_per_year": "DOUBLE",
        "source": "VARCHAR",
    },
}
REFERENCE_KEYS: dict[str, tuple[str, ...]] = {
    "unit_conversions": ("analyte", "unit"),
    "analyte_bounds": ("analyte",),
    "ingredients": ("ingredient",),
    "ctcae_grades": ("measure", "grade"),
    "egfr_ckd_epi_2021": ("sex",),
}


def normalise_unit(unit: str) -> str:
    """The spelling ``unit_conversions.unit`` holds: lower case, no spaces, µ/μ written u.

    ``lab_harmonised.sql`` applies the same rule in SQL."""
    return unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u")


def _load_reference_csv(con: duckdb.DuckDBPyConnection, stem: str, path: Path) -> None:
    """Load ``reference/<stem>.csv`` as table ``stem``: read as text by the one CSV reader
    (:func:`mgca.sources.csv_reader.csv_reader_sql`), header checked against
    :data:`REFERENCE_SCHEMAS`, cast, key checked for repeats."""
    schema = REFERENCE_SCHEMAS.get(stem)
    if schema is None:
        raise ReferenceDataError(
            f"reference/{path.name} has no schema; add its columns and types to "
            "REFERENCE_SCHEMAS and its key to REFERENCE_KEYS in mgca.engine.database"
        )
    reader = csv_reader_sql(path)
    rel = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    header = [row[0] for row in rel]
    if header != list(schema):
        raise ReferenceDataError(
            f"reference/{path.name}: header is {header}; expected {list(schema)}"
        )
    select = ", ".join(f'CAST("{col}" AS {kind}) AS "{col}"' for col, kind in schema.items())
    con.execute(
        f'CREATE OR REPLACE TABLE "{stem}" AS SELECT {select} FROM {reader}'
    )
    key = ", ".join(f'"{col}"' for col in REFERENCE_KEYS[stem])
    repeated = con.execute(
        f'SELECT {key} FROM "{stem}" GROUP BY {key} HAVING count(*) > 1'
    ).fetchall()
    if repeated:
        raise ReferenceDataError(
            f"reference/{path.name}: key ({key}) repeats for {repeated}; keep one row each"
        )
    if stem == "unit_conversions":
        units = [u for (u,) in con.execute("SELECT DISTINCT unit FROM unit_conversions").fetchall()]
        bad = sorted(u for u in units if u is None or u != normalise_unit(u))
        if bad:
            raise ReferenceDataError(
                f"reference/{path.name}: units {bad} are not in normalised spelling "
                "(lower case, no spaces, u for micro)"
            )
    if stem == "analyte_bounds":
        bad = con.execute(
            "SELECT analyte FROM analyte_bounds "
            "WHERE reporting_decimals IS NULL OR reporting_decimals NOT BETWEEN 0 AND 6"
        ).fetchall()
        if bad:
            raise ReferenceDataError(
                f"reference/{path.name}: reporting_decimals of {sorted(a for (a,) in bad)} "
                "must be a whole number from 0 to 6"
            )
    if stem == "ctcae_grades":
        # a worse grade has a lower cut-point; only grade 1 may leave it to the config's LLN
        bad = con.execute(
            "SELECT a.measure, a.grade FROM ctcae_grades AS a "
            "INNER JOIN ctcae_grades AS b ON b.measure = a.measure AND b.grade > a.grade "
            "WHERE b.below_si IS NULL OR (a.below_si IS NOT NULL AND b.below_si >= a.below_si) "
            "UNION SELECT measure, grade FROM ctcae_grades "
            "WHERE grade NOT BETWEEN 1 AND 5 OR (below_si IS NULL AND grade <> 1)"
        ).fetchall()
        if bad:
            raise ReferenceDataError(
                f"reference/{path.name}: grades {sorted(bad)} break the order of cut-points "
                "(grade 1 may be blank = the config's lower limit; each worse grade lower)"
            )


def load_reference_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Load every ``reference/*.csv`` of the ``mgca.sql`` package as a table named after the
    file's stem; return the table names loaded."""
    folder = resources.files("mgca.sql").joinpath("reference")
    loaded = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".csv"):
            continue
        stem = entry.name[: -len(".csv")]
        with resources.as_file(entry) as path:
            _load_reference_csv(con, stem, Path(path))
        loaded.append(stem)
    missing = set(REFERENCE_SCHEMAS) - set(loaded)
    if missing:
        raise ReferenceDataError(f"reference CSVs missing from mgca.sql/reference: {missing}")
    return loaded


def write_run_inputs(
    con: duckdb.DuckDBPyConnection, data_dir: Path, counts: dict[str, int], config: MgcaConfig
) -> None:
    """What every engine writes into the run's DuckDB besides the canonical tables: the source
    row counts, the reference tables and the study config."""
    load_source_rows(con, data_dir, counts)
    load_care_events(con, data_dir)
    load_reference_tables(con)
    write_study_config(con, config)

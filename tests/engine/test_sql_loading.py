"""Loading the inputs the SQL reads (mgca.engine.database) and running it (mgca.engine.derive)."""

from __future__ import annotations

import re
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.stories import build

from mgca.config import MgcaConfig, PrivacyConfig, StudyConfig
from mgca.engine.database import (
    CANONICAL_TABLES,
    CanonicalSchemaError,
    ReferenceDataError,
    _load_reference_csv,
    load_canonical,
    load_reference_tables,
    open_database,
    write_study_config,
)
from mgca.engine.derive import SQL_STEPS, DerivationError, derive, read_sql

T0 = datetime(2024, 1, 1, 8, 0)


def _canonical_folder(folder: Path, **replace: pa.Table) -> Path:
    """One person, one stay, one lab, one dose; ``replace`` swaps a whole table."""
    tables = {
        "persons": pa.table({"subject_id": ["p1"], "sex": ["F"], "year_of_birth": [1950]}),
        "encounters": pa.table(
            {
                "encounter_id": ["e1"],
                "subject_id": ["p1"],
                "admit_time": [T0],
                "discharge_time": [T0],
                "age_years": [70.0],
                "died_in_hospital": [False],
            }
        ),
        "lab_results": pa.table(
            {
                "subject_id": ["p1"],
                "encounter_id": ["e1"],
                "time": [T0],
                "analyte": ["magnesium"],
                "value": [0.6],
                "unit": ["mmol/L"],
                "source_code": ["x"],
            }
        ),
        "medication_administrations": pa.table(
            {
                "subject_id": ["p1"],
                "encounter_id": ["e1"],
                "time": [T0],
                "ingredient": ["magnesium_sulfate"],
                "dose": [2.0],
                "dose_unit": ["g"],
                "route": ["iv"],
                "given": [True],
                "source_code": ["x"],
            }
        ),
    }
    tables.update(replace)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def _con() -> duckdb.DuckDBPyConnection:
    return open_database(":memory:", MgcaConfig())


def test_canonical_files_load_with_their_counts_and_canonical_types(tmp_path: Path) -> None:
    con = _con()
    counts = load_canonical(con, _canonical_folder(tmp_path))
    assert counts == {
        "persons": 1, "encounters": 1, "lab_results": 1, "medication_administrations": 1,
    }  # fmt: skip
    for table, columns in CANONICAL_TABLES.items():
        described = con.execute(f"DESCRIBE {table}").fetchall()
        assert [(row[0], row[1]) for row in described] == [(c.name, c.type) for c in columns]


def test_integer_ids_and_nanosecond_times_are_cast_and_optional_columns_may_be_absent(
    tmp_path: Path,
) -> None:
    # MIMIC-style integer ids become their digits; a source without source_code still loads.
    labs = pa.table({
        "subject_id": pa.array([10001], pa.int64()), "encounter_id": pa.array([None], pa.int64()),
        "time": pa.array([T0], pa.timestamp("ns")), "analyte": ["magnesium"],
        "value": pa.array([1], pa.int32()), "unit": ["mg/dL"],
    })  # fmt: skip
    con = _con()
    load_canonical(con, _canonical_folder(tmp_path, lab_results=labs))
    assert con.execute("SELECT * FROM lab_results").fetchall() == [
        ("10001", None, T0, "magnesium", 1.0, "mg/dL", None)
    ]


def _error(tmp_path: Path, **replace: pa.Table) -> str:
    with pytest.raises(CanonicalSchemaError) as info:
        load_canonical(_con(), _canonical_folder(tmp_path, **replace))
    return str(info.value)


def test_missing_column_names_file_column_expectation_and_fix(tmp_path: Path) -> None:
    labs = pa.table({"subject_id": ["p1"], "time": [T0], "analyte": ["magnesium"],
                     "value": [0.6], "unit": ["mmol/L"]})  # fmt: skip
    message = _error(tmp_path, lab_results=labs)
    assert "lab_results.parquet" in message
    assert "'encounter_id' is missing" in message
    assert "expected VARCHAR" in message
    assert "Fix:" in message


def test_wrong_types_are_all_reported_before_anything_loads(tmp_path: Path) -> None:
    # time written as text and given as 0/1: two problems, one message.
    labs = pa.table({"subject_id": ["p1"], "encounter_id": ["e1"], "time": ["2024-01-01"],
                     "analyte": ["magnesium"], "value": [0.6], "unit": ["mmol/L"]})  # fmt: skip
    meds = pa.table({"subject_id": ["p1"], "encounter_id": ["e1"], "time": [T0],
                     "ingredient": ["magnesium_sulfate"], "dose": [2.0], "dose_unit": ["g"],
                     "given": pa.array([1], pa.int8())})  # fmt: skip
    message = _error(tmp_path, lab_results=labs, medication_administrations=meds)
    assert re.search(
        r"lab_results\.parquet: column 'time' has type VARCHAR; expected TIMESTAMP", message
    )
    assert "medication_administrations.parquet: column 'given' has type TINYINT" in message
    assert "expected BOOLEAN" in message


def test_time_zone_aware_times_are_refused(tmp_path: Path) -> None:
    stays = pa.table({
        "encounter_id": ["e1"], "subject_id": ["p1"],
        "admit_time": pa.array([T0], pa.timestamp("us", tz="UTC")),
        "discharge_time": [T0], "age_years": [70.0],
    })  # fmt: skip
    message = _error(tmp_path, encounters=stays)
    assert "encounters.parquet: column 'admit_time'" in message
    assert "naive" in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    _canonical_folder(tmp_path)
    (tmp_path / "persons.parquet").unlink()
    with pytest.raises(CanonicalSchemaError, match=r"persons\.parquet: not found"):
        load_canonical(_con(), tmp_path)


def test_nulls_in_required_columns_and_repeated_ids_are_refused(tmp_path: Path) -> None:
    persons = pa.table({"subject_id": ["p1", "p1"], "sex": ["F", "F"]})
    labs = pa.table({"subject_id": ["p1"], "encounter_id": ["e1"],
                     "time": pa.array([None], pa.timestamp("us")), "analyte": ["magnesium"],
                     "value": [0.6], "unit": ["mmol/L"]})  # fmt: skip
    message = _error(tmp_path, persons=persons, lab_results=labs)
    assert "persons.parquet: column 'subject_id' has 1 repeated value(s)" in message
    assert "lab_results.parquet: column 'time' has 1 null value(s)" in message


class _Recorder:
    """A connection stand-in that records every statement and its parameters."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.calls: list[tuple[str, Any]] = []

    def execute(self, sql: str, parameters: Any = None) -> Any:
        self.calls.append((sql, parameters))
        return self.con.execute(sql, parameters)


def test_study_config_is_one_row_written_with_bound_parameters() -> None:
    config = MgcaConfig(
        study=StudyConfig(mg_low_mmol_l=0.6543, grace_hours=8),
        privacy=PrivacyConfig(small_cell_threshold=13),
    )
    con = _con()
    recorder = _Recorder(con)
    write_study_config(recorder, config)  # type: ignore[arg-type]
    row = con.execute("SELECT * FROM study_config").fetchdf().to_dict("records")
    assert len(row) == 1
    scalar_fields = [name for name in StudyConfig.model_fields if name != "outcome_horizons_hours"]
    assert list(row[0]) == [
        *scalar_fields,
        "small_cell_threshold",
        "trajectory_sample_size",
        "trajectory_sample_seed",
        "per_protocol_interval_hours",
    ]
    assert row[0]["mg_low_mmol_l"] == 0.6543
    assert row[0]["grace_hours"] == 8
    assert row[0]["small_cell_threshold"] == 13
    sql_text = " ".join(sql for sql, _ in recorder.calls)
    assert "0.6543" not in sql_text and "13" not in sql_text
    assert any(params and 0.6543 in params for _, params in recorder.calls)
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'study_config'"
        ).fetchall()
    )
    assert types["mg_low_mmol_l"] == "DOUBLE" and types["grace_hours"] == "INTEGER"


def test_outcome_horizons_are_a_table_with_the_primary_one_flagged() -> None:
    # The list cannot be a study_config column: it becomes study_outcome_horizons, written
    # with bound parameters, the primary horizon_hours added when the list lacks it.
    config = MgcaConfig(study=StudyConfig(horizon_hours=60, outcome_horizons_hours=(24, 72)))
    con = _con()
    recorder = _Recorder(con)
    write_study_config(recorder, config)  # type: ignore[arg-type]
    assert con.execute("SELECT * FROM study_outcome_horizons ORDER BY 1").fetchall() == [
        (24, False),
        (60, True),
        (72, False),
    ]
    assert not any("72" in sql for sql, _ in recorder.calls)
    assert "outcome_horizons_hours" not in con.execute("SELECT * FROM study_config").fetchdf()


def test_reference_csvs_that_break_their_invariants_are_refused(tmp_path: Path) -> None:
    # A CTCAE grade whose cut-point is not below the milder grade's, and a reporting
    # precision that is not a whole number of decimals, would silently mis-grade or
    # mis-round every result: loading stops instead.
    grades = tmp_path / "ctcae_grades.csv"
    grades.write_text(
        "measure,grade,below_si,si_unit,ctcae_term,source\n"
        "magnesium,1,,mmol/L,Hypomagnesemia,x\n"
        "magnesium,2,0.4,mmol/L,Hypomagnesemia,x\n"
        "magnesium,3,0.5,mmol/L,Hypomagnesemia,x\n"
    )
    with pytest.raises(ReferenceDataError, match="cut-points"):
        _load_reference_csv(_con(), "ctcae_grades", grades)
    bounds = tmp_path / "analyte_bounds.csv"
    bounds.write_text(
        "analyte,si_unit,plausible_low,plausible_high,reporting_decimals,source\n"
        "magnesium,mmol/L,0.1,10,,x\n"
    )
    with pytest.raises(ReferenceDataError, match="reporting_decimals"):
        _load_reference_csv(_con(), "analyte_bounds", bounds)


def test_open_database_applies_engine_settings(tmp_path: Path) -> None:
    config = MgcaConfig.model_validate(
        {"engine": {"duckdb_threads": 1, "duckdb_memory_limit": "512MB"}}
    )
    con = open_database(tmp_path / "x.duckdb", config)
    threads, limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    assert threads == 1
    assert limit.startswith("488")  # 512 MB in MiB


def test_reference_tables_load_typed() -> None:
    con = _con()
    assert set(load_reference_tables(con)) >= {
        "unit_conversions", "analyte_bounds", "ingredients", "ctcae_grades",
    }  # fmt: skip
    assert con.execute(
        "SELECT reporting_decimals FROM analyte_bounds WHERE analyte = 'potassium'"
    ).fetchone() == (1,)
    assert con.execute(
        "SELECT grade, below_si FROM ctcae_grades WHERE measure = 'magnesium' ORDER BY grade"
    ).fetchall() == [(1, None), (2, 0.5), (3, 0.4), (4, 0.3)]
    factor = con.execute(
        "SELECT factor_to_si FROM unit_conversions WHERE analyte = 'magnesium' AND unit = 'mg/dl'"
    ).fetchone()
    assert factor == (0.4114,)
    assert con.execute(
        "SELECT valence FROM ingredients WHERE ingredient = 'omeprazole'"
    ).fetchone() == (None,)


def test_derive_refuses_to_start_without_its_inputs() -> None:
    with pytest.raises(DerivationError, match="write_study_config"):
        derive(_con())


def test_a_failing_step_is_reported_with_its_sql_file() -> None:
    story = build(encounters=None)
    story.con.execute("ALTER TABLE medication_administrations RENAME COLUMN given TO was_given")
    with pytest.raises(DerivationError, match=r"medication_harmonised\.sql") as info:
        derive(story.con)
    assert info.value.sql_file == "medication_harmonised.sql"


def test_progress_is_told_each_step_in_order() -> None:
    story = build(encounters=None)
    seen: list[str] = []
    derive(story.con, progress=seen.append)
    n = len(SQL_STEPS)
    assert seen == [f"derive {i}/{n}: {name}" for i, name in enumerate(SQL_STEPS, start=1)]


# --- the SQL files themselves --------------------------------------------------------------


def _code(sql: str) -> str:
    """SQL without comments and string literals."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"'[^']*'", "''", sql)


def test_every_sql_file_runs_and_every_step_exists() -> None:
    files = {
        entry.name for entry in resources.files("mgca.sql").iterdir() if entry.name.endswith(".sql")
    }
    assert files == set(SQL_STEPS)


@pytest.mark.parametrize("sql_file", SQL_STEPS)
def test_sql_files_keep_to_the_portable_subset(sql_file: str) -> None:
    sql = read_sql(sql_file)
    assert sql.startswith("-- "), "each file opens with a header comment"
    assert "Reads:" in sql and "Writes:" in sql
    code = _code(sql).upper()
    for construct in (
        r"\bQUALIFY\b",
        r"\bASOF\b",
        r"\bMACRO\b",
        r"\bRANGE\s*\(",
        r"\bINTERVAL\b",
        r"::",
        r"\bEPOCH\s*\(",
    ):
        assert not re.search(construct, code), construct
    creates = re.findall(r"\bCREATE\b[^(]*?\bTABLE\b", code)
    assert creates and all(c.startswith("CREATE OR REPLACE TABLE") for c in creates)


@pytest.mark.parametrize("sql_file", SQL_STEPS)
def test_sql_files_take_thresholds_from_study_config_not_literals(sql_file: str) -> None:
    # Numbers in SQL code may only be small counters/step numbers, the seconds in an hour and
    # the rounding precision (10 is the base of power(10, reporting_decimals), the decimal
    # places themselves come from analyte_bounds); every clinical threshold or window is a
    # study_config column.
    numbers = re.findall(r"(?<![\w.])\d+(?:\.\d+)?", _code(read_sql(sql_file)))
    allowed = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "3600.0"}
    assert set(numbers) <= allowed, numbers

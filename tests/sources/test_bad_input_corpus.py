"""The bad-input corpus (tests/sources/bad_inputs/): every malformed extract either stops the
run with one message naming the file, the column or line, and the fix, or is loaded with the bad
rows quarantined and counted by reason. Never a bare traceback, never a silent drop.

Each case folder is a plain long-format extract (--source csv; see
tests/sources/bad_inputs/README.md).
Cases run through the same functions the Prefect tasks call (resolve_source → load_database →
derive_tables) on a real DuckDB file; the CLI's exit-2 path is checked once at the end.
Canonical-Parquet cases (types, time zones, missing columns) are in test_canonical_fuzz.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from mgca.cli import USER_ERRORS, main
from mgca.config import MgcaConfig
from mgca.run import study
from mgca.sources.resolve import resolve_source

CORPUS = Path(__file__).parent / "bad_inputs"


def corpus_config(labs_file: str = "labs.csv") -> MgcaConfig:
    return MgcaConfig.model_validate(
        {
            "long_format": {
                "labs": {"file": labs_file, "subject_id": "pid", "encounter_id": "stay",
                         "time": "drawn", "analyte": "test", "value": "result",
                         "unit": "units"},
                "medications": {"file": "meds.csv", "subject_id": "pid", "encounter_id": "stay",
                                "time": "at", "ingredient": "drug", "dose": "amount",
                                "dose_unit": "unit", "route": "route", "given": "given"},
                "persons": None,
                "encounters": {"file": "stays.csv", "encounter_id": "stay", "subject_id": "pid",
                               "admit_time": "admit", "discharge_time": "discharge",
                               "age_years": "age", "died_in_hospital": None},
            }
        }
    )


def run_case(case: Path, tmp_path: Path) -> Path:
    """Source → DuckDB → SQL derivation, as the flow does; return the database path."""
    labs = "labs.csv.gz" if (case / "labs.csv.gz").exists() else "labs.csv"
    config = corpus_config(labs)
    staging = tmp_path / "staging"
    (staging / "private").mkdir(parents=True)
    resolved = resolve_source("csv", case, staging, config, lambda _m: None)
    db = staging / "private" / "mgca.duckdb"
    study.load_database(resolved.data_dir, db, config, lambda _m: None)
    study.derive_tables(db, config, lambda _m: None)
    return db


def counted(db: Path, sql: str) -> dict[tuple, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {tuple(row[:-1]): int(row[-1]) for row in con.execute(sql).fetchall()}


def source_reasons(db: Path) -> dict[tuple, int]:
    return counted(
        db,
        "SELECT source_table, status, reason, sum(n_rows) FROM source_row_counts "
        "WHERE reason IS NOT NULL GROUP BY ALL",
    )


def lab_quarantine(db: Path) -> dict[tuple, int]:
    return counted(
        db,
        "SELECT check_name, sum(n_flagged) FROM data_quality WHERE table_name = 'lab_results' "
        "AND check_name LIKE 'status:%' AND check_name <> 'status:used' GROUP BY ALL",
    )


# case → (words the one-line error must contain: file, column or line, fix)
REJECTED = {
    "truncated_gzip": ["labs.csv.gz", "gzip", "Fix:"],
    "wrong_delimiter": ["labs.csv", "'pid'", "delimited by", "Fix:"],
    "missing_required_column": ["labs.csv", "'drawn'", "long_format.labs.time", "Fix:"],
    "empty_file": ["labs.csv", "empty (0 bytes)", "Fix:"],
    "empty_stays_file": ["stays.csv", "empty (0 bytes)", "Fix:"],
    "non_utf8_bytes": ["labs.csv", "Line: 5", "not UTF-8", "iconv", "Fix:"],
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_inputs_name_file_place_and_fix(case: str, tmp_path: Path) -> None:
    with pytest.raises(USER_ERRORS) as info:
        run_case(CORPUS / case, tmp_path)
    message = str(info.value)
    assert "Traceback" not in message
    for word in REJECTED[case]:
        assert word in message, f"{case}: {word!r} missing from: {message}"


def test_valid_extract_has_nothing_quarantined(tmp_path: Path) -> None:
    db = run_case(CORPUS / "valid", tmp_path)
    assert source_reasons(db) == {}
    assert lab_quarantine(db) == {}
    assert counted(db, "SELECT 'labs', count(*) FROM lab_results") == {("labs",): 16}


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    db = run_case(CORPUS / "extra_columns", tmp_path)
    assert counted(db, "SELECT 'labs', count(*) FROM lab_results") == {("labs",): 16}
    assert source_reasons(db) == {}


def test_text_in_numeric_columns_is_kept_null_and_counted(tmp_path: Path) -> None:
    db = run_case(CORPUS / "text_in_numeric_columns", tmp_path)
    assert source_reasons(db) == {
        ("labs", "mapped", "no numeric value"): 2,
        ("encounters", "mapped", "age not numeric"): 1,
    }
    assert lab_quarantine(db) == {("status:missing_value",): 2}


def test_unparseable_timestamps_are_skipped_and_counted(tmp_path: Path) -> None:
    db = run_case(CORPUS / "unparseable_timestamps", tmp_path)
    assert source_reasons(db) == {("labs", "skipped", "time missing or unparseable"): 3}
    assert counted(db, "SELECT 'labs', count(*) FROM lab_results") == {("labs",): 13}


def test_time_zone_offsets_are_skipped_never_silently_dropped(tmp_path: Path) -> None:
    # DuckDB's cast would drop "+01:00" and "Z" silently and mix two clocks in one series.
    db = run_case(CORPUS / "mixed_timezone_timestamps", tmp_path)
    assert source_reasons(db) == {
        ("labs", "skipped", "time has a UTC offset or Z (local clock expected)"): 5
    }


def test_duplicated_rows_are_quarantined_with_counts(tmp_path: Path) -> None:
    db = run_case(CORPUS / "duplicated_rows", tmp_path)
    assert lab_quarantine(db) == {("status:duplicate",): 4}


def test_negative_or_absurd_values_are_quarantined(tmp_path: Path) -> None:
    db = run_case(CORPUS / "negative_or_absurd_values", tmp_path)
    assert lab_quarantine(db) == {("status:implausible_value",): 3}


def test_unknown_units_are_quarantined(tmp_path: Path) -> None:
    db = run_case(CORPUS / "unknown_units", tmp_path)
    # two Mg rows in furlongs; a Ca row with no unit (never guessed by default)
    assert lab_quarantine(db) == {("status:unknown_unit",): 3}


def test_zero_row_source_loads_and_explains_no_episodes(tmp_path: Path) -> None:
    db = run_case(CORPUS / "zero_rows", tmp_path)
    assert counted(db, "SELECT 'labs', count(*) FROM lab_results") == {("labs",): 0}
    assert counted(db, "SELECT 'c', count(*) FROM analytic_cohort") == {("c",): 0}


def test_bad_bytes_past_the_header_sample_name_file_and_line(tmp_path: Path) -> None:
    case = tmp_path / "late_bytes"
    shutil.copytree(CORPUS / "valid", case)
    header, first = (CORPUS / "valid" / "labs.csv").read_text().splitlines()[:2]
    body = "\n".join([header] + [first] * 30_000) + "\n"
    (case / "labs.csv").write_bytes(
        body.encode() + b"1,e1,2024-03-02 08:00:00,creatinine,88,\xb5mol/L\n"
    )
    with pytest.raises(USER_ERRORS) as info:
        run_case(case, tmp_path / "run")
    message = str(info.value)
    assert "labs.csv" in message and "line 30002" in message and "not UTF-8" in message


@pytest.mark.slow
def test_one_subject_with_100k_labs_loads(tmp_path: Path) -> None:
    """A subject with 1e5 lab rows (a monitoring feed) loads and derives without blowing up."""
    case = tmp_path / "big_subject"
    shutil.copytree(CORPUS / "valid", case)
    lines = ["pid,stay,drawn,test,result,units"]
    for i in range(100_000):
        minute = i % 60
        hour = (i // 60) % 24
        day = 2 + (i // 1440) % 6
        lines.append(f"1,e1,2024-03-0{day} {hour:02d}:{minute:02d}:00,magnesium,0.6{i % 10},mmol/L")
    (case / "labs.csv").write_text("\n".join(lines) + "\n")
    db = run_case(case, tmp_path / "run")
    assert counted(db, "SELECT 'labs', count(*) FROM lab_results") == {("labs",): 100_000}
    # same subject, same minute, same value: exact repeats are quarantined as duplicates
    quarantine = lab_quarantine(db)
    assert set(quarantine) <= {("status:duplicate",)}


@pytest.mark.slow
def test_cli_reports_bad_input_in_one_line_with_exit_2(tmp_path: Path) -> None:
    """The user-facing path (a real Prefect run): exit 2 and one 'error:' line.

    Prefect's own flow-run log still prints the failed run's traceback above it (Prefect logs
    every failed flow); the message the user acts on is never only a traceback."""
    config = tmp_path / "config.yaml"
    config.write_text(corpus_config().to_yaml())
    result = CliRunner().invoke(
        main,
        ["run", "--source", "csv", "--path", str(CORPUS / "missing_required_column"),
         "--config", str(config), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output[-2000:]
    assert "'drawn'" in errors[0] and "Fix:" in errors[0], errors
    assert not (tmp_path / "out").exists()

"""--source meds on hand-written MEDS shards (data/<split>/*.parquet), real DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from helpers.source_fixtures import MEDS_ROWS, write_meds

from mgca.config import load_config
from mgca.sources.adapters import meds
from mgca.sources.resolve import SourceError


def _run(src: Path, tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    target = tmp_path / "canonical"
    target.mkdir()
    return target, meds.to_canonical(src, target, load_config(), lambda m: None).warnings


def _q(sql: str) -> list[tuple]:
    return duckdb.sql(sql).fetchall()


def test_maps_and_counts_every_row(tmp_path: Path) -> None:
    target, warnings = _run(write_meds(tmp_path / "meds"), tmp_path)
    assert warnings == ()
    (total,) = _q(f"SELECT sum(n_rows) FROM '{target}/source_rows.parquet'")[0]
    assert total == len(MEDS_ROWS)
    reasons = dict(_q(f"SELECT reason, n_rows FROM '{target}/source_rows.parquet'"))
    assert reasons["code not in meds_codes.csv"] == 1
    assert reasons["lab code not in code list"] == 1
    assert not any("obstetric" in (reason or "") for reason in reasons)  # mapped, see below
    assert reasons["no numeric value"] == 1 and reasons["not given: Not Given"] == 1
    labs = _q(f"SELECT analyte, value, unit FROM '{target}/lab_results.parquet' ORDER BY ALL")
    assert ("magnesium", 1.2, "mg/dL") in labs  # float32 1.2 read as 1.2, unit from the code
    assert ("albumin", 3.8, "g/dL") in labs  # LOINC default unit
    given = _q(
        f"SELECT given, dose FROM '{target}/medication_administrations.parquet' ORDER BY time"
    )
    # MgSO4 given, MgSO4 not given, obstetric MgSO4 given (its own ingredient: excludes)
    assert given == [(True, 2.0), (False, None), (True, 4.0)]
    (stay,) = _q(f"SELECT encounter_id, age_years FROM '{target}/encounters.parquet'")
    assert stay[0] == "20001" and 60 < stay[1] < 61
    assert _q(f"SELECT sex, year_of_birth FROM '{target}/persons.parquet'") == [("F", 2090)]


def test_no_stay_codes_gives_pseudo_stay_with_warning(tmp_path: Path) -> None:
    rows = [r for r in MEDS_ROWS if not r[2].startswith("HOSPITAL_")]
    target, warnings = _run(write_meds(tmp_path / "meds", rows, hadm=False), tmp_path)
    assert any("pseudo-stay" in w for w in warnings)
    assert _q(f"SELECT encounter_id FROM '{target}/encounters.parquet'") == [("subject:1",)]
    ids = _q(f"SELECT DISTINCT encounter_id FROM '{target}/lab_results.parquet'")
    assert ids == [("subject:1",)]


def test_missing_column_named(tmp_path: Path) -> None:
    shard = tmp_path / "meds" / "data" / "0.parquet"
    shard.parent.mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT 1::BIGINT AS subject_id, 'X' AS code, 1.0::FLOAT AS numeric_value) "
        f"TO '{shard}' (FORMAT parquet)"
    )
    with pytest.raises(SourceError, match=r"0\.parquet has no column 'time'"):
        meds.check(tmp_path / "meds")


def test_text_times_rejected(tmp_path: Path) -> None:
    shard = tmp_path / "meds" / "data" / "0.parquet"
    shard.parent.mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT 1::BIGINT AS subject_id, '2150-01-01' AS time, 'X' AS code, "
        f"1.0::FLOAT AS numeric_value) TO '{shard}' (FORMAT parquet)"
    )
    with pytest.raises(SourceError, match="'time' has type VARCHAR"):
        meds.check(tmp_path / "meds")


def test_not_parquet(tmp_path: Path) -> None:
    shard = tmp_path / "meds" / "data" / "0.parquet"
    shard.parent.mkdir(parents=True)
    shard.write_text("subject_id,time,code\n")
    with pytest.raises(SourceError, match="cannot be read as Parquet"):
        meds.check(tmp_path / "meds")
    (tmp_path / "empty" / "data").mkdir(parents=True)
    with pytest.raises(SourceError, match="no Parquet shards"):
        meds.check(tmp_path / "empty")

"""--source mimic on hand-written MIMIC-IV v3.1-shaped files (tests/helpers/mimic_fixture.py):
real csv.gz files, real DuckDB, every source row accounted for."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest
from helpers.mimic_fixture import TABLES, csv_text, write_mimic

from mgca.config import load_config
from mgca.sources.adapters import ADAPTERS, mimic
from mgca.sources.resolve import SourceError, check_source


def _run(src: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    target = tmp_path / "canonical"
    target.mkdir()
    logs: list[str] = []
    result = mimic.to_canonical(src, target, load_config(), logs.append)
    return target, list(result.warnings)


def _rows(target: Path, table: str, where: str = "true") -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{target / table}.parquet') WHERE {where}")\
        .fetchall()


def test_registered() -> None:
    assert ADAPTERS["mimic"] == "mgca.sources.adapters.mimic"


def test_every_row_read_is_mapped_or_skipped(tmp_path: Path) -> None:
    target, warnings = _run(write_mimic(tmp_path / "mimic"), tmp_path)
    assert warnings == []
    counts = dict(
        duckdb.sql(
            f"SELECT source_table, sum(n_rows) FROM '{target}/source_rows.parquet' GROUP BY 1"
        ).fetchall()
    )
    expected = {name: len(rows) for name, rows in TABLES.items() if name != "hosp/d_labitems"}
    assert counts == expected


def test_labs_by_itemid_with_unit_and_no_numeric_value(tmp_path: Path) -> None:
    target, _ = _run(write_mimic(tmp_path / "mimic"), tmp_path)
    reasons = dict(
        duckdb.sql(
            f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
            "WHERE source_table = 'hosp/labevents'"
        ).fetchall()
    )
    assert reasons["itemid not in code list"] == 1  # hematocrit 51221
    assert reasons["itemid excluded: urine magnesium (not serum)"] == 1
    assert reasons["charttime missing or unparseable"] == 1
    assert reasons["no numeric value"] == 1  # '___' haemolysed potassium, kept as NULL
    (k,) = _rows(target, "lab_results", "analyte = 'potassium'")
    assert k[4] is None and k[5] == "mEq/L" and k[6] == "MIMIC-IV:50971"
    units = {r[5] for r in _rows(target, "lab_results", "analyte = 'magnesium'")}
    assert units == {"mg/dL", "mmol/L"}  # as reported; harmonised later by lab_harmonised.sql
    unlinked = _rows(target, "lab_results", "subject_id = '10003'")
    assert unlinked and all(r[1] is None for r in unlinked)


def test_emar_given_only_when_administered(tmp_path: Path) -> None:
    target, _ = _run(write_mimic(tmp_path / "mimic"), tmp_path)
    meds = _rows(target, "medication_administrations", "ingredient = 'magnesium_sulfate'")
    by_source = {(r[0], r[7]) for r in meds}
    # 10001 Administered (given), 10002 Not Given and Held (not given), 10003 ICU infusion
    assert by_source == {("10001", True), ("10002", False), ("10003", True)}
    given = [r for r in meds if r[0] == "10001"]
    assert given[0][4:7] == (2.0, "gm", "iv")  # dose from the parent emar_detail row
    reasons = dict(
        duckdb.sql(
            f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
            "WHERE source_table IN ('hosp/emar', 'icu/inputevents')"
        ).fetchall()
    )
    assert not any("obstetric" in (reason or "") for reason in reasons)
    # obstetric MgSO4 (eMAR 'Magnesium Sulfate (OB)', ICU itemid 227524) keeps its own
    # ingredient, never magnesium_sulfate: the core SQL excludes the stay instead
    obstetric = _rows(target, "medication_administrations", "ingredient LIKE '%obstetric%'")
    assert sorted((r[0], r[3], r[7], r[8]) for r in obstetric) == [
        ("10002", "magnesium_sulfate_obstetric", True, "MIMIC-IV:emar:magnesium sulfate (ob)"),
        ("10002", "magnesium_sulfate_obstetric", True, "MIMIC-IV:inputevents:227524"),
    ]
    assert reasons["not given: Not Given"] == 1 and reasons["not given: Held"] == 1
    assert reasons["not a dose event: Stopped"] == 1
    assert reasons["rewritten (charting correction)"] == 1
    (presc,) = duckdb.sql(
        f"SELECT status, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'hosp/prescriptions'"
    ).fetchall()
    assert presc == ("skipped", 2)


def test_age_and_stays(tmp_path: Path) -> None:
    target, _ = _run(write_mimic(tmp_path / "mimic"), tmp_path)
    stays = {r[0]: r for r in _rows(target, "encounters")}
    assert set(stays) == {"20001", "20002", "20003"}  # 20004 ends before it starts
    assert stays["20003"][4] == 46.0  # anchor_age 45 in 2139, admitted 2140
    assert stays["20002"][5] is True


def test_missing_optional_icu_table_warns(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic", skip=("icu/inputevents",))
    target, warnings = _run(src, tmp_path)
    assert any("icu/inputevents not found" in w for w in warnings)
    assert not _rows(target, "medication_administrations", "subject_id = '10003'")


def test_plain_csv_and_parquet_inputs(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic", gz=False)
    labs = src / "hosp" / "labevents.csv"
    duckdb.sql(
        f"COPY (SELECT * FROM read_csv('{labs}', all_varchar = true)) "
        f"TO '{src}/hosp/labevents.parquet' (FORMAT parquet)"
    )
    labs.unlink()
    target, _ = _run(src, tmp_path)
    assert len(_rows(target, "lab_results")) == 26


def test_missing_required_table(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic", skip=("hosp/labevents",))
    with pytest.raises(SourceError, match="hosp/labevents"):
        check_source("mimic", src)


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic")
    text = csv_text("hosp/labevents", TABLES["hosp/labevents"]).replace("valuenum", "value_num")
    (src / "hosp" / "labevents.csv.gz").write_bytes(gzip.compress(text.encode()))
    with pytest.raises(SourceError) as err:
        mimic.check(src)
    assert "labevents.csv.gz" in str(err.value) and "'valuenum'" in str(err.value)


def test_wrong_delimiter(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic")
    text = csv_text("hosp/patients", TABLES["hosp/patients"], delimiter=";")
    (src / "hosp" / "patients.csv.gz").write_bytes(gzip.compress(text.encode()))
    with pytest.raises(SourceError, match="semicolons"):
        mimic.check(src)


def test_bad_gzip(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic")
    (src / "hosp" / "admissions.csv.gz").write_bytes(b"subject_id,hadm_id\n1,2\n")
    with pytest.raises(SourceError, match=r"admissions\.csv\.gz"):
        mimic.check(src)


def test_cli_exit_2_on_bad_input(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mgca.cli import main

    result = CliRunner().invoke(
        main, ["run", "--source", "mimic", "--path", str(tmp_path / "nowhere")]
    )
    assert result.exit_code == 2 and "does not exist" in result.output


def test_icu_stays_and_dialysis_become_care_events(tmp_path: Path) -> None:
    # icu/icustays -> icu_stay; procedureevents dialysis itemids -> dialysis; other
    # procedures are skipped as not in the code list (counted in source_rows)
    target, _ = _run(write_mimic(tmp_path / "mimic"), tmp_path)
    rows = duckdb.sql(
        f"SELECT subject_id, encounter_id, event, source_code FROM '{target}/care_events.parquet' "
        "ORDER BY event"
    ).fetchall()
    assert rows == [
        ("10002", "20002", "dialysis", "MIMIC-IV:225802"),
        ("10001", "20001", "icu_stay", "MIMIC-IV:icustays"),
    ]
    skipped = duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'icu/procedureevents' AND status = 'skipped'"
    ).fetchall()
    assert skipped == [("itemid not in code list", 1)]


def test_without_icu_tables_no_care_event_is_written(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic", skip=("icu/icustays", "icu/procedureevents"))
    target, warnings = _run(src, tmp_path)
    assert any("icu/icustays not found" in w and "not recorded" in w for w in warnings)
    rows = duckdb.sql(f"SELECT count(*) FROM '{target}/care_events.parquet'").fetchall()
    assert rows == [(0,)]

"""OMOP CDM and FHIR R4 adapters on tiny hand-written inputs in their exact formats."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from helpers.source_fixtures import (
    OMOP_ROWS,
    fhir_resources,
    write_fhir,
    write_omop_csv,
)

from mgca.config import load_config
from mgca.sources.adapters import fhir, omop
from mgca.sources.resolve import SourceError


def _run(module, src: Path, tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    module.check(src)
    target = tmp_path / "private" / "canonical"
    target.mkdir(parents=True)
    result = module.to_canonical(src, target, load_config(), lambda _m: None)
    return target, result.warnings


def _rows(target: Path, name: str) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{target / name}.parquet')").fetchall()


def _counts(target: Path) -> dict[tuple[str, str, str | None], int]:
    rows = duckdb.sql(
        f"SELECT source_table, status, reason, n_rows FROM '{target}/source_rows.parquet'"
    ).fetchall()
    return {(t, s, r): n for t, s, r, n in rows}


def _read_equals_mapped_plus_skipped(target: Path, expected_read: dict[str, int]) -> None:
    totals: dict[str, int] = {}
    for (table, _status, _reason), n in _counts(target).items():
        totals[table] = totals.get(table, 0) + n
    assert totals == expected_read


# --- FHIR ----------------------------------------------------------------------------------


def test_fhir_maps_the_fixture_and_counts_every_resource(tmp_path: Path) -> None:
    target, warnings = _run(fhir, write_fhir(tmp_path / "export"), tmp_path)
    assert warnings == ()
    resources = fhir_resources()
    _read_equals_mapped_plus_skipped(target, {k: len(v) for k, v in resources.items()})
    counts = _counts(target)
    assert (
        counts[("Observation", "skipped", "Observation.status preliminary (not a final result)")]
        == 1
    )
    assert counts[("Observation", "skipped", "Observation.code has no LOINC code of the list")] == 1
    assert counts[("Encounter", "skipped", "Encounter.class not a hospital stay")] == 1
    assert (
        counts[
            (
                "MedicationAdministration",
                "skipped",
                "MedicationAdministration.status not-done (not given)",
            )
        ]
        == 1
    )
    labs = duckdb.sql(
        f"SELECT analyte, value, unit, time FROM '{target}/lab_results.parquet' ORDER BY time"
    ).fetchall()
    # effectiveDateTime 10:00+01:00 is stored as 09:00 UTC.
    assert labs[0][0] == "magnesium" and labs[0][3].hour == 9
    assert ("magnesium", 0.8, "furlong") in [
        r[:3] for r in labs
    ]  # unknown unit kept, SQL counts it
    (med,) = _rows(target, "medication_administrations")
    assert med[3] == "magnesium_sulfate" and med[4] == 2.0 and med[6] == "iv" and med[7] is True
    (enc,) = _rows(target, "encounters")
    assert enc[0] == "e1" and 69 < enc[4] < 70


def test_fhir_reads_gzipped_shards(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    obs = (src / "Observation.ndjson").read_bytes().splitlines(keepends=True)
    (src / "Observation.ndjson").unlink()
    (src / "Observation_1.ndjson").write_bytes(b"".join(obs[:3]))
    with gzip.open(src / "Observation_2.ndjson.gz", "wb") as fh:
        fh.write(b"".join(obs[3:]))
    target, _ = _run(fhir, src, tmp_path)
    read = sum(n for (t, _, _), n in _counts(target).items() if t == "Observation")
    assert read == len(obs)


def test_fhir_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    lines = (src / "Observation.ndjson").read_text().splitlines()
    lines[1] = lines[1][:-5]  # truncated resource on line 2
    (src / "Observation.ndjson").write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"Observation.ndjson, line 2: not valid JSON"):
        fhir.check(src)


def test_fhir_missing_element_names_file_and_element(tmp_path: Path) -> None:
    resources = fhir_resources()
    for obs in resources["Observation"]:
        del obs["subject"]
    src = write_fhir(tmp_path / "export", resources)
    with pytest.raises(SourceError, match=r"Observation.ndjson: element\(s\) subject absent"):
        fhir.check(src)


def test_fhir_wrong_resource_type_and_missing_file(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    (src / "Patient.ndjson").write_text(json.dumps({"resourceType": "Observation"}) + "\n")
    with pytest.raises(SourceError, match=r"Patient.ndjson, line 1: resourceType is 'Observation'"):
        fhir.check(src)
    (src / "Encounter.ndjson").unlink()
    with pytest.raises(SourceError, match=r"no Encounter.ndjson found"):
        fhir.check(src)


def test_fhir_without_medications_warns(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    (src / "MedicationAdministration.ndjson").unlink()
    target, warnings = _run(fhir, src, tmp_path)
    assert any("MedicationAdministration" in w for w in warnings)
    assert _rows(target, "medication_administrations") == []


# --- OMOP ----------------------------------------------------------------------------------

OMOP_READ = {
    t: len(OMOP_ROWS[t]) for t in ("person", "visit_occurrence", "measurement", "drug_exposure")
}


def _check_omop_mapping(target: Path) -> None:
    _read_equals_mapped_plus_skipped(target, OMOP_READ)
    counts = _counts(target)
    assert counts[("visit_occurrence", "skipped", "visit_concept_id not a hospital stay")] == 1
    assert counts[("drug_exposure", "skipped", "drug_type_concept_id not an administration")] == 1
    assert counts[("drug_exposure", "skipped", "drug_concept_id not a listed ingredient")] == 1
    assert counts[("measurement", "skipped", "measurement_concept_id not in LOINC code list")] == 1
    labs = {(r[3], r[4], r[5]) for r in _rows(target, "lab_results")}
    assert ("magnesium", 1.3, "mg/dL") in labs  # unit from unit_concept_id → UCUM code
    assert ("magnesium", 1.9, None) in labs  # unknown unit concept: kept, quarantined by SQL
    (med,) = _rows(target, "medication_administrations")
    # Clinical drug → ingredient through concept_ancestor.
    assert med[3] == "magnesium_sulfate" and med[6] == "iv" and med[7] is True
    persons = sorted(_rows(target, "persons"))
    assert persons == [("1", "F", 1950), ("2", "M", 1961)]


def test_omop_csv_folder(tmp_path: Path) -> None:
    target, warnings = _run(omop, write_omop_csv(tmp_path / "cdm"), tmp_path)
    _check_omop_mapping(target)
    assert any("death" in w for w in warnings)


def test_omop_duckdb_file_with_upper_case_names(tmp_path: Path) -> None:
    csv = write_omop_csv(tmp_path / "csv")
    db = tmp_path / "omop_cdm.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA cdm")
    for table in OMOP_ROWS:
        rel = con.read_csv(str(csv / f"{table}.csv"))
        cols = ", ".join(f'"{c}" AS "{c.upper()}"' for c in rel.columns)
        con.execute(f'CREATE TABLE cdm."{table.upper()}" AS SELECT {cols} FROM rel')
    con.close()
    target, _ = _run(omop, db, tmp_path)
    _check_omop_mapping(target)


def test_omop_without_concept_ancestor_matches_by_name(tmp_path: Path) -> None:
    src = write_omop_csv(tmp_path / "cdm")
    (src / "concept_ancestor.csv").unlink()
    target, warnings = _run(omop, src, tmp_path)
    assert any("concept_ancestor" in w for w in warnings)
    (med,) = _rows(target, "medication_administrations")
    assert med[3] == "magnesium_sulfate"


def test_omop_missing_column_names_file_and_column(tmp_path: Path) -> None:
    src = write_omop_csv(tmp_path / "cdm")
    text = (src / "measurement.csv").read_text().replace("unit_concept_id", "unit_id", 1)
    (src / "measurement.csv").write_text(text)
    with pytest.raises(SourceError, match=r"measurement.csv: column 'unit_concept_id' is missing"):
        omop.check(src)


def test_omop_missing_table_and_path(tmp_path: Path) -> None:
    src = write_omop_csv(tmp_path / "cdm")
    (src / "concept.csv").unlink()
    with pytest.raises(SourceError, match=r"OMOP table\(s\) concept not found"):
        omop.check(src)
    shutil.rmtree(src)
    with pytest.raises(SourceError, match="does not exist"):
        omop.check(src)


def test_postgres_url_survives_path_and_is_redacted() -> None:
    from mgca.sources.credentials import redact_url

    url = omop.as_url(Path("postgresql://ann:s3cret@127.0.0.1:5432/cdm"))
    assert url == "postgresql://ann:s3cret@127.0.0.1:5432/cdm"
    assert redact_url(url) == "postgresql://ann:***@127.0.0.1:5432/cdm"
    assert omop.as_url(Path("/data/cdm")) is None


# --- OMOP in a real PostgreSQL server ----------------------------------------------------


@pytest.fixture(scope="module")
def omop_postgres(tmp_path_factory: pytest.TempPathFactory):
    """The OMOP fixture loaded into schema ``cdm`` of a real PostgreSQL server on loopback."""
    import psycopg
    from helpers.postgres_server import postgres_server
    from helpers.source_fixtures import OMOP_DDL

    csv = write_omop_csv(tmp_path_factory.mktemp("pgcsv"))
    with postgres_server() as url:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("CREATE SCHEMA cdm")
            for table, ddl in OMOP_DDL.items():
                pg.execute(f"CREATE TABLE cdm.{table} ({ddl})")
                with pg.cursor().copy(
                    f"COPY cdm.{table} FROM STDIN (FORMAT csv, HEADER true)"
                ) as copy:
                    copy.write((csv / f"{table}.csv").read_bytes())
        yield url + "?options=-csearch_path%3Dcdm"


def test_omop_postgres_streams_and_maps(omop_postgres: str, tmp_path: Path) -> None:
    target, warnings = _run(omop, Path(omop_postgres), tmp_path)
    _check_omop_mapping(target)
    assert any("death" in w for w in warnings)
    assert (tmp_path / "private" / "omop_extract" / "measurement.csv").is_file()


def test_omop_postgres_bad_database_is_a_clear_error(omop_postgres: str) -> None:
    bad = omop_postgres.replace("/postgres?", "/no_such_db?").replace(
        "postgres@", "postgres:hunter2@"
    )
    with pytest.raises(SourceError) as info:
        omop.check(Path(bad))
    assert "cannot connect to PostgreSQL" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_omop_tab_separated_folder(tmp_path: Path) -> None:
    """OMOP folders may be tab separated (as Athena's vocabulary files are): the header shows it."""
    src = write_omop_csv(tmp_path / "cdm")
    for file in src.glob("*.csv"):
        text = file.read_text()
        assert "\t" not in text
        file.write_text(text.replace(",", "\t"))
    target, _ = _run(omop, src, tmp_path)
    _check_omop_mapping(target)

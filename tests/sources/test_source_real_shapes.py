"""Real vocabulary shapes (issue 16): no listed analyte is lost, whatever code variant the
source uses, and an unlisted look-alike shows up as an orphan code with its row and stay
counts. Fixtures: tests/helpers/source_fixtures.py ('real vocabulary shapes')."""

from __future__ import annotations

from pathlib import Path

import duckdb
from helpers.source_fixtures import (
    MEDS_SHAPES_ROWS,
    SHAPES_MEASUREMENT,
    fhir_shapes,
    write_fhir,
    write_meds,
    write_omop_shapes,
)

from mgca.config import load_config
from mgca.sources.adapters import ORPHAN_CODES_FILE, fhir, meds, omop


def _run(module, src: Path, tmp_path: Path) -> Path:
    module.check(src)
    target = tmp_path / "private" / "canonical"
    target.mkdir(parents=True)
    module.to_canonical(src, target, load_config(), lambda _m: None)
    return target


def _labs(target: Path) -> dict[str, int]:
    rows = duckdb.sql(
        f"SELECT analyte, count(*) FROM '{target}/lab_results.parquet' GROUP BY 1"
    ).fetchall()
    return dict(rows)


def _orphans(target: Path) -> dict[tuple[str, str], tuple]:
    rows = duckdb.sql(
        "SELECT domain, code, looks_like, n_rows, n_stays, n_stays_added, unit "
        f"FROM '{target / ORPHAN_CODES_FILE}'"
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_omop_keeps_every_albumin_coded_by_method_and_reports_the_orphans(
    tmp_path: Path,
) -> None:
    target = _run(omop, write_omop_shapes(tmp_path / "cdm.duckdb"), tmp_path)
    listed_albumin = [m for m in SHAPES_MEASUREMENT if m[2] in (3024561, 40763912)]
    assert _labs(target) == {"magnesium": 1, "calcium_total": 1, "albumin": len(listed_albumin)}
    sources = {
        r[0] for r in duckdb.sql(
            f"SELECT source_code FROM '{target}/lab_results.parquet' WHERE analyte = 'albumin'"
        ).fetchall()
    }
    assert sources == {"LOINC:1751-7", "LOINC:61151-7"}
    orphans = _orphans(target)
    # electrophoresis albumin: 2 rows in 2 stays, both stays already have a listed albumin
    assert orphans[("lab", "LOINC:2862-1 (OMOP 990001)")] == ("albumin", 2, 2, 0, "g/dL")
    # magnesium citrate is listed (role mg_laxative, found by name): mapped, so not an orphan
    assert len(orphans) == 1


def test_omop_finds_an_ingredient_without_rxnorm_code_through_concept_relationship(
    tmp_path: Path,
) -> None:
    target = _run(omop, write_omop_shapes(tmp_path / "cdm.duckdb"), tmp_path)
    drugs = duckdb.sql(
        f"SELECT ingredient, count(*) FROM '{target}/medication_administrations.parquet' "
        "GROUP BY 1"
    ).fetchall()
    assert dict(drugs) == {"magnesium_sulfate": 1, "calcium_gluconate": 2, "magnesium_citrate": 1}
    notes = duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'drug_exposure' AND status = 'mapped'"
    ).fetchall()
    assert dict(notes) == {
        None: 1,
        "ingredient found by concept_relationship": 2,
        "ingredient found by concept_name": 1,  # magnesium citrate
    }


def test_omop_without_relationships_falls_back_to_ingredient_names(tmp_path: Path) -> None:
    cdm = write_omop_shapes(tmp_path / "cdm.duckdb")
    con = duckdb.connect(str(cdm))
    con.execute("DROP TABLE concept_relationship")
    con.execute("UPDATE concept SET concept_name = 'Calcium Gluconate 100 MG/ML Injectable "
                "Solution' WHERE concept_id = 990022")
    con.close()
    target = _run(omop, cdm, tmp_path)
    notes = dict(duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'drug_exposure' AND status = 'mapped'"
    ).fetchall())
    assert notes == {None: 1, "ingredient found by concept_name": 3}  # Ca gluconate 2, Mg citrate


def test_fhir_with_si_loinc_codes_loses_no_listed_analyte(tmp_path: Path) -> None:
    target = _run(fhir, write_fhir(tmp_path / "export", fhir_shapes()), tmp_path)
    assert _labs(target) == {"magnesium": 1, "calcium_total": 1, "albumin": 3}
    units = {
        r[0] for r in duckdb.sql(
            f"SELECT DISTINCT unit FROM '{target}/lab_results.parquet'"
        ).fetchall()
    }
    assert units == {"mmol/L", "g/L"}
    orphans = _orphans(target)
    # stay e1 has a listed albumin, stay e3 has the BCG albumin: nothing added
    assert orphans == {("lab", "LOINC:2862-1"): ("albumin", 2, 2, 0, "g/L")}


def test_fhir_orphan_adds_a_stay_that_has_no_listed_albumin(tmp_path: Path) -> None:
    resources = fhir_shapes()
    resources["Observation"] = [o for o in resources["Observation"] if o["id"] != "s5"]
    target = _run(fhir, write_fhir(tmp_path / "export", resources), tmp_path)
    assert _orphans(target)[("lab", "LOINC:2862-1")] == ("albumin", 2, 2, 1, "g/L")


def test_meds_loinc_codes_of_every_albumin_method_are_mapped(tmp_path: Path) -> None:
    target = _run(meds, write_meds(tmp_path / "meds", MEDS_SHAPES_ROWS), tmp_path)
    assert _labs(target) == {"magnesium": 1, "calcium_total": 1, "albumin": 3}


def test_csv_unrecognised_look_alike_analyte_and_drug_are_orphans(tmp_path: Path) -> None:
    from helpers.source_fixtures import long_format_config, write_extract

    from mgca.sources.adapters import long_format

    root = write_extract(tmp_path / "extract")
    with open(root / "labs.csv", "a", encoding="utf-8") as fh:
        fh.write("1,e1,2024-03-03 08:00:00,Albumin BCG,3.1,g/dL\n")
    with open(root / "meds.csv", "a", encoding="utf-8") as fh:
        fh.write("1,e1,2024-03-02 12:00:00,calcium acetate,667,mg,PO,true\n")
    target = tmp_path / "canonical"
    target.mkdir()
    long_format.to_canonical(root, target, long_format_config(), lambda _m: None)
    orphans = _orphans(target)
    # e1 has a mapped albumin (the LOINC-less 'albumin' row has no stay: counted under its
    # subject), so the BCG text row adds no stay; no calcium salt was mapped in e1
    assert orphans == {
        ("lab", "extract:albumin bcg"): ("albumin", 1, 1, 1, "g/dL"),
        ("drug", "extract:calcium_acetate"): ("calcium", 1, 1, 1, "mg"),
    }


def test_meds_unlisted_medication_that_looks_like_calcium_is_an_orphan(tmp_path: Path) -> None:
    rows = [
        *MEDS_SHAPES_ROWS,
        (1, "2150-03-02 10:00:00", "MEDICATION//Calcium Acetate//Administered", 667.0, 20001),
        (1, "2150-03-02 11:00:00", "MEDICATION//Paracetamol//Administered", 1.0, 20001),
    ]
    target = _run(meds, write_meds(tmp_path / "meds", rows), tmp_path)
    assert _orphans(target) == {
        ("drug", "MEDICATION//Calcium Acetate"): ("calcium", 1, 1, 1, None),
    }


def test_omop_on_postgresql_streams_what_the_mapping_and_orphans_need(tmp_path: Path) -> None:
    # the server-side cut of concept, concept_ancestor and concept_relationship must keep the
    # method-coded albumin, the relationship hops to calcium gluconate and the orphans' names
    import psycopg
    from helpers.postgres_server import postgres_server
    from helpers.source_fixtures import SHAPES_DDL, SHAPES_ROWS

    with postgres_server() as url:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("CREATE SCHEMA shapes")
            for table, ddl in SHAPES_DDL.items():
                pg.execute(f"CREATE TABLE shapes.{table} ({ddl})")
                rows = SHAPES_ROWS[table]
                with pg.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO shapes.{table} VALUES "
                        f"({', '.join(['%s'] * len(rows[0]))})",
                        rows,
                    )
        target = _run(omop, Path(url + "?options=-csearch_path%3Dshapes"), tmp_path)
    listed_albumin = [m for m in SHAPES_MEASUREMENT if m[2] in (3024561, 40763912)]
    assert _labs(target)["albumin"] == len(listed_albumin)
    drugs = duckdb.sql(
        f"SELECT ingredient, count(*) FROM '{target}/medication_administrations.parquet' "
        "GROUP BY 1"
    ).fetchall()
    assert dict(drugs) == {"magnesium_sulfate": 1, "calcium_gluconate": 2, "magnesium_citrate": 1}
    assert set(_orphans(target)) == {("lab", "LOINC:2862-1 (OMOP 990001)")}


def test_mimic_unlisted_itemid_labelled_like_an_analyte_and_eMAR_drug_are_orphans(
    tmp_path: Path,
) -> None:
    # itemid 99001 is made up here: an unlisted albumin of another fluid, named by d_labitems
    from helpers.mimic_fixture import write_mimic

    from mgca.sources.adapters import mimic

    root = write_mimic(tmp_path / "mimic", gz=False)
    with open(root / "hosp" / "d_labitems.csv", "a", encoding="utf-8") as fh:
        fh.write("99001,Albumin,Pleural,Chemistry\n51221,Hematocrit,Blood,Hematology\n")
    with open(root / "hosp" / "labevents.csv", "a", encoding="utf-8") as fh:
        fh.write(
            ",".join(
                "" if v is None else str(v)
                for v in _mimic_lab_row(
                    ["10002", "20002", "99001", "2160-05-02 08:00:00", "2.1", "2.1", "g/dL"]
                )
            )
            + "\n"
        )
    with open(root / "hosp" / "emar.csv", "a", encoding="utf-8") as fh:
        fh.write(_mimic_emar_row("10001", "20001", "10001-9", "2150-03-02 12:00:00",
                                 "Calcium Acetate", "Administered"))
    target = _run(mimic, root, tmp_path)
    assert _orphans(target) == {
        # stay 20002 has a listed albumin (50862): listing 99001 adds no stay
        ("lab", "MIMIC-IV:99001"): ("albumin", 1, 1, 0, "g/dL"),
        ("drug", "MIMIC-IV:emar:calcium acetate"): ("calcium", 1, 1, 1, None),
    }


def _mimic_lab_row(values: list[str]) -> list[str]:
    from helpers.mimic_fixture import HEADERS

    header = HEADERS["hosp/labevents"].split(",")
    named = dict(zip(["subject_id", "hadm_id", "itemid", "charttime", "value", "valuenum",
                      "valueuom"], values, strict=True))
    return [named.get(c, "") for c in header]


def _mimic_emar_row(subject, hadm, emar_id, time, medication, event) -> str:
    from helpers.mimic_fixture import HEADERS

    header = HEADERS["hosp/emar"].split(",")
    named = {"subject_id": subject, "hadm_id": hadm, "emar_id": emar_id, "emar_seq": "9",
             "charttime": time, "medication": medication, "event_txt": event}
    return ",".join(named.get(c, "") for c in header) + "\n"

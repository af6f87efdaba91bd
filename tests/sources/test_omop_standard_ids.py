"""Every concept of the code lists maps on an OMOP CDM that codes it the Athena way: each LOINC
code of lab_codes.csv to its analyte, each ingredient of ingredients.csv by its OMOP standard id
(omop_concept_id) or RxNorm code; no listed analyte or ingredient is lost; MEDS RxNorm/ codes
of the salts map. Carrier fluids (carrier_fluids.csv) never count as the salt they carry (OMOP,
FHIR, MIMIC eMAR). Real DuckDB CDM files and exports through the adapters; concept ids from
990000 are made up here."""

from __future__ import annotations

import csv
from collections import Counter
from importlib import resources
from pathlib import Path

import duckdb
from helpers.source_fixtures import SHAPES_DDL, SHAPES_PERSON, SHAPES_VISIT

from mgca.config import load_config
from mgca.sources.adapters import ORPHAN_CODES_FILE, omop


def _reference(*parts: str) -> list[dict[str, str]]:
    ref = resources.files("mgca.sql").joinpath("reference", *parts)
    with resources.as_file(ref) as path, open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _cdm(file: Path, concepts: list, ancestors: list, measurements: list, drugs: list) -> Path:
    rows = {
        "concept": concepts,
        "concept_ancestor": ancestors,
        "concept_relationship": [],
        "person": SHAPES_PERSON,
        "visit_occurrence": SHAPES_VISIT,
        "measurement": measurements,
        "drug_exposure": drugs,
    }
    con = duckdb.connect(str(file))
    for table, ddl in SHAPES_DDL.items():
        con.execute(f"CREATE TABLE {table} ({ddl})")
        if rows[table]:
            con.executemany(
                f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[table][0]))})",
                rows[table],
            )
    con.close()
    return file


def _run(cdm: Path, tmp_path: Path) -> Path:
    omop.check(cdm)
    target = tmp_path / "canonical"
    target.mkdir()
    omop.to_canonical(cdm, target, load_config(), lambda _m: None)
    return target


def _counts(target: Path, table: str, column: str) -> Counter:
    rows = duckdb.sql(f"SELECT {column} FROM '{target}/{table}.parquet'").fetchall()
    return Counter(r[0] for r in rows)


def test_every_listed_loinc_code_and_ingredient_standard_id_maps(tmp_path: Path) -> None:
    labs = [r for r in _reference("sources", "lab_codes.csv") if r["vocabulary"] == "LOINC"]
    ingredients = [r for r in _reference("ingredients.csv") if r["omop_concept_id"]]
    assert {r["ingredient"] for r in ingredients} >= {
        "magnesium_sulfate", "magnesium_oxide", "magnesium_chloride",
        "calcium_gluconate", "calcium_chloride",
    }  # fmt: skip
    concepts, measurements, drugs = [], [], []
    for i, lab in enumerate(labs):
        concept_id = 990100 + i
        concepts.append((concept_id, lab["description"], "Measurement", "LOINC", "Lab Test", "S",
                         lab["code"]))
        measurements.append((1000 + i, 1, concept_id, "2020-01-02", "2020-01-02 09:00:00", 1.0,
                             0, lab["unit"], 10, lab["code"]))
    for i, ing in enumerate(ingredients):
        # the standard id with a code that is not the RxNorm one, and a name that is not the
        # ingredient's: only omop_concept_id can find it
        concept_id = int(ing["omop_concept_id"])
        concepts.append((concept_id, f"ingredient {concept_id}", "Drug", "RxNorm", "Ingredient",
                         "S", f"99{i:04d}"))
        drugs.append((2000 + i, 1, concept_id, "2020-01-02", "2020-01-02 11:00:00", 32818, 1.0,
                      "g", 0, 10, ing["ingredient"]))
    target = _run(_cdm(tmp_path / "cdm.duckdb", concepts, [], measurements, drugs), tmp_path)
    assert _counts(target, "lab_results", "analyte") == Counter(r["analyte"] for r in labs)
    assert _counts(target, "medication_administrations", "ingredient") == Counter(
        r["ingredient"] for r in ingredients
    )
    assert not duckdb.sql(f"SELECT * FROM '{target / ORPHAN_CODES_FILE}'").fetchall()


# Athena-style names of the two carrier fluids (RxNorm clinical drugs list every component)
LACTATED_RINGERS = ("Calcium Chloride 0.2 MG/ML / Potassium Chloride 0.3 MG/ML / Sodium Chloride "
                    "6 MG/ML / Sodium Lactate 3.1 MG/ML Injectable Solution")
PLASMA_LYTE = ("Magnesium Chloride 0.3 MG/ML / Potassium Chloride 0.37 MG/ML / Sodium Acetate "
               "3.68 MG/ML / Sodium Chloride 5.26 MG/ML / Sodium Gluconate 5.02 MG/ML Injectable "
               "Solution")
MGSO4_IN_LR = ("Calcium Chloride 0.2 MG/ML / Magnesium Sulfate 40 MG/ML / Potassium Chloride "
               "0.3 MG/ML / Sodium Chloride 6 MG/ML / Sodium Lactate 3.1 MG/ML Injectable Solution")


def test_carrier_fluids_are_not_calcium_or_magnesium_and_are_counted_by_reason(
    tmp_path: Path,
) -> None:
    concepts = [
        (19036781, "calcium chloride", "Drug", "RxNorm", "Ingredient", "S", "1901"),
        (19092849, "magnesium chloride", "Drug", "RxNorm", "Ingredient", "S", "6579"),
        (990040, LACTATED_RINGERS, "Drug", "RxNorm", "Clinical Drug", "S", "990040"),
        (990041, "Calcium Chloride 100 MG/ML Injectable Solution", "Drug", "RxNorm",
         "Clinical Drug", "S", "990041"),
        (990050, PLASMA_LYTE, "Drug", "RxNorm", "Clinical Drug", "S", "990050"),
        (19093848, "magnesium sulfate", "Drug", "RxNorm", "Ingredient", "S", "6585"),
        (990060, MGSO4_IN_LR, "Drug", "RxNorm", "Clinical Drug", "S", "990060"),
    ]
    # concept_ancestor puts both fluids under their salts, as Athena does
    ancestors = [(19036781, 990040), (19036781, 990041), (19092849, 990050),
                 (19036781, 990060), (19093848, 990060)]
    drugs = [
        (300, 1, 990040, "2020-01-02", "2020-01-02 08:00:00", 32818, 1000.0, "mL", 0, 10, "LR"),
        (301, 1, 990040, "2020-01-03", "2020-01-03 08:00:00", 32818, 1000.0, "mL", 0, 10, "LR"),
        (302, 2, 990050, "2020-02-02", "2020-02-02 08:00:00", 32818, 1000.0, "mL", 0, 11, "PL"),
        (303, 2, 990041, "2020-02-02", "2020-02-02 09:00:00", 32818, 1.0, "g", 0, 11, "CACL"),
        (304, 2, 990060, "2020-02-02", "2020-02-02 10:00:00", 32818, 4.0, "g", 0, 11, "MGLR"),
    ]
    target = _run(_cdm(tmp_path / "cdm.duckdb", concepts, ancestors, [], drugs), tmp_path)
    # the sulfate premixed in Lactated Ringer's keeps its Mg, loses the carrier's CaCl
    assert _counts(target, "medication_administrations", "ingredient") == {
        "calcium_chloride": 1, "magnesium_sulfate": 1,
    }  # fmt: skip
    reasons = dict(duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'drug_exposure'"
    ).fetchall())
    assert reasons == {
        None: 1,
        "carrier fluid: Lactated Ringer's / Hartmann's (its calcium chloride and potassium "
        "chloride are not supplements)": 2,
        "carrier fluid: Plasma-Lyte / Normosol (its magnesium chloride and potassium chloride "
        "are not supplements)": 1,
        "carrier fluid: Lactated Ringer's / Hartmann's (its calcium chloride and potassium "
        "chloride dropped, not supplements)": 1,
    }
    # recognised, so never an orphan either
    assert not duckdb.sql(f"SELECT * FROM '{target / ORPHAN_CODES_FILE}'").fetchall()


def test_mimic_code_lists_map_no_carrier_fluid_to_the_salt_it_carries() -> None:
    # MIMIC maps by exact name or itemid: no listed name or label may be a carrier fluid
    import re

    carriers = _reference("sources", "carrier_fluids.csv")
    names = [(r["medication"], r["ingredient"]) for r in
             _reference("sources", "mimic_medications.csv")]
    names += [(r["label"], r["ingredient"]) for r in _reference("sources", "mimic_input_items.csv")]
    for name, ingredient in names:
        for carrier in carriers:
            if re.search(carrier["pattern"], name.lower()):
                assert ingredient != carrier["carries"], (name, carrier["carrier"])


def test_fhir_carrier_fluid_coded_by_rxnorm_display_loses_only_the_carried_salt(
    tmp_path: Path,
) -> None:
    from helpers.source_fixtures import fhir_resources, write_fhir

    from mgca.sources.adapters import fhir

    resources = fhir_resources()
    given = resources["MedicationAdministration"][0]
    rx = given["medicationCodeableConcept"]["coding"][0]["system"]

    def med(mid: str, code: str, display: str) -> dict:
        return {**given, "id": mid, "medicationCodeableConcept": {
            "coding": [{"system": rx, "code": code, "display": display}]}}

    resources["MedicationAdministration"] = [
        given,  # magnesium sulfate by RxNorm 6585
        med("lr", "990040", LACTATED_RINGERS),
        med("pl", "990050", PLASMA_LYTE),
        med("mgcl", "6579", "magnesium chloride"),  # the salt itself, by its RxNorm code
        med("cagluc", "1908", "calcium gluconate"),
    ]
    src = write_fhir(tmp_path / "export", resources)
    fhir.check(src)
    target = tmp_path / "canonical"
    target.mkdir()
    fhir.to_canonical(src, target, load_config(), lambda _m: None)
    assert _counts(target, "medication_administrations", "ingredient") == {
        "magnesium_sulfate": 1, "magnesium_chloride": 1, "calcium_gluconate": 1,
    }  # fmt: skip
    skipped = dict(duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'MedicationAdministration' AND status = 'skipped'"
    ).fetchall())
    assert skipped == {
        "carrier fluid: Lactated Ringer's / Hartmann's (its calcium chloride and potassium "
        "chloride are not supplements)": 1,
        "carrier fluid: Plasma-Lyte / Normosol (its magnesium chloride and potassium chloride "
        "are not supplements)": 1,
    }


def test_meds_rxnorm_codes_of_the_salts_map(tmp_path: Path) -> None:
    from helpers.source_fixtures import MEDS_SHAPES_ROWS, write_meds

    from mgca.sources.adapters import meds

    salts = {"6582": "magnesium_oxide", "6579": "magnesium_chloride",
             "1908": "calcium_gluconate", "1901": "calcium_chloride"}  # fmt: skip
    rows = [*MEDS_SHAPES_ROWS] + [
        (1, f"2150-03-02 1{i}:00:00", f"RxNorm/{code}", None, 20001)
        for i, code in enumerate(salts)
    ]
    src = write_meds(tmp_path / "meds", rows)
    meds.check(src)
    target = tmp_path / "canonical"
    target.mkdir()
    meds.to_canonical(src, target, load_config(), lambda _m: None)
    assert _counts(target, "medication_administrations", "ingredient") == Counter(salts.values())


def test_mimic_counts_an_emar_carrier_fluid_under_its_own_reason(tmp_path: Path) -> None:
    from helpers.mimic_fixture import write_mimic

    from mgca.sources.adapters import mimic

    root = write_mimic(tmp_path / "mimic", gz=False)
    with open(root / "hosp" / "emar.csv", "a", encoding="utf-8") as fh:
        # subject_id,hadm_id,emar_id,emar_seq,poe_id,pharmacy_id,enter_provider_id,charttime,
        # medication,event_txt,scheduletime,storetime
        fh.write("10001,20001,10001-9,9,,,,2150-03-02 13:00:00,Lactated Ringers,Administered,,\n")
    mimic.check(root)
    target = tmp_path / "canonical"
    target.mkdir()
    mimic.to_canonical(root, target, load_config(), lambda _m: None)
    reasons = dict(duckdb.sql(
        f"SELECT reason, n_rows FROM '{target}/source_rows.parquet' "
        "WHERE source_table = 'hosp/emar' AND reason LIKE 'carrier fluid%'"
    ).fetchall())
    assert reasons == {
        "carrier fluid: Lactated Ringer's / Hartmann's (its calcium chloride and potassium "
        "chloride are not supplements)": 1
    }
    assert "calcium_chloride" not in _counts(target, "medication_administrations", "ingredient")

"""Tiny hand-written inputs in the exact distributed formats (FHIR R4 NDJSON, OMOP CDM tables).

One hospital stay with a low Mg and a low Ca drawn together, magnesium sulfate given 2 h later,
and a calcium 48 h after the draw: enough to exercise every mapping rule. Each builder also
writes rows that must be skipped (wrong status, unlisted code, outpatient visit, prescription),
so counts can be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig

# --- FHIR R4 bulk export -------------------------------------------------------------------

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _obs(oid: str, code: str, value: float, unit: str, when: str, status: str = "final") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def fhir_resources() -> dict[str, list[dict]]:
    """Resource type → resources (the FHIR fixture)."""
    patients = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-03-02"},
        {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1961"},
    ]
    encounters = [
        {
            "resourceType": "Encounter", "id": "e1", "status": "finished",
            "class": {"system": ACT, "code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": "2020-01-01T08:00:00+01:00", "end": "2020-01-06T10:00:00+01:00"},
        },
        {  # outpatient: skipped
            "resourceType": "Encounter", "id": "e2", "status": "finished",
            "class": {"system": ACT, "code": "AMB"},
            "subject": {"reference": "Patient/p2"},
            "period": {"start": "2020-02-01T08:00:00Z", "end": "2020-02-01T09:00:00Z"},
        },
    ]
    observations = [
        _obs("o1", "19123-9", 1.3, "mg/dL", "2020-01-02T10:00:00+01:00"),  # 09:00 UTC
        _obs("o2", "17861-6", 7.6, "mg/dL", "2020-01-02T10:05:00+01:00"),
        _obs("o3", "1751-7", 3.9, "g/dL", "2020-01-02T10:05:00+01:00"),
        _obs("o4", "17861-6", 8.6, "mg/dL", "2020-01-04T10:00:00+01:00"),
        _obs("o5", "1751-7", 3.9, "g/dL", "2020-01-04T10:00:00+01:00"),
        _obs("o6", "2601-3", 0.5, "mmol/L", "2020-01-02T11:00:00+01:00", status="preliminary"),
        _obs("o7", "8331-1", 37.0, "Cel", "2020-01-02T11:00:00+01:00"),  # temperature: skipped
        _obs("o8", "2601-3", 0.8, "furlong", "2020-01-03T11:00:00+01:00"),  # unknown unit
    ]
    medications = [
        {
            "resourceType": "MedicationAdministration", "id": "m1", "status": "completed",
            "medicationCodeableConcept": {
                "coding": [{"system": RXNORM, "code": "6585", "display": "magnesium sulfate"}]
            },
            "subject": {"reference": "Patient/p1"},
            "context": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2020-01-02T12:00:00+01:00",
            "dosage": {
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
                "dose": {"value": 2, "unit": "g", "system": UCUM, "code": "g"},
            },
        },
        {  # not given
            "resourceType": "MedicationAdministration", "id": "m2", "status": "not-done",
            "medicationCodeableConcept": {"text": "Magnesium sulfate 2 g IV"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2020-01-03T12:00:00+01:00",
        },
        {  # unlisted drug
            "resourceType": "MedicationAdministration", "id": "m3", "status": "completed",
            "medicationCodeableConcept": {"text": "paracetamol 1 g"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2020-01-03T12:00:00+01:00",
        },
    ]
    return {
        "Patient": patients,
        "Encounter": encounters,
        "Observation": observations,
        "MedicationAdministration": medications,
    }


def write_fhir(folder: Path, resources: dict[str, list[dict]] | None = None) -> Path:
    """Write ``<Type>.ndjson`` files (one resource a line) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for rtype, items in (resources or fhir_resources()).items():
        lines = "".join(json.dumps(item) + "\n" for item in items)
        (folder / f"{rtype}.ndjson").write_text(lines, encoding="utf-8")
    return folder


# --- OMOP CDM ------------------------------------------------------------------------------

# A miniature vocabulary: the concept rows the mapping looks up (ids as in OHDSI Athena).
OMOP_CONCEPT = [
    # concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, standard, code
    (3001420, "Magnesium [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "19123-9"),
    (3006906, "Calcium [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "17861-6"),
    (3024561, "Albumin [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "1751-7"),
    (3020891, "Body temperature", "Measurement", "LOINC", "Clinical Observation", "S", "8310-5"),
    (8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    (8713, "gram per deciliter", "Unit", "UCUM", "Unit", "S", "g/dL"),
    (8576, "milligram", "Unit", "UCUM", "Unit", "S", "mg"),
    (4171047, "Intravenous", "Route", "SNOMED", "Qualifier Value", "S", "47625008"),
    (19093848, "magnesium sulfate", "Drug", "RxNorm", "Ingredient", "S", "6585"),
    (19093849, "Magnesium Sulfate 500 MG/ML Injectable Solution", "Drug", "RxNorm",
     "Clinical Drug", "S", "999001"),
    (1125315, "acetaminophen", "Drug", "RxNorm", "Ingredient", "S", "161"),
]
OMOP_CONCEPT_ANCESTOR = [(19093848, 19093849), (19093848, 19093848), (1125315, 1125315)]
OMOP_PERSON = [(1, 8532, 1950, 3, 2), (2, 8507, 1961, None, None)]
OMOP_VISIT = [
    # id, person, visit_concept_id, start date, start datetime, end date, end datetime
    (10, 1, 9201, "2020-01-01", "2020-01-01 08:00:00", "2020-01-06", "2020-01-06 10:00:00"),
    (11, 2, 9202, "2020-02-01", None, "2020-02-01", None),  # outpatient: skipped
]
OMOP_MEASUREMENT = [
    # id, person, concept, date, datetime, value, unit_concept_id, unit_source_value, visit
    (100, 1, 3001420, "2020-01-02", "2020-01-02 09:00:00", 1.3, 8840, "mg/dL", 10),
    (101, 1, 3006906, "2020-01-02", "2020-01-02 09:05:00", 7.6, 8840, "mg/dL", 10),
    (102, 1, 3024561, "2020-01-02", "2020-01-02 09:05:00", 3.9, 8713, "g/dL", 10),
    (103, 1, 3006906, "2020-01-04", "2020-01-04 09:00:00", 8.6, 8840, "mg/dL", 10),
    (104, 1, 3024561, "2020-01-04", "2020-01-04 09:00:00", 3.9, 8713, "g/dL", 10),
    (105, 1, 3020891, "2020-01-02", "2020-01-02 09:00:00", 37.0, 0, None, 10),  # not a listed lab
    (106, 1, 3001420, "2020-01-03", "2020-01-03 09:00:00", 1.9, 4242, None, 10),  # unknown unit
]
OMOP_DRUG = [
    # id, person, drug_concept_id, start date, start datetime, type, quantity, unit, route, visit
    (200, 1, 19093849, "2020-01-02", "2020-01-02 11:00:00", 38000180, 2.0, "g", 4171047, 10),
    (201, 1, 19093849, "2020-01-03", None, 38000177, 1.0, None, 0, 10),  # prescription: skipped
    (202, 1, 1125315, "2020-01-03", None, 38000180, 1.0, None, 0, 10),  # not a listed drug
]

OMOP_COLUMNS = {
    "concept": "concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, "
    "standard_concept, concept_code",
    "concept_ancestor": "ancestor_concept_id, descendant_concept_id",
    "person": "person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth",
    "visit_occurrence": "visit_occurrence_id, person_id, visit_concept_id, visit_start_date, "
    "visit_start_datetime, visit_end_date, visit_end_datetime",
    "measurement": "measurement_id, person_id, measurement_concept_id, measurement_date, "
    "measurement_datetime, value_as_number, unit_concept_id, unit_source_value, "
    "visit_occurrence_id",
    "drug_exposure": "drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date, "
    "drug_exposure_start_datetime, drug_type_concept_id, quantity, dose_unit_source_value, "
    "route_concept_id, visit_occurrence_id",
}
OMOP_ROWS = {
    "concept": OMOP_CONCEPT,
    "concept_ancestor": OMOP_CONCEPT_ANCESTOR,
    "person": OMOP_PERSON,
    "visit_occurrence": OMOP_VISIT,
    "measurement": OMOP_MEASUREMENT,
    "drug_exposure": OMOP_DRUG,
}


def _csv_cell(value: object) -> str:
    return "" if value is None else str(value)


def write_omop_csv(folder: Path, tables: tuple[str, ...] | None = None) -> Path:
    """Write the OMOP fixture as ``<table>.csv`` files (comma separated, header row)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in OMOP_ROWS.items():
        if tables is not None and table not in tables:
            continue
        header = OMOP_COLUMNS[table].replace(" ", "")
        body = "".join(",".join(_csv_cell(v) for v in row) + "\n" for row in rows)
        (folder / f"{table}.csv").write_text(header + "\n" + body, encoding="utf-8")
    return folder


OMOP_DDL = {
    "concept": "concept_id BIGINT, concept_name VARCHAR(255), domain_id VARCHAR(20), "
    "vocabulary_id VARCHAR(20), concept_class_id VARCHAR(20), standard_concept VARCHAR(1), "
    "concept_code VARCHAR(50)",
    "concept_ancestor": "ancestor_concept_id BIGINT, descendant_concept_id BIGINT",
    "person": "person_id BIGINT, gender_concept_id INTEGER, year_of_birth INTEGER, "
    "month_of_birth INTEGER, day_of_birth INTEGER",
    "visit_occurrence": "visit_occurrence_id BIGINT, person_id BIGINT, visit_concept_id INTEGER, "
    "visit_start_date DATE, visit_start_datetime TIMESTAMP, visit_end_date DATE, "
    "visit_end_datetime TIMESTAMP",
    "measurement": "measurement_id BIGINT, person_id BIGINT, measurement_concept_id INTEGER, "
    "measurement_date DATE, measurement_datetime TIMESTAMP, value_as_number NUMERIC, "
    "unit_concept_id INTEGER, unit_source_value VARCHAR(50), visit_occurrence_id BIGINT",
    "drug_exposure": "drug_exposure_id BIGINT, person_id BIGINT, drug_concept_id INTEGER, "
    "drug_exposure_start_date DATE, drug_exposure_start_datetime TIMESTAMP, "
    "drug_type_concept_id INTEGER, quantity NUMERIC, dose_unit_source_value VARCHAR(50), "
    "route_concept_id INTEGER, visit_occurrence_id BIGINT",
}


# --- long-format CSV extract (mapped by the config's long_format section) ----------------

LONG_FORMAT_LABS = """pid,stay,drawn,test,result,units
1,e1,2024-03-02 08:00:00,magnesium,1.2,mg/dL
1,e1,2024-03-02 08:00:00,LOINC:17861-6,7.4,
1,,2024-03-02 08:00:00,albumin,3.8,g/dL
1,e1,2024-03-02 09:00:00,hematocrit,30,%
1,e1,yesterday,magnesium,1.2,mg/dL
1,e1,2024-03-04 08:00:00,Calcium_Total,___,mg/dL
"""
LONG_FORMAT_MEDS = """pid,stay,at,drug,amount,unit,route,given
1,e1,2024-03-02 10:00:00,Magnesium Sulfate,2,g,IV,true
1,e1,2024-03-02 11:00:00,magnesium_sulfate,2,g,IV,0
1,e1,2024-03-02 11:00:00,paracetamol,1,g,PO,1
1,e1,2024-03-02 11:00:00,magnesium_sulfate,2,g,IV,maybe
"""
LONG_FORMAT_ENCOUNTERS = """stay,pid,admit,discharge,age
e1,1,2024-03-01 08:00:00,2024-03-08 08:00:00,64
e2,1,2024-04-02 08:00:00,2024-04-01 08:00:00,64
"""


def long_format_config(**overrides: object) -> MgcaConfig:
    lf = {
        "labs": {"file": "labs.csv", "subject_id": "pid", "encounter_id": "stay",
                 "time": "drawn", "analyte": "test", "value": "result", "unit": "units"},
        "medications": {"file": "meds.csv", "subject_id": "pid", "encounter_id": "stay",
                        "time": "at", "ingredient": "drug", "dose": "amount",
                        "dose_unit": "unit", "route": "route", "given": "given"},
        "persons": None,
        "encounters": {"file": "stays.csv", "encounter_id": "stay", "subject_id": "pid",
                       "admit_time": "admit", "discharge_time": "discharge",
                       "age_years": "age", "died_in_hospital": None},
    }
    lf.update(overrides)
    return MgcaConfig.model_validate({"long_format": lf})


def write_extract(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labs.csv").write_text(LONG_FORMAT_LABS)
    (root / "meds.csv").write_text(LONG_FORMAT_MEDS)
    (root / "stays.csv").write_text(LONG_FORMAT_ENCOUNTERS)
    return root


# --- MEDS dataset ----------------------------------------------------------------------------

# (subject_id, time, code, numeric_value, hadm_id): one adult stay with low Mg and Ca,
# an administered and a not-given MgSO4, and rows the mapping must skip.
MEDS_ROWS = [
    (1, None, "GENDER//F", None, None),
    (1, "2090-01-01 00:00:00", "MEDS_BIRTH", None, None),
    (1, "2150-03-01 08:00:00", "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", None, 20001),
    (1, "2150-03-02 08:00:00", "LAB//50960//mg/dL", 1.2, 20001),
    (1, "2150-03-02 08:00:00", "LAB//50893//mg/dL", 7.4, 20001),
    (1, "2150-03-02 08:00:00", "LOINC/1751-7", 3.8, 20001),
    (1, "2150-03-02 08:00:00", "LAB//51221//%", 30.0, 20001),
    (1, "2150-03-02 08:00:00", "LAB//50971//mEq/L", None, 20001),
    (1, "2150-03-02 10:00:00", "MEDICATION//Magnesium Sulfate//Administered", 2.0, 20001),
    (1, "2150-03-02 11:00:00", "MEDICATION//Magnesium Sulfate//Not Given", None, 20001),
    (1, "2150-03-02 12:00:00", "MEDICATION//Magnesium Sulfate (OB)//Administered", 4.0, 20001),
    (1, "2150-03-04 08:00:00", "LAB//50893//mg/dL", 8.7, 20001),
    (1, "2150-03-08 12:00:00", "HOSPITAL_DISCHARGE//HOME", None, 20001),
    (1, "2150-03-08 12:00:00", "DIAGNOSIS//ICD//10//E834", None, 20001),
]


def write_meds(root: Path, rows: list[tuple] = MEDS_ROWS, hadm: bool = True) -> Path:
    """MEDS shards with the standard types (int64, timestamp[us], string, float32)."""
    shard = root / "data" / "train" / "0.parquet"
    shard.parent.mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(exist_ok=True)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE m (subject_id BIGINT, time TIMESTAMP, code VARCHAR, numeric_value FLOAT,"
        " hadm_id BIGINT)"
    )
    con.executemany("INSERT INTO m VALUES (?, ?, ?, ?, ?)", rows)
    cols = "subject_id, time, code, numeric_value" + (", hadm_id" if hadm else "")
    con.execute(f"COPY (SELECT {cols} FROM m) TO '{shard}' (FORMAT parquet)")
    return root


# --- real vocabulary shapes (issue 16) --------------------------------------------------------
# Two stays of one hospital as its OMOP CDM, FHIR export and MEDS dataset code them: standard
# LOINC concepts with a third of the albumin rows coded by method (BCG 61151-7), SI LOINC codes
# in FHIR, 'LOINC/' codes in MEDS, calcium gluconate whose ingredient concept carries a made-up code
# (not its RxNorm 1908) and is reached only through concept_relationship, look-alikes in no code
# list (albumin by electrophoresis 2862-1) that must show up as orphans, and magnesium citrate,
# a laxative listed with role mg_laxative (mapped by name, never exposure).
# Stay 10 has a listed albumin as well; stay 11 has only the electrophoresis albumin, so
# listing 2862-1 would add that one stay. Concept ids of Athena where clinical.md gives them
# (3001420, 3006906, 3024561, 40763912, 19093848, 19037038); ids from 990000 are made up here.

SHAPES_CONCEPT = [
    # concept_id, concept_name, domain_id, vocabulary_id, concept_class_id, standard, code
    (3001420, "Magnesium [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "19123-9"),
    (3006906, "Calcium [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "17861-6"),
    (3024561, "Albumin [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test",
     "S", "1751-7"),
    (40763912, "Albumin [Mass/volume] in Serum or Plasma by Bromocresol green (BCG) dye "
     "binding method", "Measurement", "LOINC", "Lab Test", "S", "61151-7"),
    (990001, "Albumin [Mass/volume] in Serum or Plasma by Electrophoresis", "Measurement",
     "LOINC", "Lab Test", "S", "2862-1"),
    (8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    (8713, "gram per deciliter", "Unit", "UCUM", "Unit", "S", "g/dL"),
    (8576, "milligram", "Unit", "UCUM", "Unit", "S", "mg"),
    (4171047, "Intravenous", "Route", "SNOMED", "Qualifier Value", "S", "47625008"),
    (19093848, "magnesium sulfate", "Drug", "RxNorm", "Ingredient", "S", "6585"),
    (990010, "Magnesium Sulfate 500 MG/ML Injectable Solution", "Drug", "RxNorm",
     "Clinical Drug", "S", "990010"),
    (19037038, "calcium gluconate", "Drug", "RxNorm", "Ingredient", "S", "990020"),
    (990021, "calcium gluconate 100 MG/ML", "Drug", "RxNorm", "Clinical Drug Comp", "S",
     "990021"),
    (990022, "Ca Gluconate 10 % Injectable Solution", "Drug", "RxNorm", "Clinical Drug", "S",
     "990022"),
    (990030, "Magnesium Citrate 0.058 MG/MG Oral Solution", "Drug", "RxNorm", "Clinical Drug",
     "S", "990030"),
]
# concept_ancestor knows magnesium sulfate only (a trimmed or stale vocabulary)
SHAPES_CONCEPT_ANCESTOR = [(19093848, 19093848), (19093848, 990010)]
SHAPES_CONCEPT_RELATIONSHIP = [
    # concept_id_1, concept_id_2, relationship_id: drug → component → ingredient
    (990022, 990021, "Consists of"),
    (990021, 19037038, "RxNorm has ing"),
    (990021, 990022, "Constitutes"),
]
SHAPES_PERSON = [(1, 8532, 1950, 3, 2), (2, 8507, 1961, 6, 1)]
SHAPES_VISIT = [
    (10, 1, 9201, "2020-01-01", "2020-01-01 08:00:00", "2020-01-06", "2020-01-06 10:00:00"),
    (11, 2, 9201, "2020-02-01", "2020-02-01 08:00:00", "2020-02-04", "2020-02-04 10:00:00"),
]
# id, person, concept, date, datetime, value, unit_concept_id, unit_source_value, visit,
# measurement_source_value
SHAPES_MEASUREMENT = [
    (100, 1, 3001420, "2020-01-02", "2020-01-02 09:00:00", 1.3, 8840, "mg/dL", 10, "MG"),
    (101, 1, 3006906, "2020-01-02", "2020-01-02 09:05:00", 7.6, 8840, "mg/dL", 10, "CA"),
    (102, 1, 3024561, "2020-01-02", "2020-01-02 09:05:00", 3.9, 8713, "g/dL", 10, "ALB"),
    (103, 1, 3024561, "2020-01-03", "2020-01-03 09:05:00", 3.8, 8713, "g/dL", 10, "ALB"),
    (104, 1, 40763912, "2020-01-04", "2020-01-04 09:00:00", 3.7, 8713, "g/dL", 10, "ALB BCG"),
    (105, 2, 3024561, "2020-02-02", "2020-02-02 09:05:00", 3.1, 8713, "g/dL", 11, "ALB"),
    (106, 2, 40763912, "2020-02-02", "2020-02-02 12:00:00", 3.0, 8713, "g/dL", 11, "ALB BCG"),
    (107, 2, 3024561, "2020-02-03", "2020-02-03 09:05:00", 3.2, 8713, "g/dL", 11, "ALB"),
    (108, 1, 990001, "2020-01-02", "2020-01-02 09:05:00", 3.6, 8713, "g/dL", 10, "ALB EP"),
    (109, 2, 990001, "2020-02-02", "2020-02-02 09:05:00", 2.9, 8713, "g/dL", 11, "ALB EP"),
]
# id, person, drug_concept_id, start date, start datetime, type, quantity, unit, route, visit,
# drug_source_value
SHAPES_DRUG = [
    (200, 1, 990010, "2020-01-02", "2020-01-02 11:00:00", 32818, 2.0, "g", 4171047, 10, "MGSO4"),
    (201, 1, 990022, "2020-01-02", "2020-01-02 12:00:00", 32818, 1.0, "g", 4171047, 10,
     "CAGLUC"),
    (202, 2, 990022, "2020-02-02", "2020-02-02 12:00:00", 32818, 2.0, "g", 4171047, 11,
     "CAGLUC"),
    (203, 2, 990030, "2020-02-03", "2020-02-03 08:00:00", 32818, 300.0, "mL", 0, 11, "MGCIT"),
]
SHAPES_DDL = {
    **{t: OMOP_DDL[t] for t in ("concept", "concept_ancestor", "person", "visit_occurrence")},
    "concept_relationship": "concept_id_1 BIGINT, concept_id_2 BIGINT, "
    "relationship_id VARCHAR(20)",
    "measurement": OMOP_DDL["measurement"] + ", measurement_source_value VARCHAR(50)",
    "drug_exposure": OMOP_DDL["drug_exposure"] + ", drug_source_value VARCHAR(50)",
}
SHAPES_ROWS = {
    "concept": SHAPES_CONCEPT,
    "concept_ancestor": SHAPES_CONCEPT_ANCESTOR,
    "concept_relationship": SHAPES_CONCEPT_RELATIONSHIP,
    "person": SHAPES_PERSON,
    "visit_occurrence": SHAPES_VISIT,
    "measurement": SHAPES_MEASUREMENT,
    "drug_exposure": SHAPES_DRUG,
}


def write_omop_shapes(file: Path) -> Path:
    """The real-shapes CDM as a typed DuckDB file (as OHDSI's DuckDB CDMs are)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(file))
    for table, ddl in SHAPES_DDL.items():
        con.execute(f"CREATE TABLE {table} ({ddl})")
        rows = SHAPES_ROWS[table]
        con.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows
        )
    con.close()
    return file


def fhir_shapes() -> dict[str, list[dict]]:
    """The same two stays as a FHIR export with SI LOINC codes (mmol/L, g/L) and displays."""
    base = fhir_resources()

    def obs(oid, pid, eid, code, display, value, unit, when):
        o = _obs(oid, code, value, unit, when)
        o["code"]["coding"][0]["display"] = display
        o["subject"]["reference"] = f"Patient/{pid}"
        o["encounter"]["reference"] = f"Encounter/{eid}"
        return o

    enc2 = dict(base["Encounter"][0], id="e3", subject={"reference": "Patient/p2"},
                period={"start": "2020-02-01T08:00:00Z", "end": "2020-02-04T10:00:00Z"})
    observations = [
        obs("s1", "p1", "e1", "2601-3", "Magnesium [Moles/volume] in Serum or Plasma", 0.53,
            "mmol/L", "2020-01-02T09:00:00Z"),
        obs("s2", "p1", "e1", "2000-8", "Calcium [Moles/volume] in Serum or Plasma", 1.9,
            "mmol/L", "2020-01-02T09:05:00Z"),
        obs("s3", "p1", "e1", "1751-7", "Albumin [Mass/volume] in Serum or Plasma", 39.0, "g/L",
            "2020-01-02T09:05:00Z"),
        obs("s4", "p1", "e1", "61151-7", "Albumin BCG", 37.0, "g/L", "2020-01-04T09:00:00Z"),
        obs("s5", "p2", "e3", "61151-7", "Albumin BCG", 30.0, "g/L", "2020-02-02T12:00:00Z"),
        obs("s6", "p2", "e3", "2862-1", "Albumin [Mass/volume] in Serum or Plasma by "
            "Electrophoresis", 29.0, "g/L", "2020-02-02T09:05:00Z"),
        obs("s7", "p1", "e1", "2862-1", "Albumin [Mass/volume] in Serum or Plasma by "
            "Electrophoresis", 36.0, "g/L", "2020-01-02T09:05:00Z"),
    ]
    return {
        "Patient": base["Patient"],
        "Encounter": [base["Encounter"][0], enc2],
        "Observation": observations,
        "MedicationAdministration": base["MedicationAdministration"][:1],
    }


MEDS_SHAPES_ROWS = [
    (1, "2090-01-01 00:00:00", "MEDS_BIRTH", None, None),
    (1, "2150-03-01 08:00:00", "HOSPITAL_ADMISSION//EW EMER.//EMERGENCY ROOM", None, 20001),
    (1, "2150-03-02 08:00:00", "LOINC/2601-3", 0.53, 20001),
    (1, "2150-03-02 08:00:00", "LOINC/2000-8", 1.9, 20001),
    (1, "2150-03-02 08:00:00", "LOINC/1751-7", 3.9, 20001),
    (1, "2150-03-03 08:00:00", "LOINC/61151-7", 3.7, 20001),
    (1, "2150-03-04 08:00:00", "LOINC/61152-5", 3.5, 20001),
    (1, "2150-03-08 12:00:00", "HOSPITAL_DISCHARGE//HOME", None, 20001),
]

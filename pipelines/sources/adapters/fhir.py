"""FHIR R4 bulk export (NDJSON) → canonical tables (``mgca run --source fhir --path FOLDER``).

FOLDER holds one or more files per resource type, as a bulk ``$export`` writes them:
``Patient.ndjson``, ``Encounter.ndjson``, ``Observation.ndjson`` (required) and
``MedicationAdministration.ndjson`` (optional: without it nobody is exposed; a warning says
so); numbered shards (``Observation_1.ndjson``, ``Observation.002.ndjson``) and gzip
(``.ndjson.gz``) are accepted. Each line is one resource. DuckDB reads the files as JSON objects
and streams them through the mapping SQL in ``sql/sources/fhir/``, run in the order of
:data:`SQL_FILES`.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig
from mgca.sources.adapters import AdapterResult, Log
from mgca.sources.adapters.common import export_canonical, load_reference, run_sql_files
from mgca.sources.csv_reader import sql_literal
from mgca.sources.resolve import SourceError

KIND = "fhir"

REQUIRED_RESOURCES = ("Patient", "Encounter", "Observation")
OPTIONAL_RESOURCES = ("MedicationAdministration",)
# Elements a resource file must carry (checked on the first SAMPLE_LINES lines: an element
# absent from all of them means the file is not what we expect; absent from a single
# resource, the row is counted as skipped with its reason).
REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Patient": ("id",),
    "Encounter": ("id", "status", "class", "subject", "period"),
    "Observation": ("id", "status", "code", "subject"),
    "MedicationAdministration": ("id", "status", "subject"),
}
SAMPLE_LINES = 1000
# sql/sources/fhir/<name>.sql in run order; they define the views of VIEWS.
SQL_FILES = (
    "common/carrier_fluids",
    "resources",
    "patient_encounter_rows",
    "observation_rows",
    "medication_rows",
    "source_rows",
    "orphan_codes",
)
# Code lists the mapping joins (tables ref_<stem>).
REFERENCE_STEMS = (
    "lab_codes",
    "ingredients",
    "drug_route_codes",
    "fhir_statuses",
    "fhir_encounter_classes",
    "carrier_fluids",
)
# canonical table → the view of sql/sources/fhir/ holding its rows (with skip_reason)
VIEWS = {
    "persons": "fhir_person_rows",
    "encounters": "fhir_encounter_rows",
    "lab_results": "fhir_lab_rows",
    "medication_administrations": "fhir_medication_rows",
}


def resource_files(folder: Path, resource: str) -> list[Path]:
    """Every NDJSON file of ``resource`` in ``folder`` (plain, numbered shards, gzipped)."""
    pattern = re.compile(rf"^{resource}([._-]\d+)?\.ndjson(\.gz)?$")
    return sorted(p for p in folder.iterdir() if p.is_file() and pattern.match(p.name))


def _open(file: Path):
    return (
        gzip.open(file, "rt", encoding="utf-8")
        if file.suffix == ".gz"
        else open(file, encoding="utf-8")
    )


def _first_bad_line(file: Path) -> tuple[int, str] | None:
    """Line number (1-based) and parser message of the first line that is not a JSON object."""
    with _open(file) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return number, exc.msg
            if not isinstance(value, dict):
                return number, "not a JSON object"
    return None


def _check_file(file: Path, resource: str) -> None:
    """The first SAMPLE_LINES lines parse, are ``resource`` resources, and carry its elements."""
    seen: set[str] = set()
    n = 0
    with _open(file) as fh:
        for number, line in enumerate(fh, start=1):
            if number > SAMPLE_LINES:
                break
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(
                    f"{file.name}, line {number}: not valid JSON ({exc.msg}). Fix: each line of "
                    "an NDJSON file must be one complete FHIR resource."
                ) from exc
            if not isinstance(value, dict) or value.get("resourceType") != resource:
                found = value.get("resourceType") if isinstance(value, dict) else None
                raise SourceError(
                    f"{file.name}, line {number}: resourceType is {found!r}; expected "
                    f"'{resource}'. Fix: put each resource type in its own <Type>.ndjson file."
                )
            seen.update(value)
            n += 1
    missing = [e for e in REQUIRED_ELEMENTS[resource] if e not in seen] if n else []
    if missing:
        raise SourceError(
            f"{file.name}: element(s) {', '.join(missing)} absent from every one of the first "
            f"{n} {resource} resources; expected FHIR R4 {resource} with "
            f"{', '.join(REQUIRED_ELEMENTS[resource])}. Fix: export full resources "
            "(no _elements filter that drops them)."
        )


def _files(folder: Path) -> dict[str, list[Path]]:
    if not folder.exists():
        raise SourceError(
            f"--path {folder} does not exist; give the folder of a FHIR bulk export "
            "(Patient.ndjson, Encounter.ndjson, Observation.ndjson, "
            "MedicationAdministration.ndjson)"
        )
    if not folder.is_dir():
        raise SourceError(f"--path {folder} is a file; --source fhir expects the export folder")
    found = {r: resource_files(folder, r) for r in (*REQUIRED_RESOURCES, *OPTIONAL_RESOURCES)}
    missing = [r for r in REQUIRED_RESOURCES if not found[r]]
    if missing:
        raise SourceError(
            f"{folder.name}: no {', '.join(r + '.ndjson' for r in missing)} found; a FHIR R4 "
            f"bulk export folder needs {', '.join(r + '.ndjson' for r in REQUIRED_RESOURCES)} "
            "(shards like Observation_1.ndjson and .ndjson.gz are accepted)."
        )
    return found


def check(path: Path) -> None:
    """Fail fast: required resource files present; their first lines parse and look right."""
    for resource, files in _files(Path(path)).items():
        for file in files:
            _check_file(file, resource)


def _bind(con: duckdb.DuckDBPyConnection, files: dict[str, list[Path]]) -> None:
    for resource, paths in files.items():
        view = f"fhir_{resource.lower()}_raw"
        if not paths:
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT NULL::JSON AS json WHERE false"
            )
            continue
        listed = ", ".join(sql_literal(str(p)) for p in paths)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT json FROM read_json_objects("
            f"[{listed}], format = 'newline_delimited', maximum_object_size = 67108864)"
        )


def to_canonical(path: Path, target: Path, config: MgcaConfig, log: Log) -> AdapterResult:
    """Map a FHIR R4 bulk export onto the canonical tables in ``target`` (streamed by DuckDB)."""
    folder = Path(path)
    files = _files(folder)
    warnings = [
        f"no {r}.ndjson in {folder.name}: "
        + "no medication administrations, so no episode can be exposed"
        for r in OPTIONAL_RESOURCES
        if not files[r]
    ]
    con = duckdb.connect(config={"temp_directory": str(target.parent / "duckdb_tmp")})
    try:
        con.execute("SET TimeZone = 'UTC'")
        _bind(con, files)
        load_reference(con, REFERENCE_STEMS)
        run_sql_files(con, KIND, SQL_FILES, target, log)
        written = export_canonical(con, VIEWS, target)
    except duckdb.InvalidInputException as exc:
        for resource_files_ in files.values():
            for file in resource_files_:
                bad = _first_bad_line(file)
                if bad:
                    raise SourceError(
                        f"{file.name}, line {bad[0]}: not valid JSON ({bad[1]}). Fix: each line "
                        "of an NDJSON file must be one complete FHIR resource."
                    ) from exc
        raise SourceError(f"{folder.name}: FHIR files could not be read ({exc})") from exc
    except duckdb.Error as exc:
        raise SourceError(
            f"{folder.name}: FHIR resources could not be mapped ({exc}). Fix: check the "
            "resources against FHIR R4."
        ) from exc
    finally:
        con.close()
    log("fhir: mapped " + ", ".join(f"{table} {n:,}" for table, n in written.items()))
    inputs = tuple(p for paths in files.values() for p in paths)
    return AdapterResult(data_dir=target, input_files=inputs, warnings=tuple(warnings))

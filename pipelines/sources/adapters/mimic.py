"""MIMIC-IV (v2.x/3.x) as PhysioNet distributes it: ``hosp/*.csv.gz`` (or ``.csv``/Parquet).

    mgca run --source mimic --path /data/mimiciv/3.1 --out runs/mimic

Required: ``hosp/patients``, ``hosp/admissions``, ``hosp/labevents``. Optional (a warning
when absent): ``hosp/emar`` + ``hosp/emar_detail`` (the only source of *given* ward doses),
``icu/inputevents`` (ICU IV doses), ``hosp/prescriptions`` (orders: counted, never used as
doses), ``hosp/d_labitems`` (used to warn when a code-list itemid carries another label).

The mapping is SQL in ``sql/sources/mimic/`` (run in the order of :data:`SQL_FILES`) and
code lists in ``sql/reference/sources/mimic_*.csv``. The big tables are read once each by
DuckDB into a staged Parquet file (``stage_*.sql``) and mapped from there, so labevents is never
held in Python memory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mgca.analysis.privacy import count_rule, display_count
from mgca.config import MgcaConfig
from mgca.sources.adapters import AdapterResult, Log
from mgca.sources.adapters.common import (
    InputTable,
    create_view,
    find_table,
    load_reference,
    open_adapter_db,
    require_columns,
    run_sql_files,
)
from mgca.sources.resolve import CANONICAL_TABLE_NAMES, SourceError

KIND = "mimic"

# table → (view name, columns the mapping reads; all must be present)
REQUIRED_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hosp/patients": ("src_patients", ("subject_id", "gender", "anchor_age", "anchor_year")),
    "hosp/admissions": (
        "src_admissions",
        ("subject_id", "hadm_id", "admittime", "dischtime", "hospital_expire_flag"),
    ),
    "hosp/labevents": (
        "src_labevents",
        ("subject_id", "hadm_id", "itemid", "charttime", "valuenum", "valueuom"),
    ),
}
OPTIONAL_TABLES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "hosp/emar": (
        "src_emar",
        ("subject_id", "hadm_id", "emar_id", "charttime", "medication", "event_txt"),
        "no ward medication administrations: every stay counts as unexposed unless "
        "icu/inputevents records a dose",
    ),
    "hosp/emar_detail": (
        "src_emar_detail",
        ("emar_id", "parent_field_ordinal", "dose_given", "dose_given_unit", "route"),
        "eMAR doses and routes unknown (given doses still count, with unknown amount)",
    ),
    "icu/inputevents": (
        "src_inputevents",
        ("subject_id", "hadm_id", "starttime", "itemid", "amount", "amountuom",
         "statusdescription"),
        "no ICU IV magnesium or calcium doses (only hosp/emar is used)",
    ),
    "icu/icustays": (
        "src_icustays",
        ("subject_id", "hadm_id", "intime", "outtime"),
        "no ICU stays: icu_at_index is not recorded by this source",
    ),
    "icu/procedureevents": (
        "src_procedureevents",
        ("subject_id", "hadm_id", "starttime", "endtime", "itemid"),
        "no dialysis procedures: nobody is excluded for dialysis",
    ),
    "hosp/prescriptions": (
        "src_prescriptions",
        ("subject_id",),
        "prescriptions not counted (they are orders and never used as doses anyway)",
    ),
}
# Code lists the mapping joins (tables ref_<stem>).
REFERENCE_STEMS = (
    "mimic_lab_items",
    "mimic_medications",
    "mimic_emar_events",
    "mimic_routes",
    "mimic_input_items",
    "mimic_procedure_items",
    "orphan_patterns",
    "carrier_fluids",
)
# sql/sources/mimic/<name>.sql in run order (common.run_sql_files: what each name does).
SQL_FILES = (
    "common/carrier_fluids",
    "stage_labevents",
    "stage_emar",
    "stage_emar_detail",
    "classify",
    "classify_care",
    *CANONICAL_TABLE_NAMES,
    "care_events",
    "source_rows",
    "orphan_codes",
)


def _locate(root: Path) -> tuple[dict[str, InputTable], dict[str, InputTable | None]]:
    if not root.exists():
        raise SourceError(
            f"--path {root} does not exist; give the MIMIC-IV folder that holds hosp/ "
            "(and icu/), e.g. physionet.org/files/mimiciv/3.1"
        )
    if not root.is_dir():
        raise SourceError(f"--path {root} is a file; --source mimic expects the MIMIC-IV folder")
    required: dict[str, InputTable] = {}
    missing = []
    for name in REQUIRED_TABLES:
        file = find_table(root, name)
        if file is None:
            missing.append(name)
        else:
            required[name] = InputTable(name, file)
    if missing:
        raise SourceError(
            f"--source mimic: {root} has no {', '.join(missing)} (.csv.gz, .csv or .parquet); "
            "expected the MIMIC-IV v2.x/3.x layout (hosp/patients, hosp/admissions, "
            "hosp/labevents, ...). Fix: point --path at the folder that contains hosp/."
        )
    optional = {}
    for name in OPTIONAL_TABLES:
        file = find_table(root, name)
        optional[name] = InputTable(name, file) if file else None
    return required, optional


def check(path: Path) -> None:
    """Fail fast: the required tables exist and every table has the columns the mapping reads."""
    required, optional = _locate(Path(path))
    for name, table in required.items():
        require_columns(table, REQUIRED_TABLES[name][1], KIND)
    for name, table in optional.items():
        if table is not None:
            require_columns(table, OPTIONAL_TABLES[name][1], KIND)


def _label_warnings(con, root: Path) -> list[str]:
    """Warn when d_labitems labels a code-list itemid differently from the code list."""
    file = find_table(root, "hosp/d_labitems")
    columns = ("itemid", "label", "fluid")  # labels also name orphan itemids (orphan_codes.sql)
    if file is None:
        create_view(con, "src_d_labitems", None, columns)
        return []
    table = InputTable("hosp/d_labitems", file)
    require_columns(table, ("itemid", "label"), KIND)
    create_view(con, "src_d_labitems", table, columns)
    rows = con.execute(
        "SELECT k.itemid, k.label, d.label FROM ref_mimic_lab_items AS k "
        "JOIN src_d_labitems AS d ON trim(CAST(d.itemid AS VARCHAR)) = k.itemid "
        "WHERE lower(trim(d.label)) <> lower(trim(k.label)) ORDER BY k.itemid"
    ).fetchall()
    return [
        f"hosp/d_labitems labels itemid {itemid} '{found}', the code list expects "
        f"'{expected}'; check sql/reference/sources/mimic_lab_items.csv"
        for itemid, expected, found in rows
    ]


def to_canonical(path: Path, target: Path, config: MgcaConfig, log: Log) -> AdapterResult:
    """Map a MIMIC-IV folder onto the canonical tables in ``target`` (streamed by DuckDB)."""
    root = Path(path)
    check(root)
    required, optional = _locate(root)
    warnings: list[str] = []
    con = open_adapter_db(target, config)
    try:
        load_reference(con, REFERENCE_STEMS)
        for name, table in required.items():
            view, columns = REQUIRED_TABLES[name]
            create_view(con, view, table, columns)
        for name, table in optional.items():
            view, columns, consequence = OPTIONAL_TABLES[name]
            if table is None:
                warnings.append(f"MIMIC-IV table {name} not found in {root}: {consequence}")
            create_view(con, view, table, columns)
        warnings += _label_warnings(con, root)
        run_sql_files(con, KIND, SQL_FILES, target, log)
        summary = con.execute(
            "SELECT source_table, status, sum(n_rows) FROM read_parquet(?) GROUP BY ALL "
            "ORDER BY 1, 2",
            [str(target / "source_rows.parquet")],
        ).fetchall()
    finally:
        con.close()
        shutil.rmtree(target / ".duckdb_tmp", ignore_errors=True)
    threshold = count_rule(config)
    for source_table, status, n in summary:
        shown = display_count(int(n), threshold)
        log(f"mimic: {source_table}: {shown} rows {status}")
    tables = [*required.values(), *(t for t in optional.values() if t is not None)]
    files = tuple(
        f
        for t in tables
        for f in (sorted(t.file.glob("*.parquet")) if t.file.is_dir() else [t.file])
    )
    return AdapterResult(data_dir=target, input_files=files, warnings=tuple(warnings))

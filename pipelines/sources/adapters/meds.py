"""MEDS (Medical Event Data Standard) datasets: Parquet shards of (subject_id, time, code,
numeric_value), as MEDS ETLs write them.

    mgca run --source meds --path /data/MEDS_cohort --out runs/meds

Layout: ``data/**/*.parquet`` (or Parquet shards directly under ``--path``); ``metadata/``
is not needed. Columns: ``subject_id`` (int64), ``time`` (timestamp; null for static rows),
``code`` (string), ``numeric_value`` (float32, nullable); an optional ``hadm_id`` column (the
MIMIC-IV MEDS ETL writes one) links rows to stays. Codes are mapped by
``sql/reference/sources/meds_codes.csv`` (exact code or prefix → role) and the code lists it
names; the rules are SQL in ``sql/sources/meds/``, run in the order of :data:`SQL_FILES`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from mgca.config import MgcaConfig
from mgca.sources.adapters import AdapterResult, Log
from mgca.sources.adapters.common import (
    load_reference,
    open_adapter_db,
    run_sql_files,
)
from mgca.sources.csv_reader import sql_literal
from mgca.sources.resolve import CANONICAL_TABLE_NAMES, SourceError

KIND = "meds"
REQUIRED = ("subject_id", "time", "code", "numeric_value")
# Code lists the mapping joins (tables ref_<stem>).
REFERENCE_STEMS = ("meds_codes", "mimic_lab_items", "lab_codes", "mimic_medications",
                   "mimic_emar_events", "ingredients")
# sql/sources/meds/<name>.sql in run order (common.run_sql_files: what each name does).
SQL_FILES = ("classify", *CANONICAL_TABLE_NAMES, "source_rows", "orphan_codes")


def _shards(root: Path) -> list[Path]:
    if not root.exists():
        raise SourceError(f"--path {root} does not exist; give the MEDS dataset folder")
    if root.is_file():
        raise SourceError(f"--path {root} is a file; --source meds expects the folder with data/")
    data = root / "data" if (root / "data").is_dir() else root
    shards = sorted(data.rglob("*.parquet"))
    if not shards:
        raise SourceError(
            f"--source meds: no Parquet shards under {data}; expected the MEDS layout "
            "data/*.parquet (or data/<split>/*.parquet). Fix: point --path at the MEDS root."
        )
    return shards


def _columns(shard: Path) -> dict[str, str]:
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({sql_literal(shard.as_posix())})"
        ).fetchall()
    except duckdb.Error as exc:
        raise SourceError(
            f"--source meds: {shard} cannot be read as Parquet ({str(exc).splitlines()[0]}). "
            "Fix: re-write the shard with a MEDS ETL."
        ) from exc
    finally:
        con.close()
    return {name: kind for name, kind, *_ in rows}


def check(path: Path) -> None:
    """Every shard is Parquet with the four MEDS columns (names and broad types)."""
    for shard in _shards(Path(path)):
        columns = _columns(shard)
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise SourceError(
                f"--source meds: {shard} has no column {', '.join(map(repr, missing))}; "
                f"expected MEDS columns {', '.join(REQUIRED)}; found {', '.join(columns)}. "
                "Fix: write the shard in the MEDS schema (meds package, MEDS v0.3+)."
            )
        if columns["code"] != "VARCHAR":
            raise SourceError(
                f"--source meds: {shard} column 'code' has type {columns['code']}; expected "
                "string. Fix: write codes as strings (e.g. 'LAB//50960//mg/dL')."
            )
        if not columns["time"].startswith("TIMESTAMP") and columns["time"] != "DATE":
            raise SourceError(
                f"--source meds: {shard} column 'time' has type {columns['time']}; expected "
                "timestamp. Fix: write times as Parquet timestamps, not text."
            )


def to_canonical(path: Path, target: Path, config: MgcaConfig, log: Log) -> AdapterResult:
    """Map a MEDS dataset onto the canonical tables in ``target``."""
    root = Path(path)
    check(root)
    shards = _shards(root)
    has_hadm = all("hadm_id" in _columns(s) for s in shards)
    warnings: list[str] = []
    con = open_adapter_db(target, config)
    try:
        load_reference(con, REFERENCE_STEMS)
        files = "[" + ", ".join(sql_literal(s.as_posix()) for s in shards) + "]"
        hadm = "hadm_id" if has_hadm else "CAST(NULL AS VARCHAR) AS hadm_id"
        con.execute(
            "CREATE VIEW src_meds AS SELECT subject_id, time, code, numeric_value, "
            f"{hadm} FROM read_parquet({files}, union_by_name = true)"
        )
        run_sql_files(con, KIND, SQL_FILES, target, log)
        (has_stays,) = con.execute("SELECT has_stays FROM meds_flags").fetchone()
        if not has_stays:
            warnings.append(
                "MEDS data has no HOSPITAL_ADMISSION/HOSPITAL_DISCHARGE codes: one pseudo-stay "
                "per subject from its first to its last lab or dose (see README, 'Sources')"
            )
        (n_birth,) = con.execute(
            "SELECT count(*) FROM meds_rows WHERE role = 'birth'"
        ).fetchone()
        if n_birth == 0:
            warnings.append("MEDS data has no MEDS_BIRTH codes: age unknown, so the adult "
                            "rule excludes every stay")
    finally:
        con.close()
        shutil.rmtree(target / ".duckdb_tmp", ignore_errors=True)
    log(f"meds: mapped {len(shards)} shard(s)")
    return AdapterResult(data_dir=target, input_files=tuple(shards), warnings=tuple(warnings))

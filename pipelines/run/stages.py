"""The stages of one run, as plain functions over file paths.

:func:`mgca.run.runner.run_study` calls them in order; the Prefect flow
(:mod:`mgca.run.flow`) wraps each in a task of the same signature, so a scheduled run and a
plain call compute the same thing. Stages pass paths and aggregates, never live DuckDB
connections (a connection is unhashable and would break Prefect's cache keys); each opens
the database it needs.

The expensive stages (derive, fit, sensitivity) store what they made in the run's cache entry
(:mod:`mgca.run.cache`) and return the entry folder; a stage whose entry is complete is
skipped. ``key`` is the entry's content address (Prefect's cache key for the task).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mgca.analysis.estimation.analyses import sensitivity_block
from mgca.analysis.estimation.cohort_schema import validate_cohort
from mgca.analysis.privacy import count_rule, display_count
from mgca.analysis.report.figures import (
    analyte_trajectory_figure,
    calcium_trajectory_figure,
    trajectory_sample_figure,
)
from mgca.analysis.report.quality_section import episode_missingness
from mgca.analysis.report.render import ReportContext, render_report
from mgca.analysis.report.table_one import table_one
from mgca.config import MgcaConfig
from mgca.engine import registry
from mgca.engine.base import SourceTables
from mgca.ops.history import update_index
from mgca.run import cache, outputs, study
from mgca.run.progress import log
from mgca.run.results import records
from mgca.sources.resolve import resolve_source

#: The engine that derived a cache entry's database is recorded in ``derived.json``: the
#: sensitivity windows must be re-derived the way that database allows (the engine config is
#: not part of the cache key, so a later run on another engine can reuse the entry).
DERIVED_JSON = "derived.json"


@dataclass(frozen=True)
class PreparedSource:
    """The canonical tables of a run, located (or generated) by :func:`prepare_source`."""

    tables: SourceTables
    fingerprint: str
    kind: str
    manifest: dict[str, Any] | None = None

    @property
    def data_dir(self) -> str:
        """The folder (or URL) of the canonical tables."""
        return self.tables.location


def prepare_source(
    source: str, path: str | None, staging: str, config: MgcaConfig
) -> PreparedSource:
    """Locate (or, for synthetic data with no --path, generate) the canonical input tables.

    ``path`` is passed on as typed: with the Spark engine it may be a URL the cluster reads.
    """
    resolved = resolve_source(source, path, Path(staging), config, log)
    return PreparedSource(
        tables=SourceTables(
            location=str(resolved.data_dir),
            data_format=resolved.data_format,
            delta_versions=dict(resolved.delta_versions) or None,
        ),
        fingerprint=resolved.fingerprint or outputs.fingerprint_files(resolved.files),
        kind=resolved.kind,
        manifest=resolved.manifest,
    )


def load_stage(
    source: SourceTables, db_path: str, entry: str, key: str, config: MgcaConfig
) -> str:
    """Load the canonical tables, reference tables and study config into the run's DuckDB
    (:func:`mgca.run.study.load_database`). Skipped when the cache entry ``key`` already
    holds the derived database. Returns the entry folder."""
    if cache.is_complete(Path(entry), "derive"):
        log("load skipped: derived tables for this input and config are in the cache")
        return entry
    started = time.perf_counter()
    study.load_tables(source, Path(db_path), config, log)
    log(f"load took {time.perf_counter() - started:.1f} s")
    return entry


def derive_stage(
    source: SourceTables, db_path: str, entry: str, key: str, config: MgcaConfig
) -> str:
    """Run every SQL step by the configured engine, check the analytic table against its
    contract (:func:`mgca.analysis.estimation.cohort_schema.validate_cohort`: a violation is
    a derivation or adapter bug and stops the run); store the database, the analytic table
    and the report's tables (:func:`mgca.engine.registry.report_tables`) in the cache entry
    ``key``. Returns the entry folder."""
    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "derive"):
        log("derivation skipped: reusing the cached derived tables")
        return entry
    started = time.perf_counter()
    db = Path(db_path)
    n_analysed = study.derive_from(source, db, config, log)
    cohort = study.read_cohort(db)
    # the contract between the SQL and the models, checked before any model is fitted; the
    # table is stored as derived (the check's type coercion is not written back)
    validate_cohort(cohort, config.study)
    work = cache.stage_workdir(entry_dir)
    pq.write_table(
        pa.Table.from_pandas(cohort, preserve_index=False),
        work / "cohort.parquet",
    )
    for table in registry.report_tables():
        study.read_table(db, table.select()).to_parquet(
            work / f"{table.report_name}.parquet", index=False
        )
    cache.write_json(
        work / DERIVED_JSON, {"n_analysed": n_analysed, "engine": config.engine.name}
    )
    cache.link_or_copy(db, work / "mgca.duckdb")  # one file: neither is written again
    cache.commit_stage(work, entry_dir, "derive")
    shown = display_count(n_analysed, count_rule(config))  # the console follows the count rule
    log(f"derived {shown} analysed episodes in {time.perf_counter() - started:.1f} s")
    return entry


@dataclass(frozen=True)
class Derived:
    """What the derive stage left in a cache entry for the rest of the run."""

    n_analysed: int
    engine: str
    tables: dict[str, pd.DataFrame]


def read_derived(entry: Path) -> Derived:
    """The report's tables and counts a derive stage stored in its cache entry."""
    stored = cache.read_json(entry / DERIVED_JSON)
    return Derived(
        n_analysed=int(stored["n_analysed"]),
        engine=str(stored["engine"]),
        tables={
            t.report_name: pd.read_parquet(entry / f"{t.report_name}.parquet")
            for t in registry.report_tables()
            if t.report_name is not None
        },
    )


def use_cached(entry: Path, staging: Path, db_path: Path) -> None:
    """Copy the cached analytic table (and, on a cache hit, hard-link the database:
    :func:`mgca.run.cache.link_or_copy`) into the staging folder: the run folder must be
    complete and survive the cache entry's removal. On a miss the staging database is the
    one just derived, the same file as the cached one."""
    if not (staging / "cohort.parquet").exists():
        shutil.copy2(entry / "cohort.parquet", staging / "cohort.parquet")
    if not db_path.exists():
        cache.link_or_copy(entry / "mgca.duckdb", db_path)


FITTED_JSON = "fitted.json"
SENSITIVITY_JSON = "sensitivity.json"


def fit_stage(db_path: str, entry: str, key: str, config: MgcaConfig) -> str:
    """Every estimate, the diagnostics gate, the weighting diagnostics (with their figures)
    and the secondary analyses (:func:`mgca.run.study.fit_all`), stored as ``fitted.json``
    in the cache entry ``key``. Returns the entry folder."""
    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "fit"):
        log("model fits skipped: reusing the cached estimates")
        return entry
    cohort = pd.read_parquet(entry_dir / "cohort.parquet")
    fitted = study.fit_all(cohort, study.read_secondary_tables(Path(db_path)), config, log)
    work = cache.stage_workdir(entry_dir)
    cache.write_json(work / FITTED_JSON, fitted)
    cache.commit_stage(work, entry_dir, "fit")
    return entry


def sensitivity_stage(
    cohort_path: str,
    db_path: str,
    primary: dict[str, Any] | None,
    entry: str,
    key: str,
    config: MgcaConfig,
) -> str:
    """Ionized outcome, no advanced kidney disease, same-day albumin, alternative windows
    (re-derived in SQL by the engine that derived the entry, only the steps the changed
    window reaches, in a scratch database beside the run's database) and the E-value.

    Stores ``sensitivity.json`` in the cache entry ``key``; returns the entry folder.
    """
    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "sensitivity"):
        log("sensitivity analyses skipped: reusing the cached results")
        return entry
    started = time.perf_counter()
    db = Path(db_path)
    engine = cache.read_json(entry_dir / DERIVED_JSON)["engine"]
    block = sensitivity_block(
        pd.read_parquet(cohort_path),
        kidney=study.read_table(db, registry.table("index_kidney_function").select()),
        primary=primary,
        config=config,
        cohort_for=study.cohort_for(engine, db, db.parent),
    )
    work = cache.stage_workdir(entry_dir)
    cache.write_json(work / SENSITIVITY_JSON, block)
    cache.commit_stage(work, entry_dir, "sensitivity")
    log(f"sensitivity analyses took {time.perf_counter() - started:.1f} s")
    return entry


def truth_stage(data_dir: str, cohort_path: str, config: MgcaConfig) -> dict[str, Any] | None:
    """On synthetic data, the simulator's known true effect for this run's own cohort
    (:func:`mgca.run.study.synthetic_truths`): for the episodes the adjusted estimates used,
    and overlap-weighted for the overlap population."""
    truths = study.synthetic_truths(
        Path(data_dir),
        pd.read_parquet(cohort_path),
        config,
        _eligible_episodes(Path(cohort_path).parent / outputs.PRIVATE_DB),
    )
    if truths is None:
        return None
    return {
        "estimand": "sample average treatment effect in the episodes the primary estimate "
        "describes: every eligible episode, outcome measured or not, when the primary is "
        "weighted for missing outcomes (true_effect_complete_case: the analysed episodes "
        "alone); true_effect_overlap: the analysed episodes, overlap-weighted (the overlap "
        "population)",
        "unit": "mmol/L",
        **truths,
    }


def _eligible_episodes(db_path: Path) -> pd.DataFrame | None:
    """The run's ``eligible_episodes`` (private: beside cohort.parquet in the staging
    folder), or ``None`` when the database or the table is not there."""
    if not db_path.exists():
        return None
    try:
        return study.read_table(db_path, registry.table("eligible_episodes").select())
    except duckdb.Error:  # an older database without the table: no eligible-episode truth
        return None


def render_stage(
    staging: str,
    results: dict[str, Any],
    cohort_path: str,
    trajectory: pd.DataFrame,
    config: MgcaConfig,
    figures: dict[str, str] | None = None,
    analyte_trajectory: pd.DataFrame | None = None,
    trajectory_sample: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Render report.html (aggregates only) into the staging folder; return Table 1 records.

    ``trajectory_sample`` is the de-identified ``trajectory_sample`` table (hours from index,
    pseudonymous sample numbers); no id or date reaches the report.
    """
    threshold = count_rule(config)
    cohort = pd.read_parquet(cohort_path)
    table = table_one(cohort, threshold)
    study_cfg = config.study
    context = ReportContext(
        title=config.report.title,
        results=results,
        table_one=table,
        trajectory_svg=calcium_trajectory_figure(trajectory, threshold, study_cfg),
        config=config,
        threshold=threshold,
        figures=figures or {},
        analyte_trajectory_svg=None
        if analyte_trajectory is None or analyte_trajectory.empty
        else analyte_trajectory_figure(analyte_trajectory, threshold, study_cfg),
        trajectory_sample_svg=None
        if trajectory_sample is None or trajectory_sample.empty
        else trajectory_sample_figure(trajectory_sample, threshold, study_cfg),
        episode_missingness=episode_missingness(cohort) if len(cohort) else None,
    )
    html = render_report(context)
    outputs.write_text_atomic(Path(staging) / "report.html", html)
    return records(table, [], threshold)


def update_history(reports_root: str) -> str:
    """Rewrite ``history.json`` and ``index.html`` of the reports root (atomic, locked)."""
    return str(update_index(Path(reports_root)))

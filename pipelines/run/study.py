"""The study's steps as plain functions: the Prefect tasks call these, and so can a notebook.

    from mgca.run import study
    from mgca.config import load_config
    config = load_config()
    study.build_database(Path("data/synthetic/demo"), Path("demo.duckdb"), config)
    cohort = study.read_cohort(Path("demo.duckdb"))          # pandas, one row per episode
    estimates, notes = study.fit_estimates(cohort, config)

Every cohort rule runs in SQL (sql/); these functions only move data and call the models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mgca.config import MgcaConfig

Progress = Callable[[str], None]


def load_database(
    data_dir: Path | str,
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_format: str | None = None,
    delta_versions: dict[str, int] | None = None,
) -> dict[str, int]:
    """Create ``db_path`` with the canonical tables, reference tables and study config.

    With ``config.engine.name == "spark"`` the canonical tables stay where they are: Spark
    reads and checks them (``mgca.engine.spark``; ``data_dir`` may then be a URL the cluster
    reads, ``data_format`` "parquet" or "delta" and ``delta_versions`` the Delta versions to
    read, see :func:`mgca.engine.spark.register_canonical`), and the DuckDB file gets only
    the reference tables, the study config and the source row counts.

    Returns the row count of each canonical table.
    """
    from mgca.engine.database import (
        load_canonical,
        load_reference_tables,
        load_source_rows,
        open_database,
        write_study_config,
    )

    con = open_database(db_path, config)
    try:
        if config.engine.name == "spark":
            from mgca.engine import spark as spark_engine

            spark = spark_engine.spark_session(config.engine.spark_master)
            counts = spark_engine.register_canonical(
                spark, str(data_dir), config, data_format, delta_versions, progress
            )
        else:
            counts = load_canonical(con, Path(data_dir))
        load_source_rows(con, Path(data_dir), counts)
        load_reference_tables(con)
        write_study_config(con, config)
    finally:
        con.close()
    if progress:
        progress("loaded " + ", ".join(f"{name}: {n:,} rows" for name, n in counts.items()))
    return counts


def derive_tables(
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_dir: Path | str | None = None,
    data_format: str | None = None,
    delta_versions: dict[str, int] | None = None,
) -> int:
    """Run every SQL step of sql/ against ``db_path``; return the number of analysed episodes.

    With the Spark engine the steps run on Spark over the canonical tables in ``data_dir``
    (required then; stored as ``data_format``, at ``delta_versions``, as for
    :func:`load_database`) and only ``spark_engine.PULLED_BACK_TABLES`` and the analytic
    table of each sensitivity window (``alternative_cohort__<name>``) are written to
    ``db_path``.
    """
    from mgca.engine.database import open_database
    from mgca.engine.derive import derive

    con = open_database(db_path, config)
    try:
        if config.engine.name == "spark":
            if data_dir is None:
                raise ValueError("the Spark engine needs the canonical data folder (data_dir)")
            from mgca.engine import spark as spark_engine

            spark = spark_engine.spark_session(config.engine.spark_master)
            spark_engine.register_canonical(
                spark, str(data_dir), config, data_format, delta_versions
            )
            spark_engine.register_small_inputs(spark, con)
            try:
                spark_engine.derive_on_spark(spark, progress)
                spark_engine.pull_back(spark, con, config)
                # the sensitivity windows need the lab-level tables, which stay on Spark
                spark_engine.derive_alternative_cohorts(spark, con, config, progress)
            finally:
                spark_engine.unpersist_all(spark)
        else:
            derive(con, progress=progress)
        row = con.execute("SELECT count(*) FROM analytic_cohort").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def build_database(
    data_dir: Path | str,
    db_path: Path,
    config: MgcaConfig,
    progress: Progress | None = None,
    data_format: str | None = None,
) -> int:
    """Load and derive in one call; return the number of analysed episodes.

    Delta tables (``data_format`` "delta", Spark engine) are read at the versions current
    when the load starts, so both steps read the same snapshot.
    """
    versions = None
    fmt = data_format or config.engine.spark_format
    if config.engine.name == "spark" and fmt == "delta":
        from mgca.sources.delta_snapshot import snapshot_versions
        from mgca.sources.resolve import CANONICAL_TABLE_NAMES

        base = str(data_dir).rstrip("/")
        found = snapshot_versions({t: f"{base}/{t}" for t in CANONICAL_TABLE_NAMES})
        versions = {table: version for table, (_, version) in found.items()}
    load_database(data_dir, db_path, config, progress, data_format, versions)
    return derive_tables(db_path, config, progress, data_dir, data_format, versions)


def read_table(db_path: Path, sql: str) -> pd.DataFrame:
    """Read a query's result from a run's database, read-only."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def read_cohort(db_path: Path) -> pd.DataFrame:
    """The analytic table (one row per episode, with ids) in a stable order."""
    return read_table(
        db_path, "SELECT * FROM analytic_cohort ORDER BY subject_id, encounter_id, index_time"
    )


ESTIMATE_NAMES: tuple[str, ...] = (
    "primary",
    "overlap",
    "unadjusted_difference",
    "naive_before_after",
    "ipw",
    "doubly_robust",
)
"""Every estimate results.json carries, in order; each is a figure or a named reason."""


def fit_estimates(
    cohort: pd.DataFrame, config: MgcaConfig
) -> tuple[list[dict[str, Any]], list[str]]:
    """Primary estimate, the overlap-population estimate, the crude difference, the naive
    before/after contrast, and the primary contrast by inverse-probability weighting and by
    augmented IPW (doubly robust).

    Returns one results.json entry per name of :data:`ESTIMATE_NAMES`, in that order: an
    estimate that cannot be made is an entry with ``estimate: None`` and a ``reason``. The
    notes repeat those reasons as ``"<name>: <reason>"``.
    """
    from mgca.analysis.estimation.estimators import aipw_ate, ipw_ate, overlap_ate
    from mgca.analysis.estimation.models import (
        InsufficientDataError,
        fit_primary,
        naive_before_after,
        no_estimate_entry,
        unadjusted_difference,
    )

    threshold = config.privacy.small_cell_threshold
    estimation = config.estimation
    fits = {
        "primary": lambda: fit_primary(cohort, config.study, estimation=estimation),
        "overlap": lambda: overlap_ate(
            cohort, config.study, estimation=estimation, threshold=threshold
        ),
        "unadjusted_difference": lambda: unadjusted_difference(cohort, config.study),
        "naive_before_after": lambda: naive_before_after(cohort, config.study),
        "ipw": lambda: ipw_ate(cohort, config.study, threshold=threshold),
        "doubly_robust": lambda: aipw_ate(
            cohort, config.study, threshold=threshold, estimation=estimation
        ),
    }
    estimates: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in ESTIMATE_NAMES:
        try:
            entry = fits[name]()
            if entry["estimate"] is None or entry["se"] is None:
                raise InsufficientDataError(
                    f"no {name} estimate: its value or standard error is not a finite number "
                    "(weights or the outcome model degenerate on these episodes)"
                )
            estimates.append(entry)
        except (InsufficientDataError, np.linalg.LinAlgError) as exc:
            reason = (
                str(exc)
                if isinstance(exc, InsufficientDataError)
                else (f"no {name} estimate: the model's equations could not be solved ({exc})")
            )
            entry = no_estimate_entry(name, ESTIMAND_WORDS[name], reason, config.study)
            estimates.append(entry)
            notes.append(f"{name}: {exc}")
    return estimates, notes


ESTIMAND_WORDS: dict[str, str] = {
    "primary": "average treatment effect in the analysed cohort (g-computation)",
    "overlap": "average treatment effect in the overlap population (overlap weights)",
    "unadjusted_difference": "crude difference in mean outcome, not adjusted",
    "naive_before_after": "mean change from baseline among exposed episodes (not causal)",
    "ipw": "average treatment effect by inverse-probability weighting",
    "doubly_robust": "average treatment effect by augmented IPW (doubly robust)",
}
"""Short estimand words for an entry whose estimate could not be made."""


def evaluate_gate(
    cohort: pd.DataFrame, estimates: list[dict[str, Any]], config: MgcaConfig
) -> dict[str, Any]:
    """results.json ``gate``: which estimate answers, each diagnostic check, the verdict
    (:func:`mgca.analysis.estimation.gate.evaluate_gate`)."""
    from mgca.analysis.estimation.gate import evaluate_gate as gate

    return gate(cohort, estimates, config.gate, config.privacy.small_cell_threshold)


def synthetic_truths(
    data_dir: Path | str, cohort: pd.DataFrame, config: MgcaConfig
) -> dict[str, Any] | None:
    """On synthetic data, the simulator's true effect for the populations mgca may answer for.

    The episodes are those every adjusted estimate uses (complete cases of the adjustment
    set; an episode indexed on ionized Ca with no corrected Ca beside it has no baseline
    corrected Ca), or the whole analytic cohort when no adjusted model can be fitted. Returns
    ``{"true_effect": mean per-episode effect (the primary's cohort), "true_effect_overlap":
    the same effects weighted by the overlap weights of the propensity model the overlap
    estimate uses (None when it cannot be fitted), "n", "description"}``, mmol/L; ``None``
    for an empty cohort.
    """
    from mgca.analysis.estimation.estimators import overlap_weights
    from mgca.analysis.estimation.models import InsufficientDataError, prepare_adjusted
    from mgca.analysis.estimation.propensity import fit_propensity
    from mgca.synthetic import true_effect

    if cohort.empty:
        return None
    rows, weights = cohort, None
    try:
        rows = prepare_adjusted(cohort, "the synthetic truth").data
        ps = fit_propensity(cohort)
        weights = overlap_weights(ps.treat, ps.score)
    except InsufficientDataError:
        pass
    truth = true_effect(
        Path(data_dir),
        rows[["encounter_id", "index_time"]],
        grace_hours=config.study.grace_hours,
        horizon_hours=config.study.horizon_hours,
    )
    overlap = None
    if weights is not None:
        overlap = float(np.sum(weights * truth.per_pair) / np.sum(weights))
    return {
        "true_effect": float(truth.mean),
        "true_effect_overlap": overlap,
        "n": int(truth.n),
        "description": truth.description,
    }


SECONDARY_TABLES: tuple[str, ...] = (
    "index_calcium_correction",
    "index_pth_response",
    "calcium_trajectory_points",
    "index_kidney_function",
)
"""Per-episode tables derived in SQL for the secondary and sensitivity analyses (ids!)."""


def read_secondary_tables(db_path: Path) -> dict[str, pd.DataFrame]:
    """The :data:`SECONDARY_TABLES` of a run's database, each in a stable order."""
    return {
        name: read_table(db_path, f"SELECT * FROM {name} ORDER BY ALL") for name in SECONDARY_TABLES
    }

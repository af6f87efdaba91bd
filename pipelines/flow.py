"""The mgca study as a Prefect 3 flow: source → DuckDB → SQL derivation → models → report.

Tasks pass file paths, never live DuckDB connections (a connection is unhashable and would
break Prefect's input-hash cache keys); each task opens the database it needs. Task results
are never persisted (they can hold patient-level frames); tasks return paths and aggregates.

Everything a run writes goes to a staging folder first and is published into the run folder
in one step at the end (see ``mgca.outputs``): a crash leaves the previous outputs intact.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mgca.prefect_env import apply_prefect_defaults

apply_prefect_defaults()

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402
from prefect.logging import get_run_logger  # noqa: E402

from mgca import outputs, study  # noqa: E402
from mgca.analysis.disclosure import suppress_estimate, suppress_record  # noqa: E402
from mgca.analysis.models import COUNT_KEYS  # noqa: E402
from mgca.analysis.no_episodes import no_eligible_episodes_reason  # noqa: E402
from mgca.analysis.target_trial import target_trial_spec  # noqa: E402
from mgca.config import MgcaConfig, load_config  # noqa: E402
from mgca.sources import CANONICAL_FILES, SourceError, resolve_source  # noqa: E402

PRIVATE_DB = "private/mgca.duckdb"


@dataclass(frozen=True)
class RunSummary:
    """What `mgca run` prints when it finishes (aggregates only)."""

    out_dir: Path
    n_analysed: int | None
    primary: dict[str, Any] | None
    duration_s: float


def _log(message: str) -> None:
    try:
        get_run_logger().info(message)
    except Exception:  # outside a run context (direct calls from notebooks and tests)
        print(message)


def _retry_on_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only transient I/O failures; bad input fails at once with its message."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": _retry_on_io_error,
}


@task(name="prepare-source", cache_policy=NONE, **IO_RETRIES)
def prepare_source(
    source: str, path: str | None, staging: str, config: MgcaConfig
) -> dict[str, Any]:
    """Locate (or, for synthetic data with no --path, generate) the canonical input tables."""
    resolved = resolve_source(source, Path(path) if path else None, Path(staging), config, _log)
    return {
        "data_dir": str(resolved.data_dir),
        "fingerprint": outputs.fingerprint_files(resolved.files),
        "source": resolved.kind,
        "manifest": resolved.manifest,
    }


@task(name="load-duckdb", cache_policy=NONE, **IO_RETRIES)
def load_database(data_dir: str, db_path: str, config: MgcaConfig) -> dict[str, int]:
    """Load the canonical Parquet tables, reference tables and study config into DuckDB."""
    started = time.perf_counter()
    counts = study.load_database(Path(data_dir), Path(db_path), config, _log)
    _log(f"load took {time.perf_counter() - started:.1f} s")
    return counts


@task(name="derive-cohort", cache_policy=NONE)
def derive_cohort(db_path: str, staging: str, config: MgcaConfig) -> dict[str, Any]:
    """Run every SQL step; export the analytic table and the aggregate tables the report needs."""
    started = time.perf_counter()
    n_analysed = study.derive_tables(Path(db_path), config, _log)
    cohort_path = Path(staging) / "cohort.parquet"
    tmp = cohort_path.with_name(".cohort.parquet.tmp")
    pq.write_table(
        pa.Table.from_pandas(study.read_cohort(Path(db_path)), preserve_index=False), tmp
    )
    tmp.replace(cohort_path)
    db = Path(db_path)
    _log(f"derived {n_analysed:,} analysed episodes in {time.perf_counter() - started:.1f} s")
    return {
        "cohort_path": str(cohort_path),
        "attrition": study.read_table(db, "SELECT * FROM attrition ORDER BY step_order"),
        "data_quality": study.read_table(
            db, "SELECT * FROM data_quality ORDER BY table_name, check_name, analyte"
        ),
        "trajectory": study.read_table(
            db, "SELECT * FROM calcium_trajectory_summary ORDER BY exposed, hours_bin_start"
        ),
        "analyte_trajectory": study.read_table(
            db,
            "SELECT * FROM analyte_trajectory_summary ORDER BY measure, exposed, hours_bin_start",
        ),
        "trajectory_sample": study.read_table(
            db,
            "SELECT * FROM trajectory_sample "
            "ORDER BY exposed, sample_number, measure, hours_from_index, value",
        ),
        "source_rows": study.read_table(
            db,
            "SELECT * FROM source_row_counts "
            "ORDER BY source_table, canonical_table NULLS LAST, status, reason NULLS FIRST",
        ),
        "n_analysed": n_analysed,
    }


@task(name="fit-models", cache_policy=NONE)
def fit_models(cohort_path: str, db_path: str, config: MgcaConfig) -> dict[str, Any]:
    """Primary estimate, the contrasts that show why adjustment matters, the weighting
    diagnostics (with their figures) and the secondary analyses."""
    from mgca.analysis.analyses import diagnostics_block, secondary_block

    cohort = pd.read_parquet(cohort_path)
    estimates, notes = study.fit_estimates(cohort, config)
    diagnostics, figures = diagnostics_block(cohort, config.privacy.small_cell_threshold)
    for warning in diagnostics["warnings"]:
        _log(f"diagnostics warning: {warning}")
    secondary = secondary_block(cohort, study.read_secondary_tables(Path(db_path)), config)
    primary = next((e for e in estimates if e["name"] == "primary"), None)
    if primary:
        _log(
            f"primary estimate {primary['estimate']:+.3f} mmol/L "
            f"(95% CI {primary['ci_low']:+.3f} to {primary['ci_high']:+.3f}), "
            f"n = {primary['n']:,}"
        )
    for note in notes:
        _log(note)
    return {
        "estimates": estimates,
        "notes": notes,
        "diagnostics": diagnostics,
        "figures": figures,
        "secondary": secondary,
    }


@task(name="sensitivity-analyses", cache_policy=NONE)
def sensitivity_analyses(
    cohort_path: str, db_path: str, primary: dict[str, Any] | None, config: MgcaConfig
) -> dict[str, Any]:
    """Ionized outcome, no advanced kidney disease, alternative windows (re-derived in SQL on
    a copy of the database, inside the staging folder's private/), and the E-value."""
    from mgca.analysis.analyses import sensitivity_block

    started = time.perf_counter()
    db = Path(db_path)
    block = sensitivity_block(
        pd.read_parquet(cohort_path),
        kidney=study.read_table(db, "SELECT * FROM index_kidney_function ORDER BY ALL"),
        primary=primary,
        db_path=db,
        config=config,
        work_dir=db.parent,
    )
    _log(f"sensitivity analyses took {time.perf_counter() - started:.1f} s")
    return block


@task(name="synthetic-truth", cache_policy=NONE)
def synthetic_truth(data_dir: str, cohort_path: str, config: MgcaConfig) -> dict[str, Any] | None:
    """On synthetic data, the simulator's known true effect for this run's own cohort."""
    from mgca.synthetic import true_effect

    cohort = pd.read_parquet(cohort_path, columns=["encounter_id", "index_time"])
    if cohort.empty:
        return None
    truth = true_effect(
        Path(data_dir),
        cohort,
        grace_hours=config.study.grace_hours,
        horizon_hours=config.study.horizon_hours,
    )
    return {
        "estimand": "sample average treatment effect in this run's analytic cohort",
        "true_effect": float(truth.mean),
        "unit": "mmol/L",
        "n": int(truth.n),
        "description": truth.description,
    }


@task(name="render-report", cache_policy=NONE)
def render_report_task(
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
    from mgca.analysis.figures import (
        analyte_trajectory_figure,
        calcium_trajectory_figure,
        trajectory_sample_figure,
    )
    from mgca.analysis.quality_section import episode_missingness
    from mgca.analysis.report import ReportContext, render_report
    from mgca.analysis.table_one import table_one

    threshold = config.privacy.small_cell_threshold
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
    return _records(table, [], threshold)


def _records(frame: pd.DataFrame, count_columns: list[str], threshold: int) -> list[dict[str, Any]]:
    """DataFrame → JSON records with small counts suppressed (see ARCHITECTURE.md)."""
    records = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
        records.append(suppress_record(row, count_columns, threshold))
    return records


def _attrition_records(attrition: pd.DataFrame, threshold: int) -> list[dict[str, Any]]:
    frame = attrition.rename(columns={"n_remaining": "n"})
    keep = [c for c in ("step", "n", "n_excluded", "exclusion_reason") if c in frame.columns]
    return _records(frame[keep], ["n", "n_excluded"], threshold)


@flow(name="mgca-study", validate_parameters=False)
def study_flow(
    source: str = "synthetic",
    path: str | None = None,
    out: str | None = None,
    config: MgcaConfig | None = None,
) -> RunSummary:
    """The whole study on one source, published atomically into ``out``."""
    config = config or load_config()
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    out_dir = Path(out) if out else outputs.default_run_dir()
    outputs.recover_interrupted(out_dir)
    outputs.clean_stale_staging(out_dir)
    staging = outputs.staging_dir_for(out_dir)
    try:
        prepared = prepare_source(source, path, str(staging), config)
        db_path = str(staging / PRIVATE_DB)
        load_database(prepared["data_dir"], db_path, config)
        derived = derive_cohort(db_path, str(staging), config)
        fitted = fit_models(derived["cohort_path"], db_path, config)
        primary_fit = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
        sensitivity = sensitivity_analyses(derived["cohort_path"], db_path, primary_fit, config)
        truth = None
        if prepared["source"] == "synthetic":
            truth = synthetic_truth(prepared["data_dir"], derived["cohort_path"], config)
        threshold = config.privacy.small_cell_threshold
        results: dict[str, Any] = {
            "estimates": [
                suppress_estimate(e, COUNT_KEYS, ("n_exposed", "n_unexposed"), threshold)
                for e in fitted["estimates"]
            ],
            "estimate_notes": fitted["notes"],
            "target_trial": target_trial_spec(config),
            "secondary": fitted["secondary"],
            "diagnostics": fitted["diagnostics"],
            "sensitivity": sensitivity,
            "attrition": _attrition_records(derived["attrition"], threshold),
            "data_quality": _records(derived["data_quality"], ["n_rows", "n_flagged"], threshold),
            "source_rows": _records(derived["source_rows"], ["n_rows"], threshold),
            "synthetic_truth": truth,
            "config": config.model_dump(mode="json"),
            "provenance": {},
        }
        no_episodes = no_eligible_episodes_reason(
            results["attrition"], results["data_quality"], results["source_rows"], threshold
        )
        if no_episodes:
            results["no_estimate_reason"] = no_episodes
            _log(no_episodes)
        config_text = config.to_yaml()
        outputs.write_text_atomic(staging / "config.yaml", config_text)
        results["provenance"] = outputs.provenance(
            config_sha256=config.sha256(),
            input_fingerprint=prepared["fingerprint"],
            started_at=started_at,
            duration_s=time.perf_counter() - t0,
            source=prepared["source"],
            extra={"synthetic_manifest": prepared["manifest"]} if prepared["manifest"] else None,
        )
        results["table_one"] = render_report_task(
            str(staging),
            results,
            derived["cohort_path"],
            derived["trajectory"],
            config,
            figures=fitted["figures"],
            analyte_trajectory=derived["analyte_trajectory"],
            trajectory_sample=derived["trajectory_sample"],
        )
        results["provenance"]["duration_s"] = round(time.perf_counter() - t0, 2)
        outputs.write_text_atomic(staging / "results.json", outputs.to_json(results))
        published = outputs.publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    primary = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
    _log(f"published run folder {published}")
    return RunSummary(
        out_dir=published,
        n_analysed=derived["n_analysed"],
        primary=primary,
        duration_s=time.perf_counter() - t0,
    )


__all__ = ["CANONICAL_FILES", "RunSummary", "SourceError", "study_flow"]

"""The mgca study as a Prefect 3 flow: source → DuckDB → SQL derivation → models → report.

Tasks pass file paths, never live DuckDB connections (a connection is unhashable and would
break Prefect's input-hash cache keys); each task opens the database it needs. Task results
are never persisted (they can hold patient-level frames); tasks return paths and aggregates.

Everything a run writes goes to a staging folder first and is published into the run folder
in one step at the end (see ``mgca.run.outputs``): a crash leaves the previous outputs intact.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mgca.ops.prefect_env import apply_prefect_defaults

apply_prefect_defaults()

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NONE  # noqa: E402
from prefect.logging import get_run_logger  # noqa: E402

from mgca.analysis.estimation.models import COUNT_KEYS  # noqa: E402
from mgca.analysis.estimation.target_trial import target_trial_spec  # noqa: E402
from mgca.analysis.privacy import (  # noqa: E402
    SUPPRESSED_KEY,
    is_small,
    suppress_attrition,
    suppress_estimate,
    suppress_record,
    suppressed_text,
)
from mgca.analysis.report.no_episodes import no_eligible_episodes_reason  # noqa: E402
from mgca.config import MgcaConfig, load_config  # noqa: E402
from mgca.ops import history  # noqa: E402
from mgca.run import cache, outputs, study  # noqa: E402
from mgca.run.locking import acquire_run_lock  # noqa: E402
from mgca.sources.resolve import CANONICAL_FILES, SourceError, resolve_source  # noqa: E402

PRIVATE_DB = "private/mgca.duckdb"


@dataclass(frozen=True)
class RunSummary:
    """What `mgca run` prints when it finishes (aggregates only: ``primary`` is the
    results.json entry, small counts and the statistics over them suppressed)."""

    out_dir: Path
    n_analysed: int | None
    primary: dict[str, Any] | None
    duration_s: float
    gate: dict[str, Any] | None = None


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
    """Locate (or, for synthetic data with no --path, generate) the canonical input tables.

    ``path`` is passed on as typed: with the Spark engine it may be a URL the cluster reads.
    """
    resolved = resolve_source(source, path, Path(staging), config, _log)
    return {
        "data_dir": str(resolved.data_dir),
        "data_format": resolved.data_format,
        "delta_versions": resolved.delta_versions,
        "fingerprint": resolved.fingerprint or outputs.fingerprint_files(resolved.files),
        "source": resolved.kind,
        "manifest": resolved.manifest,
    }


def _stage_key(stage: str) -> Any:
    """A Prefect ``cache_key_fn``: the run's content address (``mgca.run.cache``) per stage."""

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        return f"mgca-{stage}-{parameters['key']}"

    return key_fn


#: Cached tasks persist their return value (a path into the private cache folder only, never
#: patient-level rows; JSON, readable) so Prefect can answer a repeat with a ``Cached`` state.
CACHED: dict[str, Any] = {"persist_result": True, "result_serializer": "json"}

#: Aggregate (and de-identified sample) tables the report needs, stored with each cache entry.
DERIVED_TABLES = {
    "attrition": "SELECT * FROM attrition ORDER BY step_order",
    "calcium_measures": "SELECT * FROM episode_calcium_measures ORDER BY role, CASE "
    "calcium_measure WHEN 'ionized' THEN 1 WHEN 'corrected_same_day_albumin' THEN 2 "
    "WHEN 'corrected_lookback_albumin' THEN 3 ELSE 4 END",
    "data_quality": "SELECT * FROM data_quality ORDER BY table_name, check_name, analyte",
    "trajectory": "SELECT * FROM calcium_trajectory_summary ORDER BY exposed, hours_bin_start",
    "analyte_trajectory": "SELECT * FROM analyte_trajectory_summary "
    "ORDER BY measure, exposed, hours_bin_start",
    "trajectory_sample": "SELECT * FROM trajectory_sample "
    "ORDER BY exposed, sample_number, measure, hours_from_index, value",
    "source_rows": "SELECT * FROM source_row_counts "
    "ORDER BY source_table, canonical_table NULLS LAST, status, reason NULLS FIRST",
}


@task(name="load-duckdb", cache_key_fn=_stage_key("load"), **CACHED, **IO_RETRIES)
def load_database(
    data_dir: str,
    db_path: str,
    entry: str,
    key: str,
    config: MgcaConfig,
    data_format: str = "parquet",
    delta_versions: dict[str, int] | None = None,
) -> str:
    """Load the canonical Parquet tables, reference tables and study config into DuckDB
    (with the Spark engine: check the canonical tables on Spark, see ``study.load_database``).

    Skipped (``Cached``) when the cache entry ``key`` already holds the derived database.
    """
    if cache.is_complete(Path(entry), "derive"):
        _log("load skipped: derived tables for this input and config are in the cache")
        return entry
    started = time.perf_counter()
    study.load_database(data_dir, Path(db_path), config, _log, data_format, delta_versions)
    _log(f"load took {time.perf_counter() - started:.1f} s")
    return entry


@task(name="derive-cohort", cache_key_fn=_stage_key("derive"), **CACHED)
def derive_cohort(
    db_path: str,
    entry: str,
    key: str,
    config: MgcaConfig,
    data_dir: str | None = None,
    data_format: str = "parquet",
    delta_versions: dict[str, int] | None = None,
) -> str:
    """Run every SQL step (on DuckDB, or on Spark over ``data_dir`` with the Spark engine);
    store the database, the analytic table and the aggregate tables the report needs in the
    cache entry ``key``. Returns the entry folder."""
    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "derive"):
        _log("derivation skipped: reusing the cached derived tables")
        return entry
    started = time.perf_counter()
    db = Path(db_path)
    n_analysed = study.derive_tables(db, config, _log, data_dir, data_format, delta_versions)
    work = cache.stage_workdir(entry_dir)
    pq.write_table(
        pa.Table.from_pandas(study.read_cohort(db), preserve_index=False),
        work / "cohort.parquet",
    )
    for name, sql in DERIVED_TABLES.items():
        study.read_table(db, sql).to_parquet(work / f"{name}.parquet", index=False)
    cache.write_json(work / "derived.json", {"n_analysed": n_analysed})
    shutil.copy2(db, work / "mgca.duckdb")
    cache.commit_stage(work, entry_dir, "derive")
    _log(f"derived {n_analysed:,} analysed episodes in {time.perf_counter() - started:.1f} s")
    return entry


@task(name="fit-models", cache_key_fn=_stage_key("fit"), **CACHED)
def fit_models(db_path: str, entry: str, key: str, config: MgcaConfig) -> str:
    """Primary estimate, the contrasts that show why adjustment matters, the weighting
    diagnostics (with their figures) and the secondary analyses.

    Stores ``fitted.json`` in the cache entry ``key``; returns the entry folder.
    """
    from mgca.analysis.estimation.analyses import diagnostics_block, secondary_block

    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "fit"):
        _log("model fits skipped: reusing the cached estimates")
        return entry
    cohort = pd.read_parquet(entry_dir / "cohort.parquet")
    estimates, notes = study.fit_estimates(cohort, config)
    gate = study.evaluate_gate(cohort, estimates, config)
    diagnostics, figures = diagnostics_block(cohort, config.privacy.small_cell_threshold)
    for warning in diagnostics["warnings"]:
        _log(f"diagnostics warning: {warning}")
    secondary = secondary_block(cohort, study.read_secondary_tables(Path(db_path)), config)
    answer = suppress_estimate(
        next(e for e in estimates if e["name"] == gate["answer"]),
        COUNT_KEYS,
        ("n_exposed", "n_unexposed"),
        config.privacy.small_cell_threshold,
    )  # logs carry aggregates only: no statistic over a small arm
    if answer["estimate"] is not None:
        _log(
            f"{answer['name']} estimate {answer['estimate']:+.3f} mmol/L "
            f"(95% CI {answer['ci_low']:+.3f} to {answer['ci_high']:+.3f}), "
            f"n = {answer['n']:,}"
        )
    if gate["passed"]:
        _log(f"diagnostics gate passed: the report states the {gate['answer']} estimate")
    else:
        _log("diagnostics gate failed, the report states no answer: " + "; ".join(gate["failed"]))
    for note in notes:
        _log(note)
    work = cache.stage_workdir(entry_dir)
    cache.write_json(
        work / "fitted.json",
        {
            "estimates": estimates,
            "notes": notes,
            "gate": gate,
            "diagnostics": diagnostics,
            "figures": figures,
            "secondary": secondary,
        },
    )
    cache.commit_stage(work, entry_dir, "fit")
    return entry


def _read_derived(entry: Path) -> dict[str, Any]:
    """The aggregate tables and counts a derive stage stored in its cache entry."""
    derived: dict[str, Any] = {
        name: pd.read_parquet(entry / f"{name}.parquet") for name in DERIVED_TABLES
    }
    derived["n_analysed"] = int(cache.read_json(entry / "derived.json")["n_analysed"])
    return derived


def _use_cached(entry: Path, staging: Path, db_path: Path) -> None:
    """Copy the cached analytic table (and, on a cache hit, the database) into the staging
    folder: the run folder must be complete and independent of the cache. On a miss the
    staging database is the one just derived, identical to the cached copy."""
    if not (staging / "cohort.parquet").exists():
        shutil.copy2(entry / "cohort.parquet", staging / "cohort.parquet")
    if not db_path.exists():
        shutil.copy2(entry / "mgca.duckdb", db_path)


@task(name="sensitivity-analyses", cache_key_fn=_stage_key("sensitivity"), **CACHED)
def sensitivity_analyses(
    cohort_path: str,
    db_path: str,
    primary: dict[str, Any] | None,
    entry: str,
    key: str,
    config: MgcaConfig,
) -> str:
    """Ionized outcome, no advanced kidney disease, alternative windows (re-derived in SQL,
    only the steps the changed window reaches, in a scratch database inside the staging
    folder's private/ that reads the run's database read-only), and the E-value.

    Stores ``sensitivity.json`` in the cache entry ``key``; returns the entry folder.
    """
    from mgca.analysis.estimation.analyses import sensitivity_block

    entry_dir = Path(entry)
    if cache.is_complete(entry_dir, "sensitivity"):
        _log("sensitivity analyses skipped: reusing the cached results")
        return entry
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
    work = cache.stage_workdir(entry_dir)
    cache.write_json(work / "sensitivity.json", block)
    cache.commit_stage(work, entry_dir, "sensitivity")
    _log(f"sensitivity analyses took {time.perf_counter() - started:.1f} s")
    return entry


@task(name="synthetic-truth", cache_policy=NONE)
def synthetic_truth(data_dir: str, cohort_path: str, config: MgcaConfig) -> dict[str, Any] | None:
    """On synthetic data, the simulator's known true effect for this run's own cohort
    (:func:`mgca.run.study.synthetic_truths`): for the episodes the adjusted estimates used, and
    overlap-weighted for the overlap population."""
    truths = study.synthetic_truths(Path(data_dir), pd.read_parquet(cohort_path), config)
    if truths is None:
        return None
    return {
        "estimand": "sample average treatment effect in this run's analytic cohort "
        "(the episodes the primary estimate used); true_effect_overlap: the same, "
        "overlap-weighted (the overlap population)",
        "unit": "mmol/L",
        **truths,
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
    from mgca.analysis.report.figures import (
        analyte_trajectory_figure,
        calcium_trajectory_figure,
        trajectory_sample_figure,
    )
    from mgca.analysis.report.quality_section import episode_missingness
    from mgca.analysis.report.render import ReportContext, render_report
    from mgca.analysis.report.table_one import table_one

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
    raw = _records(frame[keep], [], threshold)
    return suppress_attrition(raw, threshold)  # primary + complementary suppression


CALCIUM_MEASURE_COUNTS = ("n_eligible_index_events", "n_analysed")


def _calcium_measure_records(measures: pd.DataFrame, threshold: int) -> list[dict[str, Any]]:
    """results.json ``calcium_measures``: which calcium measure defined the index and the
    outcome (table episode_calcium_measures), small counts hidden as in the attrition.

    Within one role each count column adds up to a total published elsewhere (eligible index
    events and analysed episodes are attrition counts), so a single hidden cell could be
    recovered by subtraction: while a role's column has exactly one hidden cell, its smallest
    other nonzero cell is hidden too (complementary suppression).
    """
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in measures.to_dict(orient="records")
    ]
    hidden = {
        (i, key)
        for i, r in enumerate(records)
        for key in CALCIUM_MEASURE_COUNTS
        if r.get(key) is not None and is_small(int(r[key]), threshold)
    }
    identities = [
        [(i, key) for i, r in enumerate(records) if r["role"] == role]
        for role in dict.fromkeys(r["role"] for r in records)
        for key in CALCIUM_MEASURE_COUNTS
    ]
    changed = True
    while changed:
        changed = False
        for cells in identities:
            if sum(cell in hidden for cell in cells) != 1:
                continue
            shown = sorted(
                (c for c in cells if c not in hidden),
                key=lambda c: (int(records[c[0]][c[1]] or 0) == 0, records[c[0]][c[1]] or 0, c),
            )
            if shown:
                hidden.add(shown[0])
                changed = True
    out = []
    for i, record in enumerate(records):
        row = dict(record)
        for key in CALCIUM_MEASURE_COUNTS:
            row[key] = None if (i, key) in hidden else int(row[key])
        if any((i, key) in hidden for key in CALCIUM_MEASURE_COUNTS):
            row[SUPPRESSED_KEY] = suppressed_text(threshold)
        out.append(row)
    return out


@flow(name="mgca-study", validate_parameters=False)
def study_flow(
    source: str = "synthetic",
    path: str | None = None,
    out: str | None = None,
    config: MgcaConfig | None = None,
    config_path: str | None = None,
    reports_root: str | None = None,
    use_cache: bool = True,
) -> RunSummary:
    """The whole study on one source, published atomically into ``out``.

    ``out`` defaults to a new ``run-<UTC time>-<id>`` folder under ``reports_root`` (default
    ``reports``). ``config`` wins over ``config_path`` (a YAML file; scheduled runs pass a
    path). With ``use_cache`` (default), an input, analysis config and code seen before reuse
    the cached derivation, fits and sensitivity analyses (``mgca.run.cache``); ``False`` rebuilds.
    """
    config = config or load_config(Path(config_path) if config_path else None)
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    if out:
        out_dir = Path(out).resolve()
    else:
        out_dir = outputs.default_run_dir(Path(reports_root or "reports")).resolve()
    root = out_dir.parent
    run_lock = acquire_run_lock(out_dir)  # one writer per run folder (mgca.run.locking)
    outputs.recover_interrupted(out_dir)
    outputs.clean_stale_staging(out_dir)
    staging = outputs.staging_dir_for(out_dir)
    fresh: Path | None = None
    try:
        prepared = prepare_source(source, path, str(staging), config)
        key = cache.cache_key(prepared["fingerprint"], config)
        shared_entry = cache.entry_dir(root, key)
        # --no-cache builds in a private entry and promotes it when complete: deleting the
        # shared entry here would pull it from under a concurrent run of the same key
        if not use_cache:
            fresh = cache.fresh_entry(root, key)
        entry = fresh or shared_entry
        stages = ("derive", "fit", "sensitivity")
        cache_hit = {stage: cache.is_complete(entry, stage) for stage in stages}
        db_path = staging / PRIVATE_DB
        source_format = (prepared["data_format"], prepared["delta_versions"])
        load_database.with_options(refresh_cache=not cache_hit["derive"])(
            prepared["data_dir"], str(db_path), str(entry), key, config, *source_format
        )
        derive_cohort.with_options(refresh_cache=not cache_hit["derive"])(
            str(db_path), str(entry), key, config, prepared["data_dir"], *source_format
        )
        _use_cached(entry, staging, db_path)
        derived = _read_derived(entry)
        cohort_path = str(staging / "cohort.parquet")
        fit_models.with_options(refresh_cache=not cache_hit["fit"])(
            str(db_path), str(entry), key, config
        )
        fitted = cache.read_json(entry / "fitted.json")
        primary_fit = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
        sensitivity_analyses.with_options(refresh_cache=not cache_hit["sensitivity"])(
            cohort_path, str(db_path), primary_fit, str(entry), key, config
        )
        sensitivity = cache.read_json(entry / "sensitivity.json")
        if fresh is not None:
            cache.promote(fresh, shared_entry)
            fresh, entry = None, shared_entry
        cache.touch(entry)
        truth = None
        if prepared["source"] == "synthetic":
            truth = synthetic_truth(prepared["data_dir"], cohort_path, config)
        threshold = config.privacy.small_cell_threshold
        results: dict[str, Any] = {
            "estimates": [
                suppress_estimate(e, COUNT_KEYS, ("n_exposed", "n_unexposed"), threshold)
                for e in fitted["estimates"]
            ],
            "estimate_notes": fitted["notes"],
            "gate": fitted["gate"],
            "target_trial": target_trial_spec(config),
            "secondary": fitted["secondary"],
            "diagnostics": fitted["diagnostics"],
            "sensitivity": sensitivity,
            "attrition": _attrition_records(derived["attrition"], threshold),
            "calcium_measures": _calcium_measure_records(derived["calcium_measures"], threshold),
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
            extra={
                "cohort_sha256": outputs.file_sha256(Path(cohort_path)),
                **({"synthetic_manifest": prepared["manifest"]} if prepared["manifest"] else {}),
                # the Delta table versions read (the run pins them at its start)
                **(
                    {"delta_versions": dict(sorted(prepared["delta_versions"].items()))}
                    if prepared["delta_versions"]
                    else {}
                ),
            },
        )
        results["provenance"]["cache"] = {
            "key": key,
            "derive_reused": cache_hit["derive"],
            "fit_reused": cache_hit["fit"],
            "sensitivity_reused": cache_hit["sensitivity"],
        }
        results["comparison_with_previous"] = history.compare_with_previous(root, out_dir, results)
        results["table_one"] = render_report_task(
            str(staging),
            results,
            cohort_path,
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
        if fresh is not None:  # a private --no-cache entry that was never promoted
            shutil.rmtree(fresh, ignore_errors=True)
        raise
    finally:
        run_lock.release()
    record_artifacts(results, published.name, threshold)
    update_run_history(str(root))
    cache.prune(root)
    _log(f"published run folder {published}")
    return RunSummary(
        out_dir=published,
        n_analysed=derived["n_analysed"],
        primary=next(e for e in results["estimates"] if e["name"] == "primary"),
        duration_s=time.perf_counter() - t0,
        gate=results.get("gate"),
    )


@task(name="record-artifacts", cache_policy=NONE)
def record_artifacts(results: dict[str, Any], run_id: str, threshold: int) -> list[str]:
    """Prefect artifacts of this run: a markdown summary and the estimates and attrition
    tables (aggregates only, small counts suppressed). Returns the artifact keys."""
    from mgca.ops.artifacts import create_run_artifacts

    return create_run_artifacts(results, run_id, threshold)


@task(name="update-run-history", cache_policy=NONE, **IO_RETRIES)
def update_run_history(reports_root: str) -> str:
    """Rewrite ``history.json`` and ``index.html`` of the reports root (atomic, locked)."""
    return str(history.update_index(Path(reports_root)))


__all__ = ["CANONICAL_FILES", "RunSummary", "SourceError", "study_flow"]

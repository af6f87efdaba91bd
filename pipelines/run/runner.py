"""``run_study``: the one place a run is computed and published.

    from mgca.config import load_config
    from mgca.run.runner import run_study
    result = run_study(load_config(), "synthetic", "reports/my-run")
    result.results["gate"]["passed"]

One run: lock the run folder → prepare the source → load → derive (SQL) → fit → sensitivity
analyses → results.json (:func:`mgca.run.results.assemble_results`, suppression included) →
report → publish the staging folder into the run folder in one step → run history and cache
pruning. The Prefect flow (:mod:`mgca.run.flow`) calls this same function with its stages
wrapped as tasks (:class:`Stages`); so do the benchmark and the notebooks, unwrapped.

Everything a run writes goes to a staging folder first and is published into the run folder
in one step at the end (see :mod:`mgca.run.outputs`): a crash leaves the previous outputs
intact, and a rerun succeeds.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mgca.analysis.privacy import count_rule
from mgca.config import MgcaConfig
from mgca.ops import history
from mgca.run import cache, outputs, stages
from mgca.run.locking import acquire_run_lock
from mgca.run.progress import Progress, log
from mgca.run.results import assemble_results

CACHED_STAGES = ("derive", "fit", "sensitivity")


@dataclass(frozen=True)
class RunResult:
    """What a run produced (aggregates only: ``results`` is results.json as written, small
    counts and the statistics over them suppressed)."""

    out_dir: Path
    results: dict[str, Any]
    n_analysed: int | None
    duration_s: float

    @property
    def primary(self) -> dict[str, Any] | None:
        """The results.json ``primary`` entry."""
        return next((e for e in self.results["estimates"] if e["name"] == "primary"), None)

    @property
    def gate(self) -> dict[str, Any] | None:
        """The results.json ``gate``."""
        return self.results.get("gate")


@dataclass(frozen=True)
class Stages:
    """The stage functions :func:`run_study` calls (:mod:`mgca.run.stages`). The Prefect flow
    passes task-wrapped versions with the same signatures; ``cached`` receives the cache stage
    a call belongs to (``"derive"``, ``"fit"``, ``"sensitivity"``) and whether the entry
    already holds it, so a wrapper can tell Prefect to refresh its cached state."""

    prepare: Callable[..., stages.PreparedSource] = stages.prepare_source
    load: Callable[..., str] = stages.load_stage
    derive: Callable[..., str] = stages.derive_stage
    fit: Callable[..., str] = stages.fit_stage
    sensitivity: Callable[..., str] = stages.sensitivity_stage
    truth: Callable[..., dict[str, Any] | None] = stages.truth_stage
    render: Callable[..., list[dict[str, Any]]] = stages.render_stage
    record_artifacts: Callable[[dict[str, Any], str, int], Any] | None = None
    update_history: Callable[[str], Any] = stages.update_history
    cached: Callable[[Callable[..., Any], bool], Callable[..., Any]] = field(
        default=lambda stage_fn, is_cached: stage_fn
    )


def run_study(
    config: MgcaConfig,
    source: str = "synthetic",
    out: str | Path | None = None,
    *,
    path: str | None = None,
    reports_root: str | Path | None = None,
    use_cache: bool = True,
    run_stages: Stages | None = None,
    progress: Progress = log,
) -> RunResult:
    """Run the whole study on one source (``--source`` kind, input at ``path``) and publish
    it atomically into ``out``.

    ``out`` defaults to a new ``run-<UTC time>-<id>`` folder under ``reports_root`` (default
    ``reports``). With ``use_cache`` (default), an input, analysis config and code seen before
    reuse the cached derivation, fits and sensitivity analyses (:mod:`mgca.run.cache`);
    ``False`` rebuilds. ``run_stages`` replaces the stage functions (the Prefect flow passes
    its tasks).
    """
    s = run_stages or Stages()
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
        prepared = s.prepare(source, path, str(staging), config)
        key = cache.cache_key(prepared.fingerprint, config)
        shared_entry = cache.entry_dir(root, key)
        # --no-cache builds in a private entry and promotes it when complete: deleting the
        # shared entry here would pull it from under a concurrent run of the same key
        if not use_cache:
            fresh = cache.fresh_entry(root, key)
        entry = fresh or shared_entry
        hit = {stage: cache.is_complete(entry, stage) for stage in CACHED_STAGES}
        db_path = staging / outputs.PRIVATE_DB
        s.cached(s.load, hit["derive"])(prepared.tables, str(db_path), str(entry), key, config)
        s.cached(s.derive, hit["derive"])(prepared.tables, str(db_path), str(entry), key, config)
        stages.use_cached(entry, staging, db_path)
        derived = stages.read_derived(entry)
        cohort_path = str(staging / "cohort.parquet")
        s.cached(s.fit, hit["fit"])(str(db_path), str(entry), key, config)
        fitted = cache.read_json(entry / stages.FITTED_JSON)
        primary_fit = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
        s.cached(s.sensitivity, hit["sensitivity"])(
            cohort_path, str(db_path), primary_fit, str(entry), key, config
        )
        sensitivity = cache.read_json(entry / stages.SENSITIVITY_JSON)
        if fresh is not None:
            cache.promote(fresh, shared_entry)
            fresh, entry = None, shared_entry
        cache.touch(entry)
        truth = None
        if prepared.kind == "synthetic":
            truth = s.truth(prepared.data_dir, cohort_path, config)
        results = assemble_results(
            fitted=fitted,
            sensitivity=sensitivity,
            tables=derived.tables,
            truth=truth,
            config=config,
        )
        if "no_estimate_reason" in results:
            progress(results["no_estimate_reason"])
        outputs.write_text_atomic(staging / "config.yaml", config.to_yaml())
        results["provenance"] = outputs.provenance(
            config_sha256=config.sha256(),
            input_fingerprint=prepared.fingerprint,
            started_at=started_at,
            duration_s=time.perf_counter() - t0,
            source=prepared.kind,
            extra={
                "cohort_sha256": outputs.file_sha256(Path(cohort_path)),
                **({"synthetic_manifest": prepared.manifest} if prepared.manifest else {}),
                # the Delta table versions read (the run pins them at its start)
                **(
                    {"delta_versions": dict(sorted(prepared.tables.delta_versions.items()))}
                    if prepared.tables.delta_versions
                    else {}
                ),
            },
        )
        results["provenance"]["cache"] = {
            "key": key,
            "derive_reused": hit["derive"],
            "fit_reused": hit["fit"],
            "sensitivity_reused": hit["sensitivity"],
        }
        results["comparison_with_previous"] = history.compare_with_previous(root, out_dir, results)
        tables = derived.tables
        results["table_one"] = s.render(
            str(staging),
            results,
            cohort_path,
            tables["trajectory"],
            config,
            figures=fitted["figures"],
            analyte_trajectory=tables["analyte_trajectory"],
            trajectory_sample=tables["trajectory_sample"],
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
    if s.record_artifacts is not None:
        s.record_artifacts(results, published.name, count_rule(config))
    s.update_history(str(root))
    cache.prune(root)
    progress(f"published run folder {published}")
    return RunResult(
        out_dir=published,
        results=results,
        n_analysed=derived.n_analysed,
        duration_s=time.perf_counter() - t0,
    )

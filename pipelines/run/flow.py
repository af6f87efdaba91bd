"""The mgca study as a Prefect 3 flow: :func:`mgca.run.runner.run_study` with each stage a task.

The flow adds what only an orchestrator gives: a task per stage in the Prefect UI, retries of
transient I/O failures, Prefect's own cache states (``Cached``) keyed on the run's content
address (:mod:`mgca.run.cache`), and the run's artifacts. What a run computes is
:func:`~mgca.run.runner.run_study`'s, unchanged.

Task results are never persisted beyond the cached stages' tiny return values (paths into
the private cache folder, JSON), since stage outputs can hold patient-level frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE

from mgca.config import MgcaConfig, load_config
from mgca.ops.artifacts import create_run_artifacts
from mgca.run import stages
from mgca.run.runner import RunResult, Stages, run_study


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


def _stage_key(stage: str) -> Any:
    """A Prefect ``cache_key_fn``: the run's content address (``mgca.run.cache``) per stage."""

    def key_fn(context: Any, parameters: dict[str, Any]) -> str:
        return f"mgca-{stage}-{parameters['key']}"

    return key_fn


#: Cached tasks persist their return value (a path into the private cache folder only, never
#: patient-level rows; JSON, readable) so Prefect can answer a repeat with a ``Cached`` state.
CACHED: dict[str, Any] = {"persist_result": True, "result_serializer": "json"}

prepare_source = task(
    stages.prepare_source, name="prepare-source", cache_policy=NONE, **IO_RETRIES
)
load_database = task(
    stages.load_stage, name="load-duckdb", cache_key_fn=_stage_key("load"), **CACHED, **IO_RETRIES
)
derive_cohort = task(
    stages.derive_stage, name="derive-cohort", cache_key_fn=_stage_key("derive"), **CACHED
)
fit_models = task(stages.fit_stage, name="fit-models", cache_key_fn=_stage_key("fit"), **CACHED)
sensitivity_analyses = task(
    stages.sensitivity_stage,
    name="sensitivity-analyses",
    cache_key_fn=_stage_key("sensitivity"),
    **CACHED,
)
synthetic_truth = task(stages.truth_stage, name="synthetic-truth", cache_policy=NONE)
render_report_task = task(stages.render_stage, name="render-report", cache_policy=NONE)
update_run_history = task(
    stages.update_history, name="update-run-history", cache_policy=NONE, **IO_RETRIES
)


@task(name="record-artifacts", cache_policy=NONE)
def record_artifacts(results: dict[str, Any], run_id: str, threshold: int) -> list[str]:
    """Prefect artifacts of this run: a markdown summary and the estimates and attrition
    tables (aggregates only, small counts suppressed). Returns the artifact keys."""
    return create_run_artifacts(results, run_id, threshold)


def _refresh_unless_cached(stage_task: Any, is_cached: bool) -> Callable[..., Any]:
    """The task, told to recompute (not answer from Prefect's cache) unless the run's cache
    entry already holds its stage."""
    return stage_task.with_options(refresh_cache=not is_cached)


TASKS = Stages(
    prepare=prepare_source,
    load=load_database,
    derive=derive_cohort,
    fit=fit_models,
    sensitivity=sensitivity_analyses,
    truth=synthetic_truth,
    render=render_report_task,
    record_artifacts=record_artifacts,
    update_history=update_run_history,
    cached=_refresh_unless_cached,
)
"""The run's stages as Prefect tasks."""


@flow(name="mgca-study", validate_parameters=False)
def study_flow(
    source: str = "synthetic",
    path: str | None = None,
    out: str | None = None,
    config: MgcaConfig | None = None,
    config_path: str | None = None,
    reports_root: str | None = None,
    use_cache: bool = True,
) -> RunResult:
    """The whole study on one source, published atomically into ``out``
    (:func:`mgca.run.runner.run_study`).

    ``config`` wins over ``config_path`` (a YAML file; scheduled runs pass a path).
    """
    config = config or load_config(Path(config_path) if config_path else None)
    return run_study(
        config,
        source,
        out,
        path=path,
        reports_root=reports_root,
        use_cache=use_cache,
        run_stages=TASKS,
    )


__all__ = ["RunResult", "study_flow"]

"""Operations on real Prefect flow runs (temporary local Prefect server, real DuckDB files):
input-keyed caching, run history, artifacts, the notebook, and `mgca serve`.

One small synthetic dataset (600 stays) is generated once for the module; each flow run on
it takes a few seconds once the Prefect server is up.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mgca.config import MgcaConfig, StudyConfig, SyntheticConfig

pytestmark = pytest.mark.slow

CACHED_TASKS = ("load-duckdb", "derive-cohort", "fit-models", "sensitivity-analyses")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mgca.synthetic import generate

    return generate(tmp_path_factory.mktemp("data") / "synth", n_stays=600, seed=5)


@pytest.fixture(scope="module")
def config() -> MgcaConfig:
    return MgcaConfig(synthetic=SyntheticConfig(stays=600, seed=5))


def _run(data: Path, out: Path, config: MgcaConfig) -> Any:
    from mgca.run.flow import study_flow

    state = study_flow(
        source="synthetic", path=str(data), out=str(out), config=config, return_state=True
    )
    assert state.is_completed(), state
    return state


def _task_states(state: Any) -> dict[str, str]:
    """Task name → state name ("Completed", "Cached", …) of one flow run, from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    async def read() -> dict[str, str]:
        async with get_client() as client:
            tasks = await client.read_task_runs(
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                ),
                limit=100,
            )
            return {t.name.rsplit("-", 1)[0]: t.state.name for t in tasks}

    return asyncio.run(read())


@pytest.fixture(scope="module")
def two_runs(
    prefect_harness: None,
    dataset: Path,
    config: MgcaConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reports")
    first = _run(dataset, root / "run-1", config)
    started = time.perf_counter()
    second = _run(dataset, root / "run-2", config)
    return {
        "root": root,
        "first": first,
        "second": second,
        "second_s": time.perf_counter() - started,
    }


def test_second_run_on_unchanged_input_is_served_from_the_cache(two_runs: dict[str, Any]) -> None:
    first, second = _task_states(two_runs["first"]), _task_states(two_runs["second"])
    for name in CACHED_TASKS:
        assert first[name] == "Completed", first
        assert second[name] == "Cached", second
    assert second["render-report"] == "Completed"  # the run folder is still written afresh
    root = two_runs["root"]
    r1 = json.loads((root / "run-1" / "results.json").read_text())
    r2 = json.loads((root / "run-2" / "results.json").read_text())
    assert r1["estimates"] == r2["estimates"]
    assert r1["provenance"]["cache"]["derive_reused"] is False
    assert r2["provenance"]["cache"] == {
        **r1["provenance"]["cache"],
        "derive_reused": True,
        "fit_reused": True,
        "sensitivity_reused": True,
    }
    # The run folder is complete and independent of the cache.
    cohort = pd.read_parquet(root / "run-2" / "cohort.parquet")
    pd.testing.assert_frame_equal(cohort, pd.read_parquet(root / "run-1" / "cohort.parquet"))
    # the complete-case fit counts the analysed episodes it left out (the IPCW primary's n is
    # over every eligible episode, measured or not)
    primary = next(e for e in r2["estimates"] if e["name"] == "primary_complete_case")
    dropped = primary.get("n_dropped", 0)
    if dropped is None:  # 1 to 10 episodes left out of the model: suppressed in results.json
        assert primary["suppressed"] == "<11"
        assert primary["n"] < len(cohort) < primary["n"] + 11
    else:
        assert len(cohort) == primary["n"] + dropped
    assert (root / "run-2" / "private" / "mgca.duckdb").stat().st_size > 0
    # Prefect's result storage holds only the path of the cache entry (JSON), no rows.
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

    key = r2["provenance"]["cache"]["key"]
    for stage in ("load", "derive", "fit", "sensitivity"):
        record = json.loads(
            (PREFECT_LOCAL_STORAGE_PATH.value() / f"mgca-{stage}-{key}").read_text()
        )
        assert json.loads(record["result"]) == str(root / ".cache" / key)
    print(f"cached second run: {two_runs['second_s']:.1f} s")


def test_runs_and_cache_entry_share_one_database_file_that_outlives_the_entry(
    two_runs: dict[str, Any],
) -> None:
    """The derived DuckDB file is hard-linked, not copied, into the cache entry and into a
    run served from it; removing the entry leaves each run's database whole."""
    import duckdb

    root = two_runs["root"]
    key = json.loads((root / "run-2" / "results.json").read_text())["provenance"]["cache"]["key"]
    entry_db = root / ".cache" / key / "mgca.duckdb"
    run_dbs = [root / name / "private" / "mgca.duckdb" for name in ("run-1", "run-2")]
    for db in run_dbs:
        assert os.path.samefile(db, entry_db), db
    counts = []
    scratch = root / "entry-removed"
    shutil.copytree(entry_db.parent, scratch)  # other tests of the module read the entry
    shutil.rmtree(entry_db.parent)
    try:
        for db in run_dbs:
            with duckdb.connect(str(db), read_only=True) as con:
                counts.append(con.execute("SELECT count(*) FROM analytic_cohort").fetchone())
    finally:
        shutil.copytree(scratch, entry_db.parent)
        shutil.rmtree(scratch)
    cohort = pd.read_parquet(root / "run-1" / "cohort.parquet")
    assert counts == [(len(cohort),), (len(cohort),)]


def test_a_changed_input_value_or_config_value_invalidates_the_cache(
    two_runs: dict[str, Any], dataset: Path, config: MgcaConfig, tmp_path: Path
) -> None:
    root = two_runs["root"]
    changed = tmp_path / "changed"
    shutil.copytree(dataset, changed)
    labs = pd.read_parquet(changed / "lab_results.parquet")
    labs.loc[labs.index[0], "value"] = labs["value"].iloc[0] + 0.01  # one value, one row
    labs.to_parquet(changed / "lab_results.parquet", index=False)
    states = _task_states(_run(changed, root / "run-3", config))
    assert all(states[name] == "Completed" for name in CACHED_TASKS), states

    stricter = config.model_copy(update={"study": StudyConfig(mg_low_mmol_l=0.71)})
    states = _task_states(_run(dataset, root / "run-4", stricter))
    assert all(states[name] == "Completed" for name in CACHED_TASKS), states
    cmp = json.loads((root / "run-4" / "results.json").read_text())["comparison_with_previous"]
    assert cmp["previous_run"] == "run-3"
    assert cmp["config_changed"] is True and cmp["input_changed"] is True


def test_run_history_lists_runs_and_compares_with_the_previous(two_runs: dict[str, Any]) -> None:
    root = two_runs["root"]
    r1 = json.loads((root / "run-1" / "results.json").read_text())
    r2 = json.loads((root / "run-2" / "results.json").read_text())
    assert r1["comparison_with_previous"] is None
    cmp = r2["comparison_with_previous"]
    assert cmp["previous_run"] == "run-1"
    assert cmp["primary_estimate_change"] == 0.0 and cmp["ci_overlap"] is True
    assert cmp["cohort_changed"] is False
    assert cmp["config_changed"] is False and cmp["input_changed"] is False
    runs = json.loads((root / "history.json").read_text())["runs"]
    assert {"run-1", "run-2"} <= {r["run_id"] for r in runs}
    html = (root / "index.html").read_text()
    assert 'href="run-1/report.html"' in html and 'href="run-2/report.html"' in html
    estimate = r2["estimates"][0]["estimate"]
    assert f"{estimate:+.3f}" in html
    report = (root / "run-2" / "report.html").read_text()
    assert "Compared with the previous run" in report and "Previous run: run-1" in report
    assert 'id="comparison"' not in (root / "run-1" / "report.html").read_text()


def test_artifacts_hold_aggregates_only(two_runs: dict[str, Any], dataset: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    state = two_runs["first"]

    async def read() -> dict[str, str]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(),
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                ),
                task_run_filter=TaskRunFilter(),
                sort=ArtifactSort.CREATED_DESC,
                limit=50,
            )
            return {a.key: str(a.data) for a in artifacts}

    artifacts = asyncio.run(read())
    assert set(artifacts) == {"mgca-summary", "mgca-estimates", "mgca-attrition"}
    results = json.loads((two_runs["root"] / "run-1" / "results.json").read_text())
    primary = results["estimates"][0]
    assert f"{primary['estimate']:+.3f} mmol/L" in artifacts["mgca-summary"]
    assert "encounters in source" in artifacts["mgca-attrition"]
    ids = set(
        pd.read_parquet(dataset / "encounters.parquet", columns=["encounter_id"])["encounter_id"]
    )
    ids |= set(pd.read_parquet(dataset / "persons.parquet", columns=["subject_id"])["subject_id"])
    for key, text in artifacts.items():
        tokens = set(re.findall(r"[A-Za-z0-9_-]+", text))
        assert not tokens & ids, key
        assert not DATE.search(text), key


def test_example_notebook_runs_top_to_bottom(two_runs: dict[str, Any]) -> None:
    import nbclient
    import nbformat
    from jupyter_client.manager import KernelManager

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "mgca_example.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    os.environ["MGCA_RUN"] = str(two_runs["root"] / "run-1")
    try:
        # The venv's own kernel (this interpreter), over IPC sockets: nothing listens on TCP.
        km = KernelManager(kernel_name="python3", transport="ipc")
        km.kernel_spec.argv[0] = sys.executable
        nbclient.NotebookClient(nb, km=km, timeout=180).execute()
    finally:
        os.environ.pop("MGCA_RUN", None)
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "plus K, PPI, loop diuretic" in outputs
    assert any(
        "image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def test_serve_registers_the_cron_deployment_and_runs_it(
    two_runs: dict[str, Any], dataset: Path, tmp_path: Path
) -> None:
    """`mgca serve` against a running Prefect server (the test harness's, on 127.0.0.1): the
    deployment is registered with the config's cron schedule, and a run of it started through
    the API is executed by the runner in the `mgca serve` process."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    out = tmp_path / "out"
    config = tmp_path / "study.yaml"
    config.write_text(
        "schedule:\n  deployment_name: nightly-test\n  cron: '15 3 * * *'\n"
        f"  timezone: Europe/Berlin\n  path: {dataset}\n  reports_root: {out}\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgca.cli", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_deployment_by_name("mgca-study/nightly-test")

    async def run_now(deployment_id: Any) -> str:
        async with get_client() as client:
            flow_run = await client.create_flow_run_from_deployment(deployment_id)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                flow_run = await client.read_flow_run(flow_run.id)
                if flow_run.state and flow_run.state.is_final():
                    break
                await asyncio.sleep(2)
            return flow_run.state.name if flow_run.state else "none"

    try:
        deployment = None
        deadline = time.monotonic() + 120
        while deployment is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                deployment = asyncio.run(read())
            except Exception:
                time.sleep(1)
        assert deployment is not None, proc.stdout.read() if proc.poll() is not None else ""
        (schedule,) = deployment.schedules
        assert schedule.schedule.cron == "15 3 * * *"
        assert schedule.schedule.timezone == "Europe/Berlin"
        assert deployment.parameters["config_path"] == str(config.resolve())
        assert deployment.parameters["reports_root"] == str(out)
        assert asyncio.run(run_now(deployment.id)) == "Completed"
        (run,) = out.glob("run-*")
        assert (run / "report.html").is_file() and (out / "index.html").is_file()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_without_a_server_keeps_the_schedule_itself(
    two_runs: dict[str, Any], dataset: Path, tmp_path: Path
) -> None:
    from mgca.ops.serve import DeploymentSpec, serve_local

    waits: list[float] = []
    spec = DeploymentSpec(
        name="local",
        flow="mgca-study",
        cron="* * * * *",
        timezone="UTC",
        parameters={
            "source": "synthetic",
            "path": str(dataset),
            "reports_root": str(tmp_path / "out"),
            "config_path": None,
        },
        next_runs=[],
    )
    assert serve_local(spec, max_runs=1, sleep=waits.append, log=lambda m: None) == 1
    assert len(waits) == 1 and 0 < waits[0] <= 60  # slept until the next whole minute
    (run,) = (tmp_path / "out").glob("run-*")
    assert (run / "report.html").is_file()
    assert (tmp_path / "out" / "index.html").is_file()

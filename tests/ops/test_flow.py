"""A real Prefect flow run of the study, recorded by a real (temporary, local) Prefect API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mgca.config import MgcaConfig, SyntheticConfig

pytestmark = pytest.mark.slow


def test_study_flow_completes_and_records_its_tasks(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    from mgca.run.flow import study_flow

    config = MgcaConfig(synthetic=SyntheticConfig(stays=1500, seed=11, world="effect"))
    out = tmp_path / "run"
    state = study_flow(
        source="synthetic", path=None, out=str(out), config=config, return_state=True
    )
    assert state.is_completed(), state
    summary = state.result()
    assert summary.out_dir == out.resolve()
    assert json.loads((out / "results.json").read_text())["estimates"]

    async def _task_names() -> set[str]:
        async with get_client() as client:
            flow_run = await client.read_flow_run(state.state_details.flow_run_id)
            assert flow_run.state.is_completed()
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=100,
            )
            assert all(t.state.is_completed() for t in tasks)
            return {t.name.rsplit("-", 1)[0] for t in tasks}

    names = asyncio.run(_task_names())
    assert {
        "prepare-source",
        "load-duckdb",
        "derive-cohort",
        "fit-models",
        "render-report",
    } <= names

"""Crash safety: SIGKILL a real `mgca run` during load, derive, model and report.

After every kill: the previous run folder is byte-identical, nothing but hidden staging
folders sits beside it (no partial output is presented as a result), a DuckDB file the
killed run left behind opens and answers queries, and the next run completes (cleaning the
stale staging folders). One baseline run, four killed runs, one rerun (about 2 minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from helpers.run_helpers import kill_at, mgca, start, tree_digest

from mgca.run.outputs import REQUIRED_OUTPUTS

pytestmark = pytest.mark.slow

# A log line printed while each stage is under way (task names and progress lines of mgca.run.flow).
KILL_POINTS = {
    "load": "loaded persons:",  # load-duckdb: canonical tables in, reference tables next
    "derive": "derive 3/",  # derive-cohort: SQL step 3 (of however many)
    "model": "Task run 'fit-models",  # fit-models under way
    "report": "Task run 'synthetic-truth",  # render-report starts next
}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_sigkill_at_each_stage_leaves_previous_run_intact(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    data = tmp_path / "synthetic"
    made = mgca(["synth", "--stays", "300", "--seed", "5", "--out", str(data)], home)
    assert made.returncode == 0, made.stdout
    out = tmp_path / "runs" / "study"
    # --no-cache: every run really loads, derives and fits (a cache hit would skip the stages)
    run_args = ["run", "--source", "synthetic", "--path", str(data), "--out", str(out),
                "--no-cache"]

    first = mgca(run_args, home)
    assert first.returncode == 0, first.stdout[-3000:]
    baseline = tree_digest(out)
    assert {*REQUIRED_OUTPUTS, "private/mgca.duckdb"} <= set(baseline)

    for stage, marker in KILL_POINTS.items():
        lines = kill_at(start(run_args, home), marker)
        assert not any("published run folder" in line for line in lines), stage
        assert tree_digest(out) == baseline, f"previous run changed by a kill during {stage}"
        # Only hidden names beside the run folder: staging folders and the lock file.
        # (index.html and history.json, the run history, are rewritten only after a publish)
        assert all(n.startswith(".") or n in ("index.html", "history.json", "mgca-run.log")
                   for n in _siblings(out)), (stage, _siblings(out))
        for db in out.parent.glob(".staging-*/private/mgca.duckdb"):
            with duckdb.connect(str(db)) as con:  # replays or discards the WAL; must open
                assert con.execute("SELECT 42").fetchone() == (42,)
                con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()

    staged = [p for p in out.parent.glob(".staging-*") if p.is_dir()]
    assert staged, "the killed runs left no staging folder: were they killed too late?"

    rerun = mgca(run_args, home)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert not list(out.parent.glob(".staging-*")), "stale staging folders were not cleaned"
    assert set(REQUIRED_OUTPUTS) <= set(tree_digest(out))
    results = json.loads((out / "results.json").read_text())
    assert results["attrition"] and results["provenance"]["source"] == "synthetic"
    with duckdb.connect(str(out / "private" / "mgca.duckdb"), read_only=True) as con:
        (n,) = con.execute("SELECT count(*) FROM analytic_cohort").fetchone()
        (n_file,) = con.execute(
            "SELECT count(*) FROM read_parquet(?)", [str(out / "cohort.parquet")]
        ).fetchone()
    assert n == n_file > 0

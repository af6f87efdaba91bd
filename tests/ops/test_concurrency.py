"""Concurrency: two runs on one output folder never corrupt each other.

A run holds an exclusive lock beside its run folder (mgca.run.locking) from before it touches
anything until it has published. A second run on the same --out stops with exit 2 and one
message naming the folder; two runs started at once leave one complete, consistent folder.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers.run_helpers import MGCA, mgca, run_env

from mgca.run.locking import RunFolderBusyError, acquire_run_lock
from mgca.run.outputs import REQUIRED_OUTPUTS


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with acquire_run_lock(out):
        with pytest.raises(RunFolderBusyError, match="another mgca run is writing"):
            acquire_run_lock(out)
        other = acquire_run_lock(tmp_path / "other-run")  # another folder: no contention
        other.release()
    acquire_run_lock(out).release()  # free again once released


@pytest.mark.slow
def test_second_run_on_a_busy_folder_stops_with_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    data = tmp_path / "synthetic"
    assert mgca(["synth", "--stays", "200", "--out", str(data)], home).returncode == 0
    out = tmp_path / "runs" / "study"
    args = ["run", "--source", "synthetic", "--path", str(data), "--out", str(out)]
    with acquire_run_lock(out):  # as a run in progress does
        blocked = mgca(args, home)
    assert blocked.returncode == 2, blocked.stdout[-2000:]
    errors = [ln for ln in blocked.stdout.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "another mgca run is writing" in errors[0], errors
    assert not out.exists()

    # Two runs started at once on the same folder: each completes or stops cleanly.
    procs = [
        subprocess.Popen([*MGCA, *args], env=run_env(tmp_path / f"home{i}"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes and set(codes) <= {0, 2}, (codes, [o[-1500:] for o in outputs])
    for code, text in zip(codes, outputs, strict=True):
        if code == 2:
            assert "another mgca run is writing" in text
    assert {p.name for p in out.iterdir()} >= set(REQUIRED_OUTPUTS)
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["source"] == "synthetic"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(".staging-")]
    assert leftovers == [] and not out.with_name(out.name + ".previous").exists()

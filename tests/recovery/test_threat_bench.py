"""The threat bench runs end to end and its table has one row per estimate, world and
threat state (``bench/threats.py``; the README's threat table is its output at more
replicates). One replicate of a small null-world hospital, the baseline and one threat."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_threat_bench_runs_and_its_table_has_every_estimate_on_and_off(tmp_path: Path) -> None:
    out = tmp_path / "threats.json"
    args = ["--threats", "detection_bias", "--worlds", "null", "--replicates", "1"]
    args += ["--stays", "1500", "--jobs", "1", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "threats.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    cells = result["cells"]
    names = {c["name"] for c in cells}
    assert {"primary", "calcium_corrected_at_horizon_risk_difference"} <= names
    # the any-draw outcomes are per arm only in a run: the bench scores the contrast the run
    # withholds from the model functions, in its own block
    withheld = {c["name"] for c in cells if c["block"] == "withheld_by_design"}
    assert withheld == {
        "calcium_corrected_risk_difference",
        "calcium_corrected_odds_ratio",
        "time_to_calcium_correction_hazard_ratio",
    }
    assert not any(c["block"] == "secondary" and c["name"] in withheld for c in cells)
    assert {"per_protocol", "calibration"} <= names  # one-estimate blocks are scored too
    assert result["runs_done"] == result["runs_planned"] == 2
    for name in names:
        states = {c["threat"] for c in cells if c["name"] == name}
        assert states == {"none", "detection_bias"}, (name, states)
    for cell in cells:
        assert cell["world"] == "null" and cell["runs"] == 1 and cell["stays"] == 1500
        assert set(cell) >= {"bias", "coverage", "false_positive", "median_estimate"}
    primary = [c for c in cells if c["name"] == "primary"]
    assert all(c["false_positive"] in (0.0, 1.0) for c in primary if c["estimated"])
    assert "| estimate | world | threat |" in proc.stdout
    summary = subprocess.run(
        [sys.executable, str(REPO / "bench" / "threats.py"), "--summarise", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert summary.returncode == 0 and summary.stdout.count("\n") >= len(cells) + 2
    assert not any("encounter" in key or "subject" in key for key in result["replicates"][0])
    wide = subprocess.run(
        [sys.executable, str(REPO / "bench" / "threats.py"), "--summarise", str(out), "--wide"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wide.returncode == 0, wide.stderr[-2000:]
    header = "| estimate | none | detection_bias |"
    assert wide.stdout.count(header) == 2  # the null-world table and the effect-world one
    assert any(line.startswith("| primary | ") for line in wide.stdout.splitlines())

"""bench/run.py runs end to end on a tiny dataset and prints its summary line.

A smoke test, not a timed test: nothing here asserts on speed (speed is measured by the
benchmark itself; see bench/README.md).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"^rows=(?P<rows>\d+) total_s=(?P<total_s>\S+) peak_mb=(?P<peak_mb>\S+) "
    r"pandas_ratio=(?P<pandas_ratio>\S+)$"
)


def _bench(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), *args, "--cache-dir", str(cache_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.rstrip("\n").splitlines()[-1]
    match = SUMMARY.match(last)
    assert match, f"last line does not have the summary format: {last!r}"
    return match.groupdict()


def test_bench_prints_summary_and_reuses_its_cache(tmp_path: Path) -> None:
    first = _bench("--rows", "20000", cache_dir=tmp_path)
    figures = _summary(first)
    assert figures["rows"] == "20000"
    for key in ("total_s", "peak_mb", "pandas_ratio"):
        value = float(figures[key])
        assert math.isfinite(value) and value > 0, (key, value)
    assert "generating" in first.stdout
    assert (tmp_path / "20000-effect-0" / "lab_results.parquet").is_file()
    assert "analysed episodes: mgca" in first.stdout
    assert first.returncode == 0, first.stderr[-2000:]  # 1: mgca and pandas disagree
    assert "episodes agree" in first.stdout  # pandas reference and mgca find the same ones

    second = _bench("--rows", "20000", "--skip-pandas", cache_dir=tmp_path)
    figures = _summary(second)
    assert "reused from cache" in second.stdout
    assert math.isfinite(float(figures["total_s"])) and math.isfinite(float(figures["peak_mb"]))
    assert figures["pandas_ratio"] == "nan"
    # runs.jsonl keeps every run for the cost-growth figures
    runs = (tmp_path / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(runs) == 2
    assert "cost growth" in second.stdout
    kept = {"20000-effect-0", "runs.jsonl"}
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in kept)
    assert leftovers == [], f"the benchmark left scratch folders behind: {leftovers}"


def test_models_ab_times_the_model_stage_on_one_reused_database(tmp_path: Path) -> None:
    args = [sys.executable, str(REPO / "bench" / "models_ab.py"), "--stays", "1500"]
    args += ["--dir", str(tmp_path), "--repeat", "2"]
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("episodes ")]
    assert len(lines) == 2 and len({ln.split()[1] for ln in lines}) == 1  # same database
    assert len(list(tmp_path.glob("*/run.duckdb"))) == 1

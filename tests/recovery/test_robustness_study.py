"""The answer holds on small, unbalanced, real-shaped hospitals: a reduced replicate study.

Runs ``bench/robustness.py`` (the whole pipeline per replicate: synthetic ward-regime
hospital → DuckDB → SQL cohort → models → diagnostics gate → the simulator's truth for the
population the answer describes) on 2,000- and 4,000-stay hospitals, effect and null
world, three seeded replicates each. The full study (100 replicates per cell, 1,000-8,000
stays) is the README's table; this is its reduced, CI-sized version.

Assertions, on every cell:
- no run states an absurd estimate (beyond ±0.5 mmol/L) as its answer;
- among answered runs, CIs that miss the truth (and, in the null world, that exclude 0) are
  no more than a correct 95 % interval gives with probability 0.99 (binomial quantile), so
  a well-calibrated method fails this about once in a hundred cells, a biased one far more;
- the 2,000-stay effect world is answered in most runs (the capture work made ~200 episodes
  analysable where ~55 were before); the null world at 2,000 stays has about 15 unexposed
  episodes, fewer than the gate's 20, and must then say it cannot answer rather than guess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
REPLICATES = 3


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("robustness") / "robustness.json"
    args = ["--sizes", "2000", "4000", "--replicates", str(REPLICATES), "--jobs", "1"]
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "robustness.py"), *args, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout)
    return json.loads(out.read_text(encoding="utf-8"))


def _allowed_misses(n: int) -> int:
    """Misses a correct 95 % interval exceeds with probability at most 0.01 in ``n`` runs."""
    return int(stats.binom.ppf(0.99, n, 0.05))


def test_no_absurd_estimate_is_ever_stated(study: dict) -> None:
    for cell in study["cells"]:
        assert cell["absurd_stated"] == 0, cell
    for rep in study["replicates"]:
        if rep["answered"]:
            assert abs(rep["estimate"]) <= 0.5, rep


def test_answered_intervals_cover_the_truth(study: dict) -> None:
    answered = [r for r in study["replicates"] if r["answered"]]
    assert answered, "no run was answered at all"
    for world in ("effect", "null"):
        runs = [r for r in answered if r["world"] == world]
        misses = sum(not (r["ci_low"] <= r["truth"] <= r["ci_high"]) for r in runs)
        assert misses <= _allowed_misses(len(runs)), (world, misses, len(runs))


def test_null_world_false_positives_stay_rare(study: dict) -> None:
    runs = [r for r in study["replicates"] if r["answered"] and r["world"] == "null"]
    positives = sum(r["ci_low"] > 0 or r["ci_high"] < 0 for r in runs)
    assert positives <= _allowed_misses(len(runs)), (positives, len(runs))


def test_small_hospitals_are_answered_or_say_why(study: dict) -> None:
    cells = {(c["stays"], c["world"]): c for c in study["cells"]}
    assert cells[(2000, "effect")]["answered"] >= 0.8
    assert cells[(2000, "effect")]["episodes"] > 150
    for rep in study["replicates"]:
        if not rep["answered"]:
            assert rep["failed"], rep  # a refusal always names the failed checks

"""The study recovers the known truth, on simulated worlds whose true effect is known.

Each replicate generates a synthetic hospital with its own seed, runs the real pipeline
(DuckDB file, the SQL in sql/, the statsmodels fit) and asks the simulator for the true
average effect *for the cohort the pipeline itself selected*, with the pipeline's own
grace period and horizon (the simulator replays each stay with Mg given at the index
decision vs no Mg in the grace period, same random draws, usual care otherwise).

Replicate seeds: effect world 1001-1010, null world 2001-2010, 3,000 stays each.
Assertions are on the replicate set, with tolerances that a correct method passes with
overwhelming probability and a biased one fails:
- effect world: every CI excludes zero; CIs cover the truth in >= 8 of 10 (a 95 % interval
  fails that with probability ~1 %); mean estimate within 15 % of mean truth.
- null world: the truth is exactly 0; CIs contain 0 in >= 8 of 10; the naive before/after
  rise in the same treated episodes is positive with its CI above zero in every replicate,
  and on average larger than 0.05 mmol/L: the naive design "sees" Ca correct when Mg does
  nothing, the adjusted design does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mgca.analysis.estimation.models import prepare_adjusted
from mgca.config import MgcaConfig
from mgca.run import study
from mgca.synthetic import generate, true_effect

pytestmark = pytest.mark.slow

STAYS = 3000
EFFECT_SEEDS = range(1001, 1011)
NULL_SEEDS = range(2001, 2011)


@dataclass(frozen=True)
class Replicate:
    seed: int
    estimate: float
    ci_low: float
    ci_high: float
    truth: float
    naive: float
    naive_ci_low: float
    n: int


def _replicate(world: str, seed: int, root: Path) -> Replicate:
    config = MgcaConfig()
    data = root / f"{world}-{seed}"
    generate(data, n_stays=STAYS, world=world, seed=seed)
    db = root / f"{world}-{seed}.duckdb"
    study.build_database(data, db, config)
    cohort = study.read_cohort(db)
    estimates, _ = study.fit_estimates(cohort, config, names=("primary", "naive_before_after"))
    primary = next(e for e in estimates if e["name"] == "primary")
    naive = next(e for e in estimates if e["name"] == "naive_before_after")
    # the truth for the episodes the estimate used (complete cases of the adjustment set)
    fitted = prepare_adjusted(cohort, "recovery").data
    truth = true_effect(
        data,
        fitted[["encounter_id", "index_time"]],
        grace_hours=config.study.grace_hours,
        horizon_hours=config.study.horizon_hours,
    )
    return Replicate(
        seed=seed,
        estimate=primary["estimate"],
        ci_low=primary["ci_low"],
        ci_high=primary["ci_high"],
        truth=truth.mean,
        naive=naive["estimate"],
        naive_ci_low=naive["ci_low"],
        n=primary["n"],
    )


def _table(world: str, reps: list[Replicate]) -> str:
    lines = [
        f"{world} world, {STAYS} stays each: seed, n, estimate [95% CI], truth, naive (mmol/L)"
    ]
    for r in reps:
        lines.append(
            f"  {r.seed}  {r.n:4d}  {r.estimate:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
            f"  {r.truth:+.3f}  {r.naive:+.3f}"
        )
    return "\n".join(lines)


def test_effect_world_recovers_the_truth_for_its_own_cohort(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    reps = [_replicate("effect", seed, tmp_path) for seed in EFFECT_SEEDS]
    record_property("study_recovery_table", _table("effect", reps))
    assert all(r.truth > 0.02 for r in reps)
    assert all(r.ci_low > 0 for r in reps), "CI should exclude zero in every replicate"
    covered = sum(r.ci_low <= r.truth <= r.ci_high for r in reps)
    assert covered >= 8, f"CI covered the truth in only {covered}/10 replicates"
    mean_estimate = np.mean([r.estimate for r in reps])
    mean_truth = np.mean([r.truth for r in reps])
    assert abs(mean_estimate - mean_truth) < 0.15 * mean_truth


def test_null_world_finds_no_effect_while_naive_before_after_sees_one(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    reps = [_replicate("null", seed, tmp_path) for seed in NULL_SEEDS]
    record_property("study_recovery_table", _table("null", reps))
    assert all(r.truth == 0.0 for r in reps)
    contains_zero = sum(r.ci_low <= 0 <= r.ci_high for r in reps)
    assert contains_zero >= 8, f"CI excluded zero in {10 - contains_zero}/10 null replicates"
    assert all(r.naive_ci_low > 0 for r in reps), "naive before/after should show a clear rise"
    assert np.mean([r.naive for r in reps]) > 0.05

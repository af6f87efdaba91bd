"""Recovery proof of the three primary estimators on the synthetic worlds with known truth.

Each replicate runs the REAL pipeline pieces: ``mgca.synthetic.generate`` (a seeded
hospital), ``mgca.run.study.build_database`` (DuckDB file + the SQL in sql/),
``mgca.run.study.read_cohort`` and ``mgca.run.study.fit_estimates`` (which fits the outcome
regression ``primary``, ``ipw``, ``doubly_robust``, the crude ``unadjusted_difference`` and
the ``naive_before_after`` change), and asks the simulator (``mgca.synthetic.true_effect``)
for the true effect of each pair (stay, index time) of the pipeline's own cohort. Each
estimator is scored against the mean true effect over the episodes it analysed: the
complete cases of the adjustment set for the adjusted estimators and the crude difference,
the exposed episodes for the naive before/after change (in the effect world that "truth" is
the effect among the treated, the number a before/after design claims to measure).

Seeds: effect world 41001-41100 (3,000 stays each), null world 42001-42100 (9,000 stays
each, so that both worlds' cohorts hold about 290 analysed episodes); ``EFFECT_SEEDS``,
``NULL_SEEDS``, ``STAYS``. Replicates run once, in a
module-scoped fixture, spread over ``WORKERS`` processes, and are shared by every assertion.

Bars (pre-specified floors; never loosened to let a run pass):
- effect world, each of outcome regression, IPW and DR: |mean(estimate − truth)| < 10 % of
  the mean truth; 95 % CI covers its truth in 90-99 % of replicates;
- null world (truth exactly 0), each of the three: rejection rate at alpha 0.05 (CI excludes
  0) < 10 %; coverage of 0 in 90-99 %;
- null world, naive before/after: mean clearly > 0 (> 0.05 mmol/L) and its CI excludes 0
  (above it) in at least 80 % of replicates: regression to the mean seen as "correction".

Why 100 replicates and not 50: a correct 95 % interval fails "coverage >= 90 %" over 50
replicates with probability ~10 % (and "<= 99 %", i.e. at least one miss, with ~8 %); over
100 replicates these fall to ~3 % and ~0.6 %. The bias bar is 10 % of about 0.09 mmol/L; the
Monte Carlo SE of the mean error over 100 replicates is reported in the table (``mc_se``) so
a reader can see how far inside the bar each estimator is.

The summary table is printed and recorded with ``record_property("recovery_table", …)``
(shown by the terminal-summary hook in conftest.py).

Measured with the code of commit eb8b514 (calcium corrected with the nearest albumin within
± 24 h; the primary's interval from the patient-clustered CR1 sandwich, no bootstrap; 4 min
22 s on 2 cores; README "Three estimators" has the figures of the default rules): effect
world bias +4.7 % (outcome regression), +3.6 % (IPW), +4.6 % (DR), coverage 0.91 / 0.93 /
0.92; null world rejection 5 % / 5 % / 4 %; naive before/after +0.095 mmol/L in the null
world with its CI above 0 in every replicate. Two things the numbers show, both measured
outside this file:

- The small positive bias is the estimand, not the estimators: the pipeline's outcome is the
  corrected Ca drawn nearest 48 h within ± 12 h (mean draw time 47 h), the simulator's truth
  is latent Ca at exactly 48 h, and the true effect falls by ~0.002 mmol/L per hour across
  that window (the control arm is repleted later by usual care). The truth at each episode's
  own draw time is +0.0057 mmol/L above the 48-h truth (seeds 41001-41020), more than the
  bias seen.
- ``se_ratio`` ~1.1 in the effect world: every patient-clustered sandwich (the primary's
  statsmodels CR1, the IPW M-estimation sandwich, the AIPW influence function) is ~10 %
  too small with ~120-160 episodes per arm for an 11-parameter spline model per arm
  (leverage). A leave-one-patient-out jackknife of the primary on the same 100 effect
  cohorts has se_ratio 0.90 and misses the truth in 5 % (CR1: 9 %). Coverage therefore sits
  near the 90 % floor.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

STAYS = {"effect": 3000, "null": 9000}
"""Stays per replicate: about 290 analysed episodes in either world (the null world has
fewer hypoMg + hypoCa stays: ~95 analysed episodes per 3,000 stays against ~290)."""
EFFECT_SEEDS = range(41001, 41101)
NULL_SEEDS = range(42001, 42101)
WORKERS = max(1, min(2, os.cpu_count() or 1))
"""Processes for the replicates (the file must run in < 6 min on 2 cores)."""

PRIMARY_ESTIMATORS = ("primary", "ipw", "doubly_robust")
"""The three estimators of the primary contrast (outcome regression, IPW, AIPW)."""
ALL_ESTIMATORS = (*PRIMARY_ESTIMATORS, "unadjusted_difference", "naive_before_after")
BIAS_LIMIT = 0.10
"""|mean error| must be below this fraction of the mean truth (effect world)."""
COVERAGE_RANGE = (0.90, 0.99)
FPR_LIMIT = 0.10
ALPHA = 0.05


def run_replicate(world: str, seed: int, stays: int, root: str) -> list[dict[str, object]]:
    """One replicate: generate, load, derive, fit; one row per estimator with its own truth.

    Top level (not a closure) so worker processes can run it. Deletes its files when done.
    """
    from mgca.analysis.estimation.models import (
        ADJUSTMENT_SET,
        CLUSTER,
        EXPOSURE,
        OUTCOME,
        recorded_covariates,
    )
    from mgca.config import MgcaConfig
    from mgca.run import study
    from mgca.synthetic import generate, true_effect

    # one DuckDB thread per process: WORKERS processes share the cores (results unchanged)
    config = MgcaConfig.model_validate({"engine": {"duckdb_threads": 1}})
    folder = Path(root) / f"{world}-{seed}"
    data = folder / "data"
    db = folder / "mgca.duckdb"
    started = time.perf_counter()
    try:
        generate(data, n_stays=stays, world=world, seed=seed)
        study.build_database(data, db, config)
        cohort = study.read_cohort(db)
        # the five estimators scored here (the overlap estimate has its own truth and study)
        estimates, notes = study.fit_estimates(cohort, config, names=ALL_ESTIMATORS)
        per_pair = true_effect(
            data,
            cohort[["encounter_id", "index_time"]],
            grace_hours=config.study.grace_hours,
            horizon_hours=config.study.horizon_hours,
        ).per_pair
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    adjustment, _ = recorded_covariates(cohort, ADJUSTMENT_SET)  # the source's own proxies
    complete = cohort[[CLUSTER, EXPOSURE, OUTCOME, *adjustment]].notna().all(axis=1)
    complete &= cohort["baseline_creatinine_umol_l"].gt(0).fillna(False).astype(bool)
    has_outcome = cohort[[CLUSTER, EXPOSURE, OUTCOME]].notna().all(axis=1)
    exposed = cohort[EXPOSURE].fillna(False).astype(bool) & has_outcome
    exposed &= cohort["baseline_ca_corrected_mmol_l"].notna()
    rows_of = {
        "primary": complete,
        "ipw": complete,
        "doubly_robust": complete,
        "unadjusted_difference": has_outcome,
        "naive_before_after": exposed,
    }
    seconds = time.perf_counter() - started
    by_name = {e["name"]: e for e in estimates}
    out: list[dict[str, object]] = []
    for name in ALL_ESTIMATORS:
        e = by_name.get(name)
        mask = rows_of[name].to_numpy()
        out.append(
            {
                "world": world,
                "seed": seed,
                "estimator": name,
                "fitted": e is not None,
                "estimate": None if e is None else e["estimate"],
                "ci_low": None if e is None else e["ci_low"],
                "ci_high": None if e is None else e["ci_high"],
                "se": None if e is None else e["se"],
                "p_value": None if e is None else e["p_value"],
                "n": None if e is None else e["n"],
                "truth_n": int(mask.sum()),
                "truth": float(per_pair[mask].mean()) if mask.any() else float("nan"),
                "seconds": seconds,
                "notes": "; ".join(n for n in notes if n.startswith(name)),
            }
        )
    return out


def run_replicates(
    jobs: list[tuple[str, int, int]], root: Path, workers: int = WORKERS
) -> pd.DataFrame:
    """All (world, seed, stays) replicates, over ``workers`` spawned processes; one row per
    estimator per replicate."""
    rows: list[dict[str, object]] = []
    if workers <= 1:
        for world, seed, stays in jobs:
            rows += run_replicate(world, seed, stays, str(root))
    else:
        context = multiprocessing.get_context("spawn")  # never fork a threaded parent
        with (
            _single_threaded_children(),
            ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        ):
            futures = [
                pool.submit(run_replicate, world, seed, stays, str(root))
                for world, seed, stays in jobs
            ]
            for future in futures:
                rows += future.result()
    return pd.DataFrame(rows)


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Spawned workers inherit one BLAS/OpenMP thread each (set while they start, then
    restored): ``WORKERS`` processes already fill the cores, and OpenBLAS threads that spin
    on an oversubscribed machine slow every fit down many times over."""
    keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    """Per (estimator, world): replicates, mean estimate and truth, bias, bias %, Monte Carlo
    SE of the bias, ``se_ratio`` (SD of estimate − truth over the replicates divided by the
    root mean square of the reported SEs: about 1 when the SEs are right), coverage of the
    truth, rejection rate at ``ALPHA``, mean CI width."""
    out = []
    for (world, name), g in reps.groupby(["world", "estimator"], sort=False):
        g = g.loc[g["fitted"]]
        est, truth = g["estimate"].astype(float), g["truth"].astype(float)
        lo, hi = g["ci_low"].astype(float), g["ci_high"].astype(float)
        err = est - truth
        mean_truth = truth.mean()
        out.append(
            {
                "estimator": name,
                "world": world,
                "replicates": len(g),
                "mean_estimate": est.mean(),
                "mean_truth": mean_truth,
                "bias": err.mean(),
                "bias_pct": 100 * err.mean() / mean_truth if mean_truth != 0 else float("nan"),
                "mc_se": err.std(ddof=1) / np.sqrt(len(g)),
                "se_ratio": err.std(ddof=1) / np.sqrt(np.mean(g["se"].astype(float) ** 2)),
                "coverage": ((lo <= truth) & (truth <= hi)).mean(),
                "rejection": ((lo > 0) | (hi < 0)).mean(),
                "ci_width": (hi - lo).mean(),
            }
        )
    return pd.DataFrame(out)


def format_table(summary: pd.DataFrame, reps: pd.DataFrame) -> str:
    """The summary as fixed-width text (mmol/L except the percentages and rates)."""
    head = (
        f"{'estimator':<22} {'world':<6} {'reps':>4} {'mean est':>9} {'mean truth':>10} "
        f"{'bias':>8} {'bias %':>7} {'mc_se':>7} {'se_ratio':>8} {'coverage':>8} {'reject':>7} "
        f"{'CI width':>8}"
    )
    lines = [
        "Estimator recovery on the synthetic worlds (mmol/L corrected Ca at 48 h; coverage and "
        "reject over replicates; reject = 95 % CI excludes 0; bias % of the mean truth)",
        head,
        "-" * len(head),
    ]
    for r in summary.itertuples():
        pct = "" if np.isnan(r.bias_pct) else f"{r.bias_pct:+.1f}"
        lines.append(
            f"{r.estimator:<22} {r.world:<6} {r.replicates:>4d} {r.mean_estimate:>+9.4f} "
            f"{r.mean_truth:>+10.4f} {r.bias:>+8.4f} {pct:>7} {r.mc_se:>7.4f} {r.se_ratio:>8.2f} "
            f"{r.coverage:>8.2f} {r.rejection:>7.2f} {r.ci_width:>8.4f}"
        )
    per_rep = reps.drop_duplicates(["world", "seed"])
    for world, g in per_rep.groupby("world", sort=False):
        n = reps.loc[(reps["world"] == world) & (reps["estimator"] == "primary"), "n"]
        lines.append(
            f"{world} world, {STAYS[world]:,} stays per replicate: analysed episodes median "
            f"{n.median():.0f} "
            f"(range {n.min():.0f}-{n.max():.0f}); seconds per replicate (one process) "
            f"median {g['seconds'].median():.1f}"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def replicates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pd.DataFrame]:
    root = tmp_path_factory.mktemp("estimator-recovery")
    jobs = [("effect", s, STAYS["effect"]) for s in EFFECT_SEEDS]
    jobs += [("null", s, STAYS["null"]) for s in NULL_SEEDS]
    yield run_replicates(jobs, root)


@pytest.fixture(scope="module")
def summary(replicates: pd.DataFrame) -> pd.DataFrame:
    return summarise(replicates)


def _row(summary: pd.DataFrame, name: str, world: str) -> pd.Series:
    return summary.loc[(summary["estimator"] == name) & (summary["world"] == world)].iloc[0]


def test_recovery_table(
    replicates: pd.DataFrame,
    summary: pd.DataFrame,
    record_property: Callable[[str, object], None],
) -> None:
    text = format_table(summary, replicates)
    print("\n" + text)
    record_property("recovery_table", text)
    for world, seeds in (("effect", EFFECT_SEEDS), ("null", NULL_SEEDS)):
        for name in PRIMARY_ESTIMATORS:
            fitted = replicates.loc[
                (replicates["world"] == world) & (replicates["estimator"] == name), "fitted"
            ]
            assert len(fitted) == len(seeds)
            assert fitted.all(), f"{name} not fitted in {(~fitted).sum()} {world} replicates"


def test_null_world_truth_is_exactly_zero(replicates: pd.DataFrame) -> None:
    null = replicates.loc[replicates["world"] == "null"]
    assert (null["truth"] == 0.0).all()
    effect = replicates.loc[replicates["world"] == "effect"]
    assert (effect["truth"] > 0.02).all()


@pytest.mark.parametrize("name", PRIMARY_ESTIMATORS)
def test_effect_world_bias_below_ten_percent(summary: pd.DataFrame, name: str) -> None:
    r = _row(summary, name, "effect")
    assert abs(r["bias"]) < BIAS_LIMIT * r["mean_truth"], (
        f"{name}: bias {r['bias']:+.4f} mmol/L ({r['bias_pct']:+.1f} % of the mean truth "
        f"{r['mean_truth']:.4f}; Monte Carlo SE {r['mc_se']:.4f})"
    )


@pytest.mark.parametrize("world", ["effect", "null"])
@pytest.mark.parametrize("name", PRIMARY_ESTIMATORS)
def test_ci_coverage_between_90_and_99_percent(summary: pd.DataFrame, name: str, world: str):
    r = _row(summary, name, world)
    lo, hi = COVERAGE_RANGE
    assert lo <= r["coverage"] <= hi, f"{name} ({world}): coverage {r['coverage']:.2f}"


@pytest.mark.parametrize("name", PRIMARY_ESTIMATORS)
def test_null_world_false_positive_rate_below_ten_percent(summary: pd.DataFrame, name: str):
    r = _row(summary, name, "null")
    assert r["rejection"] < FPR_LIMIT, f"{name}: rejected 0 in {r['rejection']:.0%} of nulls"


def test_p_values_agree_with_the_intervals(replicates: pd.DataFrame) -> None:
    """p < 0.05 exactly when the 95 % CI excludes 0 (same t distribution for both)."""
    fitted = replicates.loc[replicates["fitted"]]
    excludes = (fitted["ci_low"].astype(float) > 0) | (fitted["ci_high"].astype(float) < 0)
    assert ((fitted["p_value"].astype(float) < ALPHA) == excludes).mean() > 0.99


def test_naive_before_after_is_biased_in_the_null_world(
    replicates: pd.DataFrame, summary: pd.DataFrame
) -> None:
    r = _row(summary, "naive_before_after", "null")
    assert r["mean_estimate"] > 0.05, "calcium should 'correct' with no effect at all"
    naive = replicates.loc[
        (replicates["world"] == "null") & (replicates["estimator"] == "naive_before_after")
    ]
    above = (naive["ci_low"].astype(float) > 0).mean()
    assert above >= 0.80, f"naive CI above 0 in only {above:.0%} of null replicates"

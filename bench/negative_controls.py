"""Do the negative controls catch unmeasured confounding, and does calibration repair the CI?

    python bench/negative_controls.py [--stays 3000] [--replicates 8] [--worlds effect]
                                      [--threats off unmeasured_confounding] [--jobs 1]
                                      [--bootstrap 100] [--out bench/negative_controls.json]

Each replicate generates a synthetic hospital (its own seed; the default world, or the world
with the threat ``unmeasured_confounding`` of ``mgca.synthetic.threats`` switched on), runs
the real pipeline on it (DuckDB, the SQL of sql/, the primary model and every negative
control of ``mgca.analysis.estimation.negative_controls`` with ``--bootstrap`` resamples)
and compares the primary 95 % CI and the calibrated one with the simulator's truth for the
primary's own episodes.

Per cell (threat × world) it prints and writes: ``runs``, mean ``episodes``, the primary's
``bias`` (mean estimate − truth, mmol/L), ``coverage`` of the primary CI and of the
calibrated CI (``calibrated_coverage``), their mean widths (mmol/L), the mean fitted
systematic error ``mu`` and ``sigma`` (standardised units), the share of runs calibrated
(at least ``calibration.min_controls`` controls) and the share whose controls reject
(``controls_reject``), and each control's mean standardised estimate. Seeds are
``--seed-base + i`` (default 7000), the same for both threat settings, so a pair of cells
differs only in the threat. Aggregates only (no ids, no dates).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OFF = "off"
"""The threat setting with no threat: the default world."""


def run_replicate(stays: int, world: str, seed: int, threat: str, bootstrap: int) -> dict[str, Any]:
    """One hospital through the pipeline: primary, calibrated primary, controls, truth."""
    from mgca.analysis.estimation.negative_controls import negative_controls_block
    from mgca.config import MgcaConfig
    from mgca.run import study
    from mgca.synthetic import generate
    from mgca.synthetic.threats import threat_world
    from mgca.synthetic.world import default_world

    config = MgcaConfig.model_validate(
        {
            "engine": {"duckdb_threads": 1, "duckdb_memory_limit": "2GB"},
            "estimation": {"bootstrap_replicates": bootstrap},
        }
    )
    params = default_world(world) if threat == OFF else threat_world(threat, world)  # type: ignore[arg-type]
    root = Path(tempfile.mkdtemp(prefix="mgca-negctl-"))
    try:
        data = root / "data"
        generate(data, n_stays=stays, world=params, seed=seed)
        db = root / "run.duckdb"
        study.build_database(data, db, config)
        cohort = study.read_cohort(db)
        estimates, _ = study.fit_estimates(cohort, config, names=("primary",))
        primary = estimates[0]
        controls, calibration = negative_controls_block(
            cohort, study.read_secondary_tables(db), config, primary
        )
        truths = study.synthetic_truths(data, cohort, config) or {}
        row: dict[str, Any] = {
            "stays": stays,
            "world": world,
            "threat": threat,
            "seed": seed,
            "episodes": len(cohort),
            "truth": truths.get("true_effect", float("nan")),
            "estimate": primary["estimate"],
            "ci_low": primary["ci_low"],
            "ci_high": primary["ci_high"],
            "cal_estimate": calibration["estimate"],
            "cal_ci_low": calibration["ci_low"],
            "cal_ci_high": calibration["ci_high"],
            "mu": calibration["mu"],
            "sigma": calibration["sigma"],
            "n_controls": calibration["controls_count"],
            "controls_reject": calibration["controls_reject"],
        }
        for c in controls:
            row[f"std_{c['name']}"] = c["standardised"]["estimate"]
        return row
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _covers(low: Any, high: Any, truth: Any) -> float:
    if low is None or high is None or truth is None or not np.isfinite(truth):
        return float("nan")
    return float(low <= truth <= high)


def summarise(replicates: pd.DataFrame) -> pd.DataFrame:
    """One row per (threat, world): the columns of the module docstring."""
    rows = []
    for (threat, world), g in replicates.groupby(["threat", "world"], sort=False):
        cover = [_covers(a, b, t) for a, b, t in zip(g.ci_low, g.ci_high, g.truth, strict=True)]
        cal = [
            _covers(a, b, t) for a, b, t in zip(g.cal_ci_low, g.cal_ci_high, g.truth, strict=True)
        ]
        row = {
            "threat": threat,
            "world": world,
            "runs": len(g),
            "stays": int(g.stays.iloc[0]),
            "episodes": float(g.episodes.mean()),
            "bias": float((g.estimate.astype(float) - g.truth).mean()),
            "coverage": float(np.nanmean(cover)),
            "calibrated_coverage": float(np.nanmean(cal)) if np.isfinite(cal).any() else None,
            "ci_width": float((g.ci_high.astype(float) - g.ci_low.astype(float)).mean()),
            "calibrated_ci_width": float(
                (g.cal_ci_high.astype(float) - g.cal_ci_low.astype(float)).mean()
            ),
            "mu": float(g.mu.astype(float).mean()),
            "sigma": float(g.sigma.astype(float).mean()),
            "calibrated_share": float(g.cal_estimate.notna().mean()),
            "controls_reject_share": float(g.controls_reject.fillna(False).astype(bool).mean()),
        }
        for col in g.columns:
            if col.startswith("std_"):
                row[col] = float(g[col].astype(float).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _job(args: tuple[int, str, int, str, int]) -> dict[str, Any]:
    return run_replicate(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stays", type=int, default=3000)
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--worlds", nargs="+", default=["effect"], choices=["effect", "null"])
    parser.add_argument("--threats", nargs="+", default=[OFF, "unmeasured_confounding"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--seed-base", type=int, default=7000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    jobs = [
        (args.stays, world, args.seed_base + i, threat, args.bootstrap)
        for threat in args.threats
        for world in args.worlds
        for i in range(args.replicates)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(_job, jobs))
    else:
        rows = [_job(j) for j in jobs]
    replicates = pd.DataFrame(rows)
    summary = summarise(replicates)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "cells": summary.to_dict("records"),
                    "replicates": replicates.to_dict("records"),
                },
                indent=1,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

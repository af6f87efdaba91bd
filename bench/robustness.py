"""Does the answer hold at every hospital size? A replicate study of the whole pipeline.

    python bench/robustness.py [--sizes 1000 2000 4000 8000] [--worlds effect null]
                               [--replicates 100] [--regime ward] [--jobs 2]
                               [--threat severity_confounding]
                               [--out bench/robustness.json]

Each replicate generates a synthetic hospital (``mgca.synthetic.generate``, its own seed,
the chosen simulator regime), runs the real pipeline on it (DuckDB file, the SQL of sql/,
``mgca.run.study.fit_estimates`` and the diagnostics gate ``mgca.run.study.evaluate_gate``) and asks
the simulator for the truth of the population the answer describes: the mean, over the
analysed episodes, of the per-episode effect the simulator replays (IV Mg at the index
decision vs none in the grace period, same random draws), or its overlap-weighted mean when
the gate answers in the overlap population. The null world's truth is exactly 0.

Per cell (hospital size × world) it prints and writes:

- ``episodes``: mean analysed episodes; ``exposed``: mean exposed share;
- ``answered``: share of runs whose gate passed (the report states an answer);
- ``overlap``: share of answered runs answered in the overlap population;
- ``bias``, ``coverage``, ``ci_width``: mean estimate − truth, share of 95 % CIs that contain
  the truth of the run's own cohort, mean CI width (mmol/L), over answered runs;
- ``coverage_population``: share of those CIs that contain the cell's population truth (the
  mean, over the cell's runs, of each run's truth for the same answer): the bootstrap
  interval also counts the sampling of the covariates, so it targets the effect in the
  population the cohort represents, which varies less than one cohort's own;
- ``false_positive``: null world only, share of answered runs whose CI excludes 0;
- ``absurd_stated``: share of runs that stated an estimate beyond ±0.5 mmol/L as the answer
  (must be 0); ``absurd_any``: share whose primary estimate, stated or not, was beyond it;
- ``primary_coverage``: coverage of the primary (whole-cohort) CI against the whole-cohort
  truth over every run that has one, answered or not (how the estimator behaves without the
  gate's help).

Replicate seeds are ``base + i`` (``--seed-base``, default 5000; null world + 100000), so a
cell's runs are the same on every machine. Rows of every replicate go to ``--out`` as JSON
(``{"cells": [...], "replicates": [...]}``); aggregates only (no ids, no dates).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ABSURD_MMOL_L = 0.5
"""An estimate beyond this (mmol/L) is not a treatment effect (config gate bound)."""

NULL_SEED_OFFSET = 100_000

ANSWERS = ("primary", "overlap")


def run_replicate(
    stays: int, world: str, seed: int, regime: str, threat: str | None = None
) -> dict[str, Any]:
    """One hospital through the whole pipeline; the figures of its answer and the truth.
    ``threat``: a design threat of mgca.synthetic.threats switched on in the regime's world."""
    from mgca.config import MgcaConfig
    from mgca.run import study
    from mgca.synthetic import generate
    from mgca.synthetic.threats import threat_world
    from mgca.synthetic.world import regime_world

    config = MgcaConfig.model_validate(
        {"engine": {"duckdb_threads": 1, "duckdb_memory_limit": "2GB"}}
    )
    root = Path(tempfile.mkdtemp(prefix="mgca-robust-"))
    try:
        data = root / "data"
        if threat is None:
            generate(data, n_stays=stays, world=world, seed=seed, regime=regime)
        else:
            params = threat_world(threat, world, base=regime_world(regime, world))
            generate(data, n_stays=stays, world=params, seed=seed)
        db = root / "run.duckdb"
        study.build_database(data, db, config)
        cohort = study.read_cohort(db)
        # as a run fits them: the primary weights the measured episodes back to every
        # eligible one (IPCW), so its truth is the eligible episodes' one
        eligible = study.read_secondary_tables(db).get("eligible_episodes")
        estimates, _ = study.fit_estimates(cohort, config, eligible=eligible)
        gate = study.evaluate_gate(cohort, estimates, config)
        by_name = {e["name"]: e for e in estimates}
        row: dict[str, Any] = {
            "stays": stays,
            "world": world,
            "seed": seed,
            "regime": regime,
            "episodes": len(cohort),
            "exposed_share": float(cohort["exposed"].mean()) if len(cohort) else float("nan"),
            "answered": bool(gate["passed"]),
            "answer": gate["answer"],
            "failed": gate["failed"],
            "model_spec": (by_name["primary"].get("model_spec") or {}).get("name"),
        }
        truths = study.synthetic_truths(data, cohort, config, eligible) or {}
        truth_ate = truths.get("true_effect", float("nan"))
        truth_ato = truths.get("true_effect_overlap")
        truth_ato = float("nan") if truth_ato is None else truth_ato
        for name, truth in (("primary", truth_ate), ("overlap", truth_ato)):
            entry = by_name[name]
            row[f"{name}_estimate"] = entry["estimate"]
            row[f"{name}_ci_low"] = entry["ci_low"]
            row[f"{name}_ci_high"] = entry["ci_high"]
            row[f"{name}_truth"] = truth
        answer = gate["answer"]
        row["estimate"] = row[f"{answer}_estimate"]
        row["ci_low"] = row[f"{answer}_ci_low"]
        row["ci_high"] = row[f"{answer}_ci_high"]
        row["truth"] = row[f"{answer}_truth"]
        return row
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _covers(low: Any, high: Any, truth: Any) -> float:
    if low is None or high is None or truth is None or not np.isfinite(truth):
        return float("nan")
    return float(low <= truth <= high)


def summarise(replicates: pd.DataFrame) -> pd.DataFrame:
    """One row per (stays, world): the columns described in the module docstring."""
    rows = []
    for (stays, world), cell in replicates.groupby(["stays", "world"], sort=True):
        answered = cell.loc[cell["answered"]]
        has_est = answered["estimate"].notna()
        a = answered.loc[has_est]
        covered = [_covers(r.ci_low, r.ci_high, r.truth) for r in a.itertuples()]
        population = {
            name: float(np.nanmean(cell[f"{name}_truth"].astype(float))) for name in ANSWERS
        }
        covered_population = [
            _covers(r.ci_low, r.ci_high, population[r.answer]) for r in a.itertuples()
        ]
        excludes_zero = [(r.ci_low > 0) or (r.ci_high < 0) for r in a.itertuples()]
        primary = cell.loc[cell["primary_estimate"].notna()]
        primary_cov = [
            _covers(r.primary_ci_low, r.primary_ci_high, r.primary_truth)
            for r in primary.itertuples()
        ]
        absurd_any = cell["primary_estimate"].abs().gt(ABSURD_MMOL_L)
        rows.append(
            {
                "stays": int(stays),
                "world": world,
                "replicates": len(cell),
                "episodes": float(cell["episodes"].mean()),
                "exposed": float(cell["exposed_share"].mean()),
                "answered": float(cell["answered"].mean()),
                "overlap": float((a["answer"] == "overlap").mean()) if len(a) else float("nan"),
                "bias": float((a["estimate"] - a["truth"]).mean()) if len(a) else float("nan"),
                "coverage": float(np.nanmean(covered)) if len(a) else float("nan"),
                "coverage_population": float(np.nanmean(covered_population))
                if len(a)
                else float("nan"),
                "ci_width": float((a["ci_high"] - a["ci_low"]).mean()) if len(a) else float("nan"),
                "false_positive": float(np.mean(excludes_zero))
                if world == "null" and len(a)
                else float("nan"),
                "absurd_stated": float(
                    (answered["estimate"].abs() > ABSURD_MMOL_L).sum() / len(cell)
                ),
                "absurd_any": float(absurd_any.sum() / len(cell)),
                "primary_coverage": float(np.nanmean(primary_cov))
                if len(primary)
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def markdown_table(summary: pd.DataFrame) -> str:
    """The README table: one line per cell, shares in %, mmol/L to 3 decimals."""

    def pct(x: float) -> str:
        return "—" if not np.isfinite(x) else f"{100 * x:.0f} %"

    def num(x: float) -> str:
        return "—" if not np.isfinite(x) else f"{x:+.3f}"

    head = (
        "| stays | world | runs | analysed episodes | exposed | answered | in overlap pop. | "
        "bias (mmol/L) | coverage (cohort truth) | coverage (population truth) | "
        "CI width (mmol/L) | null false-positive | absurd stated | absurd primary (any) | "
        "primary coverage (ungated) |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in summary.itertuples():
        width = "—" if not np.isfinite(r.ci_width) else f"{r.ci_width:.3f}"
        lines.append(
            f"| {r.stays:,} | {r.world} | {r.replicates} | {r.episodes:.0f} | {pct(r.exposed)} | "
            f"{pct(r.answered)} | {pct(r.overlap)} | {num(r.bias)} | {pct(r.coverage)} | "
            f"{pct(r.coverage_population)} | "
            f"{width} | {pct(r.false_positive)} | {pct(r.absurd_stated)} | "
            f"{pct(r.absurd_any)} | {pct(r.primary_coverage)} |"
        )
    return "\n".join(lines)


def _job(args: tuple[int, str, int, str, str | None]) -> dict[str, Any]:
    return run_replicate(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Replicate study: bias, coverage, false positives and the share of runs "
        "answered, per hospital size and world, on the simulator regime given.",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 2000, 4000, 8000],
        help="hospital sizes (stays)",
    )
    parser.add_argument(
        "--worlds", nargs="+", default=["effect", "null"], choices=["effect", "null"]
    )
    parser.add_argument("--replicates", type=int, default=100, help="runs per cell")
    parser.add_argument("--regime", default="ward", help="simulator regime (default: ward)")
    parser.add_argument("--seed-base", type=int, default=5000)
    parser.add_argument(
        "--threat", default=None, help="switch on this design threat (mgca.synthetic.threats)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (each runs DuckDB with one thread)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write cells and replicates here")
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        default=None,
        help="instead of running, summarise the replicates of these earlier --out files",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        frames = [
            pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["replicates"])
            for path in args.summarise
        ]
        print(markdown_table(summarise(pd.concat(frames, ignore_index=True))))
        return 0

    jobs = [
        (
            stays,
            world,
            args.seed_base + i + (NULL_SEED_OFFSET if world == "null" else 0),
            args.regime,
            args.threat,
        )
        for stays in args.sizes
        for world in args.worlds
        for i in range(args.replicates)
    ]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for k, row in enumerate(pool.map(_job, jobs, chunksize=1), start=1):
            rows.append(row)
            if k % 10 == 0 or k == len(jobs):
                print(
                    f"  {k}/{len(jobs)} runs, {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    replicates = pd.DataFrame(rows)
    summary = summarise(replicates)
    print(markdown_table(summary))
    print(
        f"total {time.perf_counter() - started:.0f} s for {len(jobs)} runs "
        f"(regime {args.regime}, {args.jobs} workers)"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "cells": summary.to_dict("records"),
                    "replicates": replicates.drop(columns=["seed"]).to_dict("records"),
                },
                indent=1,
                default=str,
            ),
            encoding="utf-8",
        )
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

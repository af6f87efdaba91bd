"""Null-world false-positive rate of the correction secondaries, with and without the
``detection_bias`` threat, over more replicates than the full threat table affords.

    python bench/secondary_null.py [--replicates 40] [--stays 3000] [--seed-base 107000]
                                   [--threats none detection_bias] [--out secondary_null.json]

Each replicate generates a null-world hospital (Mg never acts on calcium, so every contrast
of Mg repletion is 0, or 1 on a ratio scale) with the threat off (``none``) and on, runs the
real pipeline's SQL (DuckDB) and fits only the estimates scored here, on the same hospital:
the IPCW primary, the two fixed-schedule secondaries
(:mod:`mgca.analysis.estimation.fixed_schedule`), "corrected within 72 h" (logistic risk
difference) and the time-to-correction hazard ratio (both any-draw,
:mod:`mgca.analysis.estimation.secondary`). It prints, per (estimate, threat): runs, runs
with a CI, false positives (CI excluding the no-effect value), the mean estimate, the SD of
the estimates and the mean SE implied by the CI (half-width / 1.96; ratio scales on the log
scale), and the mean corrected-Ca draws per episode in (grace, window] by arm (the detection
the any-draw outcomes reward). Seeds ``--seed-base + i`` are bench/threats.py's null-world
seeds. ``--out``: aggregates only.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NO_THREAT = "none"


def _draws_by_arm(db: Path, grace: float, window: float) -> tuple[float, float]:
    """Mean corrected-Ca draws per analysed episode in (index + grace, index + window] hours,
    exposed and unexposed."""
    from mgca.run import study

    counts = study.read_table(
        db,
        f"""
        SELECT a.exposed, COUNT(c.time) AS n
        FROM analytic_cohort AS a
        LEFT JOIN calcium_corrected AS c
            ON c.encounter_id = a.encounter_id
            AND c.ca_corrected_mmol_l IS NOT NULL
            AND date_diff('second', a.index_time, c.time) / 3600.0 > {grace}
            AND date_diff('second', a.index_time, c.time) / 3600.0 <= {window}
        GROUP BY a.encounter_id, a.exposed
        """,
    )
    exposed = counts["exposed"].astype(bool)
    return float(counts.loc[exposed, "n"].mean()), float(counts.loc[~exposed, "n"].mean())


def run_replicate(threat: str, stays: int, seed: int) -> list[dict[str, Any]]:
    """One null-world hospital through the SQL and the scored fits: one row per estimate."""
    from mgca.analysis.estimation import fixed_schedule, secondary
    from mgca.analysis.estimation.missing_outcome import fit_primary_ipcw
    from mgca.config import MgcaConfig
    from mgca.run import study
    from mgca.synthetic import generate
    from mgca.synthetic.threats import threat_world
    from mgca.synthetic.world import default_world

    warnings.simplefilter("ignore")  # separation warnings of the logistic fits; counted below
    config = MgcaConfig.model_validate(
        {"engine": {"duckdb_threads": 1, "duckdb_memory_limit": "2GB"}}
    )
    cfg, est = config.study, config.estimation
    world = default_world("null") if threat == NO_THREAT else threat_world(threat, "null")
    root = Path(tempfile.mkdtemp(prefix="mgca-secnull-"))
    try:
        generate(root / "data", n_stays=stays, world=world, seed=seed)
        db = root / "run.duckdb"
        study.build_database(root / "data", db, config)
        cohort = study.read_cohort(db)
        tables = study.read_secondary_tables(db)
        eligible, correction = tables["eligible_episodes"], tables["index_calcium_correction"]
        fits: dict[str, Callable[[], dict[str, Any]]] = {
            "primary": lambda: fit_primary_ipcw(eligible, cfg, est)[0],
            fixed_schedule.HORIZON_NAME: lambda: fixed_schedule.corrected_at_horizon(
                eligible, cfg, est
            ),
            fixed_schedule.FIXED_LOOKS_NAME: lambda: fixed_schedule.corrected_at_fixed_looks(
                eligible, tables["index_calcium_fixed_looks"], cfg, est
            ),
            "calcium_corrected_risk_difference": lambda: secondary.correction_within_window(
                cohort, correction, cfg
            )[0],
            "time_to_calcium_correction_hazard_ratio": lambda: secondary.time_to_correction(
                cohort, correction, cfg
            ),
        }
        draws1, draws0 = _draws_by_arm(db, cfg.grace_hours, cfg.correction_window_hours)
        rows = []
        for name, fit in fits.items():
            try:
                e = fit()
                values = (e["estimate"], e["ci_low"], e["ci_high"])
            except Exception:  # a model that cannot be fitted is a run without a CI
                values = (None, None, None)
            rows.append(
                {
                    "threat": threat,
                    "seed": seed,
                    "stays": stays,
                    "name": name,
                    "ratio": name.endswith("hazard_ratio"),
                    "estimate": values[0],
                    "ci_low": values[1],
                    "ci_high": values[2],
                    "draws_exposed": draws1,
                    "draws_unexposed": draws0,
                }
            )
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (estimate, threat): runs, runs with a finite CI, false positives, mean
    estimate, SD of the estimates, mean implied SE (log scale for ratios), draws by arm."""
    out = []
    for (name, threat), cell in rows.groupby(["name", "threat"], sort=False):
        ratio = bool(cell["ratio"].iloc[0])
        est, low, high = (
            pd.to_numeric(cell[k], errors="coerce").to_numpy(float)
            for k in ("estimate", "ci_low", "ci_high")
        )
        ok = np.isfinite(est) & np.isfinite(low) & np.isfinite(high)
        if ratio:
            ok &= (low > 0) & (est > 0)
        null = 1.0 if ratio else 0.0
        rejected = int(((low[ok] > null) | (high[ok] < null)).sum())
        scale = np.log if ratio else (lambda x: x)
        e, lo, hi = scale(est[ok]), scale(low[ok]), scale(high[ok])
        out.append(
            {
                "estimate": name,
                "threat": threat,
                "runs": len(cell),
                "with_ci": int(ok.sum()),
                "false_positives": rejected,
                "false_positive_rate": rejected / ok.sum() if ok.sum() else math.nan,
                "mean_estimate": float(np.mean(est[ok])) if ok.any() else math.nan,
                "sd_estimate": float(np.std(e, ddof=1)) if ok.sum() > 1 else math.nan,
                "mean_se": float(np.mean((hi - lo) / 3.92)) if ok.any() else math.nan,
                "draws_exposed": float(cell["draws_exposed"].mean()),
                "draws_unexposed": float(cell["draws_unexposed"].mean()),
            }
        )
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--stays", type=int, default=3000)
    parser.add_argument("--seed-base", type=int, default=107_000)
    parser.add_argument("--threats", nargs="+", default=[NO_THREAT, "detection_bias"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for threat in args.threats:
        for i in range(args.replicates):
            rows.extend(run_replicate(threat, args.stays, args.seed_base + i))
            print(f"  {threat}: {i + 1}/{args.replicates}", flush=True)
    summary = summarise(pd.DataFrame(rows))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(4).to_string(index=False))
    if args.out:
        args.out.write_text(
            json.dumps({"summary": summary.to_dict("records"), "replicates": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

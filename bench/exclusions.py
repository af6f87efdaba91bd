"""Excluded populations: the primary with the eligibility exclusions and with a source that
records none of them, the ``excluded_populations`` threat on.

    python bench/exclusions.py [--replicates 8] [--stays 3000] [--worlds effect null]
                               [--bootstrap 500] [--seed-base 7000]

Each replicate generates a synthetic hospital with the threat on (women on obstetric MgSO4,
patients on citrate CRRT and on haemodialysis: :mod:`mgca.synthetic.exclusions`) and runs
the real pipeline (DuckDB, the SQL of sql/) twice:

- ``excluded``: the folder as generated; eligibility steps 5-7 exclude the three
  populations (cohort_eligibility.sql);
- ``not excluded``: the same folder without the obstetric MgSO4 and citrate-CRRT rows and
  the dialysis sessions (``strip_exclusion_records``: a source that codes none of them), so
  the members enter the cohort, the obstetric women and most dialysis patients as unexposed.

Each run's IPCW primary (``fit_primary_ipcw``) is scored against the simulator's truth over
that run's own eligible episodes (effect world; 0 in the null world), and also, for the
``not excluded`` run, against the truth of the episodes a clinician would keep (the eligible
truth of the ``excluded`` run): the estimand of the study.

Prints per world × run: eligible episodes, stays excluded at steps 5-7, truth, mean bias
(mmol/L), share of 95 % CIs containing the truth and, null world, the share excluding 0.
Replicate seeds ``--seed-base + i`` in both worlds. Aggregates only. One replicate at a time
(the machine is shared).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from mgca.analysis.estimation.missing_outcome import fit_primary_ipcw
from mgca.config import MgcaConfig
from mgca.run import study
from mgca.synthetic import generate
from mgca.synthetic.exclusions import strip_exclusion_records
from mgca.synthetic.threats import threat_world

THREAT = "excluded_populations"
EXCLUSION_STEPS = (5, 6, 7)
"""cohort_eligibility.sql steps of obstetric MgSO4, citrate CRRT and dialysis."""


def _run(data: Path, db: Path, config: MgcaConfig) -> dict:
    study.build_database(data, db, config)
    eligible = study.read_secondary_tables(db)["eligible_episodes"]
    primary, _ = fit_primary_ipcw(eligible, config.study, config.estimation)
    truth, n_eligible = study.eligible_truth(data, eligible, config) or (float("nan"), 0)
    attrition = study.read_table(db, "SELECT step_order, n_excluded FROM attrition")
    excluded = attrition.loc[attrition["step_order"].isin(EXCLUSION_STEPS), "n_excluded"]
    return {
        "n_eligible": n_eligible,
        "n_excluded": int(excluded.sum()),
        "truth": truth,
        "primary": (primary["estimate"], primary["ci_low"], primary["ci_high"]),
    }


def replicate(world: str, seed: int, stays: int, root: Path, boot: int) -> dict:
    """One hospital, both runs: estimates, intervals, truths (mmol/L) and counts."""
    config = MgcaConfig()
    config = config.model_copy(
        update={"estimation": config.estimation.model_copy(update={"bootstrap_replicates": boot})}
    )
    data = generate(
        root / f"{world}-{seed}", n_stays=stays, world=threat_world(THREAT, world), seed=seed
    )
    excluded = _run(data, root / f"{world}-{seed}.duckdb", config)
    stripped = strip_exclusion_records(data, root / f"{world}-{seed}-stripped")
    kept = _run(stripped, root / f"{world}-{seed}-stripped.duckdb", config)
    kept["clinician_truth"] = excluded["truth"]
    return {"excluded": excluded, "not excluded": kept}


def _line(world: str, name: str, reps: list[dict], truth_key: str) -> str:
    est = np.array([r["primary"][0] for r in reps])
    lo = np.array([r["primary"][1] for r in reps])
    hi = np.array([r["primary"][2] for r in reps])
    truth = np.array([r[truth_key] for r in reps])
    cover = np.mean((lo <= truth) & (truth <= hi))
    line = (
        f"{world:6s} {name:12s} vs {truth_key:15s}: eligible "
        f"{np.mean([r['n_eligible'] for r in reps]):.0f}, excluded at steps 5-7 "
        f"{np.mean([r['n_excluded'] for r in reps]):.0f}, truth {np.mean(truth):+.3f}, "
        f"estimate {np.mean(est):+.3f}, bias {np.mean(est - truth):+.3f}, cover {cover:.0%}"
    )
    if world == "null":
        line += f", fp {np.mean((lo > 0) | (hi < 0)):.0%}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--stays", type=int, default=3000)
    parser.add_argument("--worlds", nargs="+", default=["effect", "null"])
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--seed-base", type=int, default=7000)
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"{args.replicates} replicates x {args.stays} stays per world, threat {THREAT} on; "
        "bias = estimate − truth (mmol/L)"
    )
    for world in args.worlds:
        with tempfile.TemporaryDirectory(prefix="mgca-exclusions-") as tmp:
            reps = [
                replicate(world, args.seed_base + i, args.stays, Path(tmp), args.bootstrap)
                for i in range(args.replicates)
            ]
        print(_line(world, "excluded", [r["excluded"] for r in reps], "truth"), flush=True)
        kept = [r["not excluded"] for r in reps]
        print(_line(world, "not excluded", kept, "truth"), flush=True)
        if world == "effect":
            print(_line(world, "not excluded", kept, "clinician_truth"), flush=True)
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

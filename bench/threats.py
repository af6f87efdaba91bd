"""The threat table: bias, coverage and false-positive rate of every estimate, each threat on
and off.

    python bench/threats.py [--threats detection_bias icu_retests ...] [--worlds effect null]
                            [--replicates 8] [--stays 3000] [--regime default] [--jobs 1]
                            [--sensitivity] [--out bench/threats.json]
    python bench/threats.py --summarise bench/threats.json [more.json ...]
                            [--blocks estimates secondary]

Every threat is read from :data:`mgca.synthetic.threats.THREATS` (the one registry; default:
all of them). For each replicate seed the same hospital is generated with no threat
(``none``: the ``--regime`` world) and with each threat switched on, and run through the
real pipeline (DuckDB file, the SQL of sql/, :func:`mgca.run.study.fit_all`: the five
estimates, the secondary analyses and every other block ``fit_all`` returns; with
``--sensitivity`` also the sensitivity analyses, which re-derive cohorts and cost more).

Every entry with ``name``, ``estimate``, ``ci_low`` and ``ci_high`` is scored, whatever block
it is in, so an estimate added later is in the table without touching this file; entries a
run withholds by design (per arm only) are scored instead from the contrast the run would
have estimated, in the block ``withheld_by_design`` (:func:`withheld_contrasts`). Its truth:

- the effect world: the simulator's replayed true effect of the run's own cohort for the
  estimates that target it (:data:`COHORT_TRUTH`: primary, its empirically calibrated
  interval, IPW, AIPW, crude difference; the overlap estimate against the overlap-weighted
  truth); no truth for the others (their
  bias and coverage are shown as "—");
- the null world: Mg does nothing, so every contrast of Mg repletion has its no-effect value
  (0 on a difference scale, 1 on a ratio scale) except the entries of :data:`NO_NULL_TRUTH`
  (not a contrast of Mg repletion). The false-positive rate is the share of runs whose 95 %
  CI excludes that value.

Replicate seeds are ``--seed-base + i`` (null world + 100000), the same for every threat, so
"on" and "off" are paired. Runs go replicate by replicate (every threat and world of seed
``i`` before seed ``i + 1``), and ``--out`` is rewritten after every run with
``{"runs_done", "runs_planned", "cells": [...], "replicates": [...]}``, so a bench stopped
part-way still gives balanced cells: aggregates only (estimates and counts, no ids, no
dates).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NO_THREAT = "none"
"""The threat state of the baseline world (every switch off)."""

NULL_SEED_OFFSET = 100_000

FPR_TARGET = 0.06
"""A false-positive rate above this (null world, 95 % CI) fails the design's target."""

COHORT_TRUTH: dict[str, tuple[str, ...]] = {
    "primary": ("true_effect",),
    "primary_complete_case": ("true_effect_complete_case", "true_effect"),
    "ipw": ("true_effect_complete_case", "true_effect"),
    "doubly_robust": ("true_effect_complete_case", "true_effect"),
    "unadjusted_difference": ("true_effect_complete_case", "true_effect"),
    "overlap": ("true_effect_overlap",),
    "calibration": ("true_effect",),
}
"""Effect world: the estimates whose target is a replayed cohort truth, and its key of
:func:`mgca.run.study.synthetic_truths` (the first one present): the IPCW primary describes
every eligible episode (``true_effect``), the other adjusted estimates the episodes with a
measured outcome (``true_effect_complete_case``, the same as ``true_effect`` when a run has
no eligible-episode table)."""

NO_NULL_TRUTH: dict[str, str] = {
    "naive_before_after": "a before/after change among the treated, not a contrast of arms",
    "calcium_without_mg_effect": "calcium supplementation vs none, not a contrast of Mg",
    "calcium_alone_effect": "calcium supplementation vs none, not a contrast of Mg",
}
"""Entries with no known value in the null world, and why."""


def null_value(entry: dict[str, Any]) -> float | None:
    """The no-effect value of ``entry`` in the null world (1 on a ratio scale, else 0), or
    None for the entries of :data:`NO_NULL_TRUTH`."""
    if entry["name"] in NO_NULL_TRUTH:
        return None
    scale = f"{entry.get('scale') or ''} {entry.get('unit') or ''}".lower()
    return 1.0 if "ratio" in scale else 0.0


SCORED_KEYS = frozenset({"estimate", "ci_low", "ci_high"})
"""The keys that make an entry scored: a point estimate and its 95 % CI."""


def scored_entries(blocks: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every ``(block, entry)`` with a name and an estimate/CI, in any list-valued block
    (one level of nesting: ``{"analyses": [...]}`` blocks too), and every block that is
    itself one estimate (``per_protocol``, ``calibration``: a dict with an estimate/CI),
    named by its block. Entries ``withheld_by_design`` carry no contrast and are left out.
    """
    out: list[tuple[str, dict[str, Any]]] = []

    def visit(block: str, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                # an entry withheld by design (per arm only) has no contrast to score
                if (
                    isinstance(item, dict)
                    and {"name", *SCORED_KEYS} <= set(item)
                    and not item.get("withheld_by_design")
                ):
                    out.append((block, item))
        elif isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, list):
                    visit(f"{block}.{key}", inner)

    for block, value in blocks.items():
        if isinstance(value, dict) and set(value) >= SCORED_KEYS:
            out.append((block, {**value, "name": block}))
        else:
            visit(block, value)
    return out


WITHHELD_BLOCK = "withheld_by_design"
"""Block of the contrasts a run withholds by design (the any-draw correction outcomes), fitted
here with the model functions the pipeline no longer runs, so the table shows why."""


def withheld_contrasts(
    cohort: pd.DataFrame, tables: dict[str, pd.DataFrame], config: Any
) -> list[dict[str, Any]]:
    """The any-draw contrasts (logistic risk difference and odds ratio, Cox hazard ratio) the
    run reports per arm only; a model that cannot be fitted gives an entry without a CI."""
    from mgca.analysis.estimation import secondary
    from mgca.analysis.estimation.any_draw import ANY_DRAW_DESCRIPTIVE

    correction = tables["index_calcium_correction"]
    scales = dict(
        zip(ANY_DRAW_DESCRIPTIVE, ("risk difference", "odds ratio", "hazard ratio"), strict=True)
    )
    out: list[dict[str, Any]] = []
    for names, fit in (
        (
            ANY_DRAW_DESCRIPTIVE[:2],
            lambda: secondary.correction_within_window(cohort, correction, config.study),
        ),
        (
            ANY_DRAW_DESCRIPTIVE[2:],
            lambda: [secondary.time_to_correction(cohort, correction, config.study)],
        ),
    ):
        try:
            out.extend(fit())
        except Exception as exc:  # not fitted: a run without a CI for these names
            out.extend(
                {
                    "name": n,
                    "estimate": None,
                    "ci_low": None,
                    "ci_high": None,
                    "scale": scales[n],
                    "reason": str(exc),
                }
                for n in names
            )
    return out


def run_replicate(
    threat: str, world_kind: str, stays: int, seed: int, regime: str, sensitivity: bool
) -> list[dict[str, Any]]:
    """One hospital with ``threat`` on (or none) through the pipeline: one row per scored
    estimate (threat, world, seed, block, name, estimate, ci_low, ci_high, truth)."""
    from mgca.analysis.estimation.analyses import sensitivity_block
    from mgca.config import MgcaConfig
    from mgca.engine import registry
    from mgca.run import study
    from mgca.synthetic import generate
    from mgca.synthetic.threats import threat_world
    from mgca.synthetic.world import regime_world

    warnings.simplefilter("ignore")  # per-model warnings of hundreds of fits; figures only
    config = MgcaConfig.model_validate(
        {"engine": {"duckdb_threads": 1, "duckdb_memory_limit": "2GB"}}
    )
    base = regime_world(regime, world_kind)  # type: ignore[arg-type]
    world = base if threat == NO_THREAT else threat_world(threat, base.kind, base)
    root = Path(tempfile.mkdtemp(prefix="mgca-threat-"))
    try:
        data = root / "data"
        generate(data, n_stays=stays, world=world, seed=seed)
        db = root / "run.duckdb"
        study.build_database(data, db, config)
        cohort = study.read_cohort(db)
        tables = study.read_secondary_tables(db)
        fitted = study.fit_all(cohort, tables, config)
        blocks = {k: v for k, v in fitted.items() if k not in ("figures", "notes", "gate")}
        blocks[WITHHELD_BLOCK] = withheld_contrasts(cohort, tables, config)
        if sensitivity:
            primary = next((e for e in fitted["estimates"] if e["name"] == "primary"), None)
            blocks["sensitivity"] = sensitivity_block(
                cohort,
                kidney=study.read_table(db, registry.table("index_kidney_function").select()),
                primary=primary,
                config=config,
                cohort_for=study.cohort_for(config.engine.name, db, root),
            )
        truths = study.synthetic_truths(data, cohort, config, tables.get("eligible_episodes")) or {}
        rows = []
        for block, entry in scored_entries(blocks):
            if world_kind == "null":
                truth = null_value(entry)
            else:
                keys = (
                    COHORT_TRUTH.get(entry["name"], ())
                    if block in ("estimates", "calibration")
                    else ()
                )
                truth = next((truths[k] for k in keys if truths.get(k) is not None), None)
            rows.append(
                {
                    "threat": threat,
                    "world": world_kind,
                    "stays": stays,
                    "seed": seed,
                    "episodes": len(cohort),
                    "block": block,
                    "name": entry["name"],
                    "scale": entry.get("scale"),
                    "estimate": entry["estimate"],
                    "ci_low": entry["ci_low"],
                    "ci_high": entry["ci_high"],
                    "truth": truth,
                    "reason": entry.get("reason"),
                }
            )
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def summarise(replicates: pd.DataFrame) -> pd.DataFrame:
    """One row per (block, estimate, threat, world): runs, runs with an estimate, median
    estimate, bias (mean estimate − truth; on a ratio scale mean log estimate − log truth,
    since a separated logistic fit can give an odds ratio of 1e30) and coverage (where the
    truth is known), false-positive rate (null world)."""
    rows = []
    frame = replicates.copy()
    for col in ("estimate", "ci_low", "ci_high", "truth"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    keys = ["block", "name", "world", "threat"]
    for (block, name, world, threat), cell in frame.groupby(keys, sort=False):
        fitted = cell.loc[cell[["estimate", "ci_low", "ci_high"]].notna().all(axis=1)]
        known = fitted.loc[fitted["truth"].notna()]
        ratio = "ratio" in str(cell["scale"].iloc[0] or "")
        error = (
            np.log(known["estimate"].clip(lower=1e-300)) - np.log(known["truth"])
            if ratio
            else known["estimate"] - known["truth"]
        )
        covered = (known["ci_low"] <= known["truth"]) & (known["truth"] <= known["ci_high"])
        excludes = (known["ci_low"] > known["truth"]) | (known["ci_high"] < known["truth"])
        rows.append(
            {
                "block": block,
                "name": name,
                "world": world,
                "threat": threat,
                "runs": len(cell),
                "estimated": len(fitted),
                "stays": int(cell["stays"].iloc[0]),
                "ratio_scale": ratio,
                "median_estimate": float(fitted["estimate"].median()) if len(fitted) else np.nan,
                "bias": float(error.mean()) if len(known) else np.nan,
                "coverage": float(covered.mean()) if len(known) else np.nan,
                "false_positive": float(excludes.mean())
                if world == "null" and len(known)
                else np.nan,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {t: i for i, t in enumerate(dict.fromkeys([NO_THREAT, *out["threat"]]))}
    return out.sort_values(
        ["block", "name", "world", "threat"],
        key=lambda s: s.map(order) if s.name == "threat" else s,
        kind="stable",
    ).reset_index(drop=True)


def markdown_table(summary: pd.DataFrame) -> str:
    """The README table: one line per (estimate, world, threat); shares in %, "—" where the
    truth is unknown; a false-positive rate above :data:`FPR_TARGET` is marked **bold**."""

    def pct(x: float, flag: bool = False) -> str:
        if not np.isfinite(x):
            return "—"
        text = f"{100 * x:.0f} %"
        return f"**{text}**" if flag and x > FPR_TARGET else text

    def num(x: float) -> str:
        return "—" if not np.isfinite(x) else f"{x:+.3g}" if abs(x) >= 1000 else f"{x:+.3f}"

    lines = [
        "| estimate | world | threat | runs (estimated) | stays | median estimate | bias | "
        "coverage | false-positive |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary.itertuples():
        lines.append(
            f"| {r.name} | {r.world} | {r.threat} | {r.runs} ({r.estimated}) | {r.stays:,} | "
            f"{num(r.median_estimate)} | "
            f"{num(r.bias)}{' (log)' if r.ratio_scale and np.isfinite(r.bias) else ''} | "
            f"{pct(r.coverage)} | "
            f"{pct(r.false_positive, flag=True)} |"
        )
    return "\n".join(lines)


def wide_tables(summary: pd.DataFrame) -> str:
    """The README's two threat tables, one column per threat state (``none`` first).

    1. Null world, every scored estimate: the false-positive rate (share of runs whose 95 %
       CI excludes the no-effect value), **bold** above :data:`FPR_TARGET`; "(k/n)" when only
       k of the n runs gave an interval; "—" when none did or the estimate has no null truth.
    2. Effect world, the estimates with a known truth: bias (mmol/L) / coverage.
    """

    def pct(x: float) -> str:
        text = f"{100 * x:.0f} %"
        return f"**{text}**" if x > FPR_TARGET else text

    threats = list(dict.fromkeys([NO_THREAT, *summary["threat"]]))
    label = summary["name"].where(
        summary["block"].isin(["estimates", "secondary", "negative_controls"])
        | (summary["block"] == summary["name"]),
        summary["block"] + ": " + summary["name"],
    )
    frame = summary.assign(label=label)
    header = "| estimate | " + " | ".join(threats) + " |"
    rule = "|---|" + "---:|" * len(threats)

    def cell_text(cells: pd.DataFrame, threat: str, render: Any) -> str:
        row = cells.loc[cells["threat"] == threat]
        return "—" if row.empty else render(row.iloc[0])

    def false_positive(r: Any) -> str:
        if not np.isfinite(r["false_positive"]):
            return "—"
        partial = f" ({r['estimated']}/{r['runs']})" if r["estimated"] < r["runs"] else ""
        return pct(r["false_positive"]) + partial

    def bias_coverage(r: Any) -> str:
        if not np.isfinite(r["bias"]):
            return "—"
        return f"{r['bias']:+.3f} / {100 * r['coverage']:.0f} %"

    out = ["Null world: false-positive rate of the 95 % CI", "", header, rule]
    null = frame.loc[frame["world"] == "null"]
    for name, cells in null.groupby("label", sort=True):
        if cells["false_positive"].notna().any():
            row = [cell_text(cells, t, false_positive) for t in threats]
            out.append(f"| {name} | " + " | ".join(row) + " |")
    out += ["", "Effect world: bias (mmol/L) / coverage of the 95 % CI", "", header, rule]
    effect = frame.loc[frame["world"] == "effect"]
    for name, cells in effect.groupby("label", sort=True):
        if cells["bias"].notna().any():
            row = [cell_text(cells, t, bias_coverage) for t in threats]
            out.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(out)


def write_out(path: Path, rows: list[dict[str, Any]], runs_done: int, runs_planned: int) -> None:
    """Write the cells and replicates finished so far to ``path``, atomically.

    Called after every run, so a bench stopped part-way leaves every finished replicate
    readable by ``--summarise``; ``runs_done`` of ``runs_planned`` says how far it got.
    """
    replicates = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps(
            {
                "runs_done": runs_done,
                "runs_planned": runs_planned,
                "cells": summarise(replicates).to_dict("records"),
                "replicates": replicates.drop(columns=["seed"]).to_dict("records"),
            },
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )
    tmp.replace(path)


def _job(args: tuple[str, str, int, int, str, bool]) -> list[dict[str, Any]]:
    return run_replicate(*args)


def main(argv: list[str] | None = None) -> int:
    from mgca.synthetic.threats import THREATS

    parser = argparse.ArgumentParser(
        description="Threat table: bias, coverage and false-positive rate of every estimate, "
        "each design threat of the simulator on and off.",
    )
    parser.add_argument(
        "--threats",
        nargs="+",
        default=list(THREATS),
        choices=list(THREATS),
        help="threats to switch on (default: every one); 'none' is always run",
    )
    parser.add_argument(
        "--worlds", nargs="+", default=["effect", "null"], choices=["effect", "null"]
    )
    parser.add_argument("--replicates", type=int, default=8, help="runs per cell")
    parser.add_argument("--stays", type=int, default=3000, help="stays per hospital")
    parser.add_argument("--regime", default="default", help="base simulator regime")
    parser.add_argument("--seed-base", type=int, default=7000)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--sensitivity", action="store_true", help="also score the sensitivity analyses"
    )
    parser.add_argument("--out", type=Path, default=None, help="write cells and replicates here")
    parser.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        default=None,
        help="instead of running, summarise the replicates of these earlier --out files",
    )
    parser.add_argument(
        "--blocks",
        nargs="+",
        default=None,
        help="with --summarise: only these blocks (e.g. estimates secondary)",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="with --summarise: one column per threat (the README's two tables: null-world "
        "false-positive rate, effect-world bias / coverage) instead of one line per cell",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        frames = [
            pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["replicates"])
            for path in args.summarise
        ]
        replicates = pd.concat(frames, ignore_index=True)
        if args.blocks:
            replicates = replicates.loc[replicates["block"].isin(args.blocks)]
        summary = summarise(replicates)
        print(wide_tables(summary) if args.wide else markdown_table(summary))
        return 0

    jobs = [
        (
            threat,
            world,
            args.stays,
            args.seed_base + i + (NULL_SEED_OFFSET if world == "null" else 0),
            args.regime,
            args.sensitivity,
        )
        for i in range(args.replicates)
        for threat in [NO_THREAT, *args.threats]
        for world in args.worlds
    ]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for k, result in enumerate(pool.map(_job, jobs, chunksize=1), start=1):
            rows.extend(result)
            if args.out:
                write_out(args.out, rows, runs_done=k, runs_planned=len(jobs))
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
        f"({args.stays:,} stays, regime {args.regime}, {args.jobs} workers)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Report figures of the statistical analyses: balance (love) plot, propensity overlap and a
forest plot of every mmol/L-scale estimate. Inline SVG text, deterministic (see
:func:`mgca.analysis.report.figures.figure_to_svg`); aggregates only.

The overlap histogram shows counts of episodes per propensity-score bin: a bin holding from 1
to ``threshold − 1`` episodes of an arm is not drawn (the caption says so), so no small count
can be read off the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mgca.analysis.estimation.diagnostics import SMD_LIMIT
from mgca.analysis.privacy import suppress_count
from mgca.analysis.report.figures import EXPOSED_COLOUR, UNEXPOSED_COLOUR, figure_to_svg
from mgca.analysis.report.format import format_ci, format_number

OVERLAP_BINS = 10
"""Propensity-score histogram bins of width 0.1 on [0, 1] (wide, so that few bins fall
below the small-cell threshold and are hidden)."""


def love_plot(balance: pd.DataFrame) -> str:
    """|SMD| of each covariate before (open) and after (filled) weighting, line at 0.1.

    ``balance`` is :func:`mgca.analysis.estimation.diagnostics.covariate_balance` output (unitless).
    """
    frame = balance.iloc[::-1].reset_index(drop=True)
    height = 1.2 + 0.22 * len(frame)
    fig = Figure(figsize=(6.4, height), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(frame))
    ax.scatter(
        frame["smd_before"].abs(),
        y,
        facecolors="none",
        edgecolors="0.35",
        s=22,
        label="before weighting",
    )
    ax.scatter(frame["smd_after"].abs(), y, color=EXPOSED_COLOUR, s=22, label="after weighting")
    ax.axvline(SMD_LIMIT, color="0.4", ls="--", lw=1)
    labels = [
        c + ("" if m else " †") for c, m in zip(frame["covariate"], frame["in_model"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("|standardised mean difference| (given Mg − not)")
    ax.set_xlim(left=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return figure_to_svg(fig)


def overlap_histogram(score: np.ndarray, treat: np.ndarray, threshold: int) -> str:
    """Mirrored histogram of propensity scores: exposed up, unexposed down (episodes per bin).

    Bins with 1 to ``threshold − 1`` episodes of an arm are left out (drawn as nothing); the
    bar heights are rounded as the count rule says (``threshold``: a ``CountRule``).
    """
    edges = np.linspace(0.0, 1.0, OVERLAP_BINS + 1)
    fig = Figure(figsize=(6.4, 3.0), layout="constrained")
    ax = fig.add_subplot()
    t = np.asarray(treat, dtype=float) == 1
    for mask, sign, colour, label in (
        (t, 1, EXPOSED_COLOUR, "given Mg"),
        (~t, -1, UNEXPOSED_COLOUR, "not given Mg"),
    ):
        counts, _ = np.histogram(np.asarray(score)[mask], bins=edges)
        # small bins drawn as nothing; the others rounded when ``threshold`` is a CountRule
        shown = np.array([suppress_count(int(n), threshold) or 0 for n in counts])
        ax.bar(
            edges[:-1],
            sign * shown,
            width=np.diff(edges),
            align="edge",
            color=colour,
            alpha=0.8,
            label=label,
            edgecolor="white",
            linewidth=0.5,
        )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Propensity score: P(Mg given within the grace period | baseline)")
    ax.set_ylabel("Episodes per bin")
    ax.yaxis.set_major_formatter(lambda v, _: f"{abs(int(v))}")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False)
    return figure_to_svg(fig)


def forest_rows(
    results: Mapping[str, Any], labels: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every estimate in mmol/L with a CI: estimates, secondary entries whose unit is
    ``mmol/L`` and sensitivity analyses; ``{"group", "label", "estimate", "ci_low",
    "ci_high"}`` in report order."""
    labels = labels or {}
    rows: list[dict[str, Any]] = []
    sens = (results.get("sensitivity") or {}).get("analyses") or []
    for group, entries in (
        ("primary estimators", results.get("estimates") or []),
        ("secondary", results.get("secondary") or []),
        ("sensitivity", sens),
    ):
        for e in entries:
            if e.get("unit") != "mmol/L" or e.get("name") == "naive_before_after":
                continue
            if any(e.get(k) is None for k in ("estimate", "ci_low", "ci_high")):
                continue
            # a statistic over a hidden group is withheld (disclosure control), even when an
            # entry reaches here unsuppressed: the plot prints its numbers
            if e.get("withheld") or any(
                k in e and e[k] is None for k in ("n", "n_exposed", "n_unexposed")
            ):
                continue
            name = e.get("name", "")
            rows.append(
                {
                    "group": "unadjusted contrast" if name == "unadjusted_difference" else group,
                    "label": labels.get(name) or name.replace("_", " "),
                    "estimate": float(e["estimate"]),
                    "ci_low": float(e["ci_low"]),
                    "ci_high": float(e["ci_high"]),
                }
            )
    return rows


def forest_plot(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Estimates with 95 % CIs (mmol/L), one line each, grouped, each row's estimate and CI
    printed at its right; ``None`` when there are none."""
    if not rows:
        return None
    fig = Figure(figsize=(6.4, 1.0 + 0.28 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    colours = {
        "primary estimators": EXPOSED_COLOUR,
        "secondary": "0.25",
        "sensitivity": UNEXPOSED_COLOUR,
        "calibrated": "0.0",
    }
    for yi, row in zip(y, rows, strict=True):
        colour = colours.get(row["group"], "0.25")
        ax.plot([row["ci_low"], row["ci_high"]], [yi, yi], color=colour, lw=1.5)
        ax.plot(row["estimate"], yi, "s", color=colour, ms=4)
    ax.axvline(0, color="0.4", ls="--", lw=1)
    short = {
        "primary estimators": "primary",
        "secondary": "secondary",
        "sensitivity": "sensitivity",
        "calibrated": "primary",
    }
    ax.set_yticks(
        y, [f"{r['label']} ({short.get(r['group'], r['group'])})" for r in rows], fontsize=7
    )
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_xlabel("Difference in calcium, mmol/L (95 % CI)")
    ax.spines[["top", "right"]].set_visible(False)
    # the numbers beside each row, so the plot reads on its own (same formatter as the tables)
    values = ax.twinx()
    values.set_ylim(ax.get_ylim())
    values.set_yticks(
        y,
        [f"{format_number(r['estimate'], signed=True)} ({format_ci(r)})" for r in rows],
        fontsize=7,
    )
    values.tick_params(axis="y", length=0)
    values.spines[["top", "right", "left"]].set_visible(False)
    return figure_to_svg(fig)

"""Figures for the report, returned as inline SVG text (no external resources, no dates).

Figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``: no pyplot
global state, no GUI backend) and saved as SVG with a fixed ``svg.hashsalt`` and no
metadata, so the same input gives byte-identical output on every run.
"""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from mgca.analysis.privacy import display_count, display_counts, is_small
from mgca.config import StudyConfig

EXPOSED_COLOUR = "#0072B2"  # Okabe-Ito blue
UNEXPOSED_COLOUR = "#D55E00"  # Okabe-Ito vermillion
_SVG_RC = {"svg.hashsalt": "mgca", "svg.fonttype": "none", "font.size": 9}
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


def group_label(exposed: bool, study: StudyConfig) -> str:
    """Legend/column label of an exposure group, e.g. "Mg repletion within 6 h"."""
    prefix = "Mg repletion" if exposed else "No Mg repletion"
    return f"{prefix} within {study.grace_hours} h"


def figure_to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element string (no XML prolog or DOCTYPE), deterministic."""
    buf = io.StringIO()
    with mpl.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    return text[text.index("<svg") :].strip() + "\n"


def _plottable(summary: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Bins shown: at least ``threshold`` episodes (and at least 2, for an SD); adds CI bounds."""
    keep = ~summary["n_episodes"].map(lambda n: is_small(n, threshold)) & (
        summary["n_episodes"] >= 2
    )
    df = summary.loc[keep].copy()
    n = df["n_episodes"].astype(float)
    half = stats.t.ppf(0.975, n - 1) * df["sd_ca_corrected_mmol_l"] / np.sqrt(n)
    df["ci_low"] = df["mean_ca_corrected_mmol_l"] - half
    df["ci_high"] = df["mean_ca_corrected_mmol_l"] + half
    return df


def calcium_trajectory_figure(summary: pd.DataFrame, threshold: int, study: StudyConfig) -> str:
    """The trajectory figure (``calcium_trajectory_plot``) as inline SVG text for the report."""
    return figure_to_svg(calcium_trajectory_plot(summary, threshold, study))


def calcium_trajectory_plot(summary: pd.DataFrame, threshold: int, study: StudyConfig) -> Figure:
    """Mean albumin-corrected Ca (mmol/L, ± 95 % CI) by hours from index, one line per group.

    ``summary`` is the ``calcium_trajectory_summary`` table (ARCHITECTURE.md): one row per
    ``exposed`` group and ``hours_bin_start`` (h from index). Each bin is drawn at its midpoint;
    bins with fewer than ``threshold`` episodes are not drawn (gaps in the line). The number of
    episodes per bin is printed under the axis, small counts as ``<threshold``. Also drawn:
    index (time zero), the grace period, the outcome window and the hypocalcaemia threshold.
    """
    width = study.trajectory_bin_hours
    starts = np.arange(-study.trajectory_before_hours, study.trajectory_after_hours, width)
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(0, study.grace_hours, color="0.85", lw=0, label="Grace period (exposure decided)")
    lo = study.horizon_hours - study.outcome_tolerance_hours
    hi = study.horizon_hours + study.outcome_tolerance_hours
    ax.axvspan(lo, hi, facecolor="none", edgecolor="0.75", hatch="//", lw=0, label="Outcome window")
    ax.axvline(0, color="black", lw=1)
    ax.axhline(
        study.ca_corrected_low_mmol_l,
        color="0.3",
        ls="--",
        lw=1,
        label=f"Hypocalcaemia threshold ({study.ca_corrected_low_mmol_l:.2f} mmol/L)",
    )

    shown = _plottable(summary, threshold)
    counts_rows = []
    for exposed, colour in ((True, EXPOSED_COLOUR), (False, UNEXPOSED_COLOUR)):
        group = shown.loc[shown["exposed"].astype(bool) == exposed].set_index("hours_bin_start")
        group = group.reindex(starts)  # hidden or empty bins become gaps
        x = starts + width / 2
        ax.fill_between(x, group["ci_low"], group["ci_high"], color=colour, alpha=0.18, lw=0)
        ax.plot(
            x,
            group["mean_ca_corrected_mmol_l"],
            color=colour,
            marker="o",
            ms=3,
            lw=1.5,
            label=group_label(exposed, study),
        )
        all_bins = summary.loc[summary["exposed"].astype(bool) == exposed]
        n_by_bin = all_bins.set_index("hours_bin_start")["n_episodes"].reindex(starts, fill_value=0)
        counts_rows.append((colour, display_counts(n_by_bin, threshold)))

    if shown.empty:
        ax.text(
            0.5,
            0.5,
            f"No bin has {threshold} or more episodes to show",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.3",
        )
    ax.set_xlim(starts[0], starts[-1] + width)
    ax.set_xticks(np.append(starts, starts[-1] + width))
    ax.set_xlabel("Hours from index (time zero)")
    ax.set_ylabel("Albumin-corrected Ca (mmol/L)")
    ax.spines[["top", "right"]].set_visible(False)
    for row, (colour, labels) in enumerate(counts_rows):
        for start, label in zip(starts, labels, strict=True):
            ax.annotate(
                label,
                xy=(start + width / 2, 0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -34 - 10 * row),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=7,
                color=colour,
                annotation_clip=False,
            )
    ax.annotate(
        "Episodes per bin:",
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(-4, -34),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=7,
        annotation_clip=False,
    )
    handles, labels = ax.get_legend_handles_labels()
    order = [*range(len(handles) - 2, len(handles)), *range(len(handles) - 2)]  # groups first
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside upper center",
        fontsize=7,
        frameon=False,
        ncols=3,
    )
    return fig


def trajectory_caption(threshold: int, study: StudyConfig) -> str:
    """Caption (plain text) for ``calcium_trajectory_figure``."""
    return (
        f"Mean albumin-corrected calcium (mmol/L) in {study.trajectory_bin_hours}-hour bins "
        f"from {study.trajectory_before_hours} h before to {study.trajectory_after_hours} h "
        "after index (time zero, the draw of the later qualifying lab), by whether magnesium "
        f"was given within {study.grace_hours} h of index (grey band: grace period; hatched: "
        f"outcome window {study.horizon_hours} ± {study.outcome_tolerance_hours} h). Points "
        "are bin midpoints; shaded bands are 95 % confidence intervals from the standard "
        "deviation of results over the square root of the number of episodes in the bin. "
        f"Bins with fewer than {threshold} episodes are not drawn (gaps); the episode counts "
        f"printed under the axis show counts below {threshold} as <{threshold}. The dashed "
        "line is the hypocalcaemia threshold. Descriptive only: the groups differ at baseline "
        "and calcium is re-tested more often when low."
    )


MEASURES: dict[str, str] = {
    "calcium_corrected": "Albumin-corrected Ca",
    "calcium_ionized": "Ionized Ca",
    "magnesium": "Serum Mg",
    "pth": "Intact PTH",
}
"""Panels of the analyte trajectory figure, in order: ``measure`` value → axis title."""
PTH_NG_L_TO_PMOL_L = 0.106
"""pg/mL (= ng/L) × 0.106 = pmol/L, as in sql/reference/unit_conversions.csv."""
_UNITS = {"calcium_corrected": "mmol/L", "calcium_ionized": "mmol/L", "magnesium": "mmol/L"}


def _reference_line(measure: str, study: StudyConfig) -> tuple[float, str] | None:
    """The configured threshold drawn on a panel (value in the panel's unit, legend text)."""
    if measure == "calcium_corrected":
        return study.ca_corrected_low_mmol_l, "low"
    if measure == "calcium_ionized":
        return study.ca_ionized_low_mmol_l, "low"
    if measure == "magnesium":
        return study.mg_low_mmol_l, "low"
    if measure == "pth":
        return round(study.pth_upper_ng_l * PTH_NG_L_TO_PMOL_L, 1), "upper limit"
    return None


def _with_ci(summary: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Bins shown (≥ threshold and ≥ 2 episodes) with a t-based 95 % CI over episodes."""
    keep = ~summary["n_episodes"].map(lambda n: is_small(n, threshold)) & (
        summary["n_episodes"] >= 2
    )
    df = summary.loc[keep].copy()
    n = df["n_episodes"].astype(float)
    half = stats.t.ppf(0.975, n - 1) * df["sd_value"].astype(float) / np.sqrt(n)
    df["ci_low"] = df["mean_value"] - half
    df["ci_high"] = df["mean_value"] + half
    return df


def analyte_trajectory_figure(summary: pd.DataFrame, threshold: int, study: StudyConfig) -> str:
    """Mean (95 % CI) corrected Ca, ionized Ca, Mg and PTH by hours from index, by group.

    ``summary`` is the ``analyte_trajectory_summary`` table (ARCHITECTURE.md): one row per
    ``measure``, ``exposed`` group and ``hours_bin_start`` with ``mean_value``/``sd_value``
    over episodes. One panel per measure (2 × 2); bins with fewer than ``threshold`` episodes
    are not drawn; a panel with nothing to show says so. Grey band: grace period; dashed line:
    the configured threshold (PTH: upper reference limit, converted to pmol/L).
    """
    width = study.trajectory_bin_hours
    starts = np.arange(-study.trajectory_before_hours, study.trajectory_after_hours, width)
    shown = _with_ci(summary, threshold)
    fig = Figure(figsize=(7.5, 6.2), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (measure, title) in zip(axes, MEASURES.items(), strict=True):
        unit = _UNITS.get(measure, "pmol/L")
        ax.axvspan(0, study.grace_hours, color="0.88", lw=0)
        ax.axvline(0, color="black", lw=0.8)
        ref = _reference_line(measure, study)
        if ref is not None:
            ax.axhline(ref[0], color="0.35", ls="--", lw=0.8)
        panel = shown.loc[shown["measure"] == measure]
        for exposed, colour in ((True, EXPOSED_COLOUR), (False, UNEXPOSED_COLOUR)):
            group = panel.loc[panel["exposed"].astype(bool) == exposed]
            group = group.set_index("hours_bin_start").reindex(starts)
            x = starts + width / 2
            ax.fill_between(x, group["ci_low"], group["ci_high"], color=colour, alpha=0.18, lw=0)
            ax.plot(
                x,
                group["mean_value"],
                color=colour,
                marker="o",
                ms=2.5,
                lw=1.2,
                label=group_label(exposed, study),
            )
        if panel.empty:
            ax.text(
                0.5,
                0.5,
                f"No bin has {threshold} or more episodes",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="0.3",
                fontsize=8,
            )
        ax.set_title(f"{title} ({unit})", fontsize=9)
        ax.set_xlim(starts[0], starts[-1] + width)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[2:]:
        ax.set_xlabel("Hours from index (time zero)")
        ax.set_xticks(np.arange(starts[0], starts[-1] + width + 1, 2 * width))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", fontsize=7, frameon=False, ncols=2)
    return figure_to_svg(fig)


def analyte_trajectory_caption(threshold: int, study: StudyConfig) -> str:
    """Caption (plain text) for ``analyte_trajectory_figure``."""
    return (
        f"Mean (95 % CI) of each measure in {study.trajectory_bin_hours}-hour bins from "
        f"{study.trajectory_before_hours} h before to {study.trajectory_after_hours} h after "
        f"index, by whether magnesium was given within {study.grace_hours} h (grey band). "
        "Each episode's results in a bin are averaged first, so the CI is over episodes. "
        f"Bins with fewer than {threshold} episodes are not drawn. Dashed lines: the "
        f"configured thresholds (corrected Ca {study.ca_corrected_low_mmol_l:.2f}, ionized Ca "
        f"{study.ca_ionized_low_mmol_l:.2f}, Mg {study.mg_low_mmol_l:.2f} mmol/L; PTH upper "
        f"limit {study.pth_upper_ng_l:g} ng/L = "
        f"{study.pth_upper_ng_l * PTH_NG_L_TO_PMOL_L:.1f} pmol/L). "
        "Ionized Ca and PTH are measured only in some patients, mostly the sicker ones: "
        "descriptive only."
    )


def trajectory_sample_figure(sample: pd.DataFrame, threshold: int, study: StudyConfig) -> str:
    """Individual corrected Ca and Mg over hours from index for a random sample of episodes.

    ``sample`` is the ``trajectory_sample`` table: ``exposed``, ``sample_number`` (a
    pseudonym), ``measure`` (``calcium_corrected``, ``magnesium``), ``hours_from_index``
    (whole hours), ``value``. SQL has already left out groups below ``threshold``; one thin
    line per episode, coloured by group, two panels side by side.
    """
    fig = Figure(figsize=(7.5, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    panels = (
        ("calcium_corrected", study.ca_corrected_low_mmol_l),
        ("magnesium", study.mg_low_mmol_l),
    )
    for ax, (measure, low) in zip(axes, panels, strict=True):
        ax.axvspan(0, study.grace_hours, color="0.88", lw=0)
        ax.axvline(0, color="black", lw=0.8)
        ax.axhline(low, color="0.35", ls="--", lw=0.8)
        rows = sample.loc[sample["measure"] == measure]
        for exposed, colour in ((True, EXPOSED_COLOUR), (False, UNEXPOSED_COLOUR)):
            group = rows.loc[rows["exposed"].astype(bool) == exposed]
            n_drawn = group["sample_number"].nunique()
            first = True
            for _, episode in group.groupby("sample_number", sort=True):
                episode = episode.sort_values(["hours_from_index", "value"])
                ax.plot(
                    episode["hours_from_index"],
                    episode["value"],
                    color=colour,
                    lw=0.7,
                    alpha=0.55,
                    marker=".",
                    ms=2,
                    label=None
                    if not first
                    else f"{group_label(exposed, study)} "
                    f"({display_count(n_drawn, threshold)} episodes drawn)",
                )
                first = False
        ax.set_title(f"{MEASURES[measure]} (mmol/L)", fontsize=9)
        ax.set_xlabel("Hours from index (time zero)")
        ax.set_xlim(-study.trajectory_before_hours, study.trajectory_after_hours)
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", fontsize=7, frameon=False, ncols=2)
    return figure_to_svg(fig)


def trajectory_sample_caption(threshold: int, study: StudyConfig, size: int) -> str:
    """Caption (plain text) for ``trajectory_sample_figure``."""
    return (
        f"Individual results of up to {size} randomly drawn analysed episodes per group "
        f"(seeded; groups with fewer than {threshold} episodes are not sampled), hours from "
        "index rounded to whole hours; no identifiers or dates. Each line is one episode. "
        f"Grey band: grace period ({study.grace_hours} h); dashed lines: the low thresholds."
    )

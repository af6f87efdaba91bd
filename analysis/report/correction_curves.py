"""Time to calcium correction by arm: weighted cumulative-incidence curves with numbers at risk.

From the per-episode table ``index_calcium_correction`` (``hours_to_event``, ``corrected``:
first corrected Ca ≥ the low threshold after index, censored at the last corrected Ca before
discharge) joined to the analytic cohort on ``encounter_id``. Each arm's curve is
1 − Kaplan–Meier of "not yet corrected", weighted by stabilised inverse-probability weights of
the primary propensity model (:func:`mgca.analysis.estimation.propensity.fit_propensity`), so
both arms stand for the whole cohort (adjusted curves); without a propensity fit, unweighted.

Disclosure control: each curve stops where its risk set falls below the small-cell threshold
(the last steps of a small risk set would show single episodes), and the numbers at risk
under the figure go through :func:`mgca.analysis.privacy.display_count`. Aggregates only: no
id, no date, hours from index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mgca.analysis.estimation.models import EXPOSURE, InsufficientDataError
from mgca.analysis.estimation.propensity import ate_weights, fit_propensity
from mgca.analysis.privacy import display_count
from mgca.analysis.report.figures import EXPOSED_COLOUR, UNEXPOSED_COLOUR, figure_to_svg

AT_RISK_EVERY_HOURS = 12
"""Numbers at risk are shown every this many hours from index."""


@dataclass
class ArmCurve:
    """One arm: step times (h), cumulative incidence of correction at and after each, and
    the unweighted numbers at risk at the figure's tick times (raw; shown suppressed)."""

    label: str
    times: np.ndarray
    incidence: np.ndarray
    at_risk: list[int] = field(default_factory=list)


def weighted_cumulative_incidence(
    hours: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1 − weighted Kaplan–Meier: the distinct event/censoring times (h), the cumulative
    incidence just after each, and the unweighted risk set at each (events before censorings
    at a tied time, as Kaplan–Meier does).

    >>> t, f, n = weighted_cumulative_incidence(np.array([1., 2., 2., 3.]),
    ...                                         np.array([1, 1, 0, 1]))
    >>> t.tolist(), [round(float(x), 3) for x in f], n.tolist()
    ([1.0, 2.0, 3.0], [0.25, 0.5, 1.0], [4, 3, 1])
    """
    hours = np.asarray(hours, dtype=float)
    event = np.asarray(event, dtype=bool)
    w = np.ones_like(hours) if weights is None else np.asarray(weights, dtype=float)
    times = np.unique(hours)
    survival, incidence, risk = 1.0, [], []
    for t in times:
        at_risk = hours >= t
        died = at_risk & (hours == t) & event
        n_w = w[at_risk].sum()
        if n_w > 0:
            survival *= 1.0 - w[died].sum() / n_w
        incidence.append(1.0 - survival)
        risk.append(int(at_risk.sum()))
    return times, np.array(incidence), np.array(risk)


def correction_curves(
    cohort: pd.DataFrame,
    correction: pd.DataFrame,
    threshold: int,
    horizon_hours: int,
    weights: np.ndarray | None = None,
) -> list[ArmCurve]:
    """Each arm's curve up to ``horizon_hours`` (``correction_window_hours``), cut where its
    risk set falls below ``threshold``; ``weights`` (one per cohort row, e.g. stabilised IPW)
    adjust the curves. Episodes with no ``hours_to_event`` are left out."""
    data = cohort[["encounter_id", EXPOSURE]].copy()
    data["w"] = 1.0 if weights is None else np.asarray(weights, dtype=float)
    data = data.merge(
        correction[["encounter_id", "hours_to_event", "corrected"]], on="encounter_id"
    ).dropna(subset=["hours_to_event"])
    ticks = np.arange(0, horizon_hours + 1, AT_RISK_EVERY_HOURS)
    curves = []
    for exposed, label in ((True, "Given Mg"), (False, "Not given Mg")):
        arm = data[data[EXPOSURE].astype(bool) == exposed]
        hours = arm["hours_to_event"].to_numpy(dtype=float)
        event = arm["corrected"].astype(bool).to_numpy() & (hours <= horizon_hours)
        hours = np.minimum(hours, horizon_hours)
        t, f, n = weighted_cumulative_incidence(hours, event, arm["w"].to_numpy())
        keep = n >= threshold  # the risk set only shrinks: a prefix
        curve = ArmCurve(label, np.concatenate([[0.0], t[keep]]), np.concatenate([[0.0], f[keep]]))
        curve.at_risk = [int((hours >= tick).sum()) for tick in ticks]
        curves.append(curve)
    return curves


def correction_figure(curves: list[ArmCurve], threshold: int, horizon_hours: int) -> str | None:
    """SVG: the arms' cumulative incidence of correction (step curves) with the numbers at
    risk (suppressed below ``threshold``) in a row under the axis; ``None`` when no arm has
    a curve."""
    if not curves or all(len(c.times) <= 1 for c in curves):
        return None
    fig = Figure(figsize=(6.4, 3.9), layout="constrained")
    ax, table = fig.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    colours = (EXPOSED_COLOUR, UNEXPOSED_COLOUR)
    for curve, colour in zip(curves, colours, strict=False):
        ax.step(
            curve.times,
            100 * curve.incidence,
            where="post",
            color=colour,
            lw=1.6,
            label=curve.label,
        )
    ticks = np.arange(0, horizon_hours + 1, AT_RISK_EVERY_HOURS)
    ax.set_xlim(-2, horizon_hours + 2)
    ax.set_ylim(0, 100)
    ax.set_ylabel("Calcium corrected, %")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.tick_params(labelbottom=True)
    ax.set_xticks(ticks)
    ax.set_xlabel("Hours from index")
    # numbers at risk: one row per arm, under the curves (small counts suppressed)
    rows = list(zip(curves, colours, strict=False))
    for k, (curve, colour) in enumerate(rows):
        for tick, n in zip(ticks, curve.at_risk, strict=True):
            table.text(
                tick,
                len(rows) - 1 - k,
                display_count(n, threshold),
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    table.set_ylim(-0.6, len(rows) - 0.4)
    table.set_yticks(range(len(rows)), [c.label for c, _ in rows][::-1], fontsize=7)
    table.set_title("Numbers at risk", fontsize=7, loc="left")
    table.tick_params(left=False, bottom=False, labelbottom=False)
    table.spines[:].set_visible(False)
    return figure_to_svg(fig)


FIGURE_KEY = "time_to_correction"
"""Key of this figure in the model task's ``figures`` dict (``ReportContext.figures``)."""


def correction_curve_svg(
    cohort: pd.DataFrame, correction: pd.DataFrame, threshold: int, horizon_hours: int
) -> str | None:
    """The figure for the report from the analytic cohort and ``index_calcium_correction``:
    curves weighted by the primary propensity model's stabilised IPW (complete cases, as the
    weighted estimates), unweighted when no propensity model can be fitted; ``None`` when
    there is nothing to draw."""
    if cohort.empty or correction.empty:
        return None
    try:
        ps = fit_propensity(cohort, threshold=threshold)
        rows, weights = ps.adjusted.data, ate_weights(ps.treat, ps.score)
    except InsufficientDataError:
        rows, weights = cohort, None
    curves = correction_curves(rows, correction, threshold, horizon_hours, weights)
    return correction_figure(curves, threshold, horizon_hours)

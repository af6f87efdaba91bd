"""Negative controls: the primary design applied where the true effect is zero, and the
calibrated primary interval they give (results.json ``negative_controls`` and ``calibration``).

Each control refits the primary model (:func:`mgca.analysis.estimation.models.fit_primary`:
same cohort, exposure window, outcome window, adjustment set, model rule and bootstrap) with
one thing swapped, read from the SQL (``sql/negative_control_outcomes.sql``,
``sql/negative_control_exposure.sql``; Python derives none of it):

- ``sodium_outcome``, ``albumin_outcome``: the outcome is serum sodium (mmol/L) or albumin
  (g/L) at the primary horizon, picked like the primary outcome;
- ``placebo_window``: the outcome is corrected Ca drawn about ``placebo_hours_before_index``
  before index, which Mg given after index cannot move;
- ``potassium_exposure``: among episodes given no Mg in the grace period, the exposure is a
  potassium chloride dose in the grace period, the outcome the primary one.

Every estimate is also put on the standardised scale (divided by the pooled within-arm SD
of its outcome in the rows it used) for the calibration (:mod:`.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.estimation.calibration import (
    REJECT_P,
    SystematicError,
    calibrated_interval,
    calibrated_p_value,
    fit_systematic_error,
)
from mgca.analysis.estimation.models import (
    COUNT_KEYS,
    EXPOSURE,
    OUTCOME,
    InsufficientDataError,
    exposure_indicator,
    fit_primary,
    prepare_adjusted,
)
from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import count_rule, suppress_estimate
from mgca.analysis.text import calibration_words, negative_control_words
from mgca.config import MgcaConfig

OUTCOMES_TABLE = "negative_control_outcomes"
EXPOSURE_TABLE = "negative_control_exposure"

CONTROL_UNITS: dict[str, str] = {
    "sodium_outcome": "mmol/L",
    "albumin_outcome": "g/L",
    "placebo_window": "mmol/L",
    "potassium_exposure": "mmol/L",
}
"""Every negative control, in report order, with the unit of its outcome."""

_OUTCOME_COLUMNS: dict[str, str] = {
    "sodium_outcome": "outcome_sodium_mmol_l",
    "albumin_outcome": "outcome_albumin_g_l",
    "placebo_window": "placebo_ca_corrected_mmol_l",
}
_K_EXPOSURE = "k_repletion_in_grace"


def pooled_sd(values: pd.Series, treat: np.ndarray) -> float:
    """Pooled within-arm standard deviation of ``values`` (unit of the values); NaN when an
    arm has fewer than two rows."""
    y = values.to_numpy(dtype=float)
    t = np.asarray(treat, dtype=bool)
    parts = [y[t], y[~t]]
    if any(p.size < 2 for p in parts):
        return float("nan")
    ss = sum(float(np.sum((p - p.mean()) ** 2)) for p in parts)
    return float(np.sqrt(ss / (y.size - 2)))


def control_cohorts(
    cohort: pd.DataFrame, outcomes: pd.DataFrame, exposure: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The cohort each control refits on: the analytic cohort with the outcome (or, for
    ``potassium_exposure``, the exposure and the rows) swapped, by ``encounter_id``."""
    nc = cohort[["encounter_id"]].merge(outcomes, on="encounter_id", how="left")
    k = cohort[["encounter_id"]].merge(exposure, on="encounter_id", how="left")
    out = {
        name: cohort.assign(**{OUTCOME: nc[column].to_numpy()})
        for name, column in _OUTCOME_COLUMNS.items()
    }
    no_mg = ~exposure_indicator(cohort[EXPOSURE].fillna(True)).astype(bool)
    kcl = k[_K_EXPOSURE].fillna(False).astype(bool).to_numpy()
    out["potassium_exposure"] = cohort.assign(**{EXPOSURE: kcl}).loc[no_mg].reset_index(drop=True)
    return out


def standardised(entry: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """``entry``'s estimate and SE divided by the pooled within-arm SD of the outcome in
    ``rows`` (the rows the fit used): ``{"sd", "estimate", "se"}``, no unit."""
    treat = exposure_indicator(rows[EXPOSURE]).astype(bool)
    sd = pooled_sd(rows[OUTCOME], treat)
    est, se = entry.get("estimate"), entry.get("se")
    ok = est is not None and se is not None and np.isfinite(sd) and sd > 0
    return {
        "sd": finite_or_none(sd),
        "estimate": float(est) / sd if ok else None,
        "se": float(se) / sd if ok else None,
    }


def _no_control(name: str, words: dict[str, str], reason: str) -> dict[str, Any]:
    return {
        "name": name,
        **words,
        "unit": CONTROL_UNITS[name],
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "se": None,
        "p_value": None,
        "n": None,
        "n_exposed": None,
        "n_unexposed": None,
        "standardised": {"sd": None, "estimate": None, "se": None},
        "reason": reason,
    }


def fit_negative_controls(
    cohort: pd.DataFrame,
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    config: MgcaConfig,
    fit: Callable[..., dict[str, Any]] = fit_primary,
) -> list[dict[str, Any]]:
    """Every control of :data:`CONTROL_UNITS`, each the primary model refitted (``fit``)
    on its cohort of :func:`control_cohorts`; a control that cannot be fitted is an entry
    with ``estimate: None`` and a ``reason``. Not suppressed (see
    :func:`negative_controls_block`)."""
    words = negative_control_words(config.study)
    cohorts = control_cohorts(cohort, outcomes, exposure)
    entries = []
    for name, unit in CONTROL_UNITS.items():
        what = f"negative control {name}"
        try:
            rows = prepare_adjusted(cohorts[name], what).data
            entry = fit(cohorts[name], config.study, estimation=config.estimation)
        except (InsufficientDataError, np.linalg.LinAlgError) as exc:
            entries.append(_no_control(name, words[name], f"no {what}: {exc}"))
            continue
        entries.append(
            entry
            | words[name]
            | {
                "name": name,
                "unit": unit,
                "standardised": standardised(entry, rows),
                "reason": None,
            }
        )
    return entries


def calibration_entry(
    primary: dict[str, Any] | None,
    primary_sd: float | None,
    controls: list[dict[str, Any]],
    min_controls: int,
) -> dict[str, Any]:
    """results.json ``calibration``: the systematic-error fit and the calibrated primary.

    ``controls``: the (suppressed) control entries; those with a standardised estimate and
    SE enter the fit. ``primary_sd``: pooled within-arm SD of corrected Ca in the primary's
    rows (mmol/L). The calibrated estimate keeps the primary's estimand words, cohort,
    exposure, outcome window and adjustment set (copied from ``primary``). With fewer than
    ``min_controls`` usable controls, or no primary, the entry carries a ``reason`` ("too
    few controls ...") and no numbers.
    """
    usable = [
        c for c in controls if c["standardised"]["estimate"] is not None and c["standardised"]["se"]
    ]
    out: dict[str, Any] = {
        "estimand": calibration_words(),
        "scale": "standardised mean difference (estimate / pooled within-arm SD of its outcome)",
        "controls_used": [c["name"] for c in usable],
        "controls_count": len(usable),
        "min_controls": min_controls,
        "mu": None,
        "mu_se": None,
        "sigma": None,
        "null_test_p": None,
        "controls_reject": None,
        "controls_ci_excluding_zero": sum(
            1
            for c in usable
            if c.get("ci_low") is not None and (c["ci_low"] > 0 or c["ci_high"] < 0)
        ),
        "unit": "mmol/L",
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "primary_sd_mmol_l": finite_or_none(primary_sd),
        "reason": None,
    }
    if len(usable) < min_controls:
        out["reason"] = (
            f"too few controls: {len(usable)} negative control(s) with an estimate, "
            f"calibration needs at least {min_controls} (calibration.min_controls)"
        )
        return out
    error: SystematicError = fit_systematic_error(
        [c["standardised"]["estimate"] for c in usable], [c["standardised"]["se"] for c in usable]
    )
    out |= {
        "mu": error.mu,
        "mu_se": error.mu_se,
        "sigma": error.sigma,
        "null_test_p": error.null_test_p,
        "controls_reject": error.null_test_p < REJECT_P,
    }
    if (
        primary is None
        or primary.get("estimate") is None
        or primary.get("se") is None
        or not primary_sd
    ):
        out["reason"] = "no primary estimate to calibrate"
        return out
    for key in ("cohort", "exposure", "outcome", "grace_hours", "horizon_hours", "adjustment_set"):
        out[key] = primary.get(key)
    est, se = primary["estimate"] / primary_sd, primary["se"] / primary_sd
    centre, low, high = calibrated_interval(est, se, error)
    out |= {
        "estimate": centre * primary_sd,
        "ci_low": low * primary_sd,
        "ci_high": high * primary_sd,
        "p_value": calibrated_p_value(est, se, error),
    }
    return finite_or_none(out)


def primary_outcome_sd(cohort: pd.DataFrame) -> float | None:
    """Pooled within-arm SD (mmol/L) of corrected Ca at the horizon in the primary's rows."""
    try:
        rows = prepare_adjusted(cohort, "the primary outcome's SD").data
    except InsufficientDataError:
        return None
    sd = pooled_sd(rows[OUTCOME], exposure_indicator(rows[EXPOSURE]).astype(bool))
    return sd if np.isfinite(sd) and sd > 0 else None


def negative_controls_block(
    cohort: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    config: MgcaConfig,
    primary: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """results.json ``negative_controls`` (small counts suppressed as for ``estimates``;
    a withheld control has no standardised numbers either) and ``calibration``. Counts follow
    the run's count rule (threshold and rounding, :func:`mgca.analysis.privacy.count_rule`)."""
    threshold = count_rule(config)
    controls = []
    for entry in fit_negative_controls(
        cohort, tables[OUTCOMES_TABLE], tables[EXPOSURE_TABLE], config
    ):
        shown = suppress_estimate(
            finite_or_none(entry), COUNT_KEYS, ("n_exposed", "n_unexposed"), threshold
        )
        if shown.get("withheld"):
            shown["standardised"] = dict.fromkeys(shown["standardised"])
        controls.append(shown)
    calibration = calibration_entry(
        primary, primary_outcome_sd(cohort), controls, config.calibration.min_controls
    )
    return controls, calibration

"""The censoring model of a missing outcome: who among the eligible episodes has the outcome
measured, given the arm and the pre-index covariates, and the inverse-probability-of-censoring
weights (IPCW) that weight the measured episodes back to all eligible ones.

An eligible episode's outcome is missing when the patient died, went home or was not
re-tested before the outcome window (``sql/eligible_episodes.sql``). That depends on calcium,
illness and the arm, so the measured episodes are not a random sample of the eligible ones.
Under "missing at random given the arm and the pre-index covariates" each measured episode
stands for ``1 / P(measured | arm, covariates)`` eligible episodes.

- Model: logistic regression of ``outcome_observed`` on the arm and the adjustment set of the
  primary model (:data:`mgca.analysis.estimation.models.ADJUSTMENT_SET`: linear terms, log
  creatinine, sex as a factor), the covariates that the arms can estimate
  (:func:`~mgca.analysis.estimation.models.usable_covariates`).
- Small-sample rule (the primary model's, ``estimation.min_episodes_per_parameter``, counted
  per predictor, the intercept aside): the richest of (1) arm + the adjustment set, (2) arm +
  :data:`CORE_COVARIATES` (the recorded index values clinicians act on), (3) the arm alone
  whose predictors each have that many of the rarer of measured / missing outcomes behind
  them; a model that does not converge or separates falls to the next. The entry names the
  model that ran and why.
- Stabilised weights ``P(measured | arm) / P(measured | arm, covariates)`` on measured
  episodes (0 on the others), truncated at the pre-specified quantiles ``q`` and ``1 − q``
  of the measured episodes' weights (``estimation.ipcw_truncation_quantile``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from mgca.analysis.estimation.models import (
    CATEGORICAL_COVARIATES,
    EXPOSURE,
    covariate_rhs,
    exposure_indicator,
    factor_column,
    independent_columns,
    recorded_covariates,
    usable_covariates,
)

OBSERVED = "outcome_observed"
"""Column of ``eligible_episodes``: TRUE when the primary outcome was measured."""
REASON = "outcome_missing_reason"
"""Column of ``eligible_episodes``: why the outcome is missing (null when measured)."""
MISSING_REASONS: tuple[str, ...] = ("died", "discharged_alive", "not_retested")
"""The reasons ``sql/eligible_episodes.sql`` writes, in the order the report lists them."""

CORE_COVARIATES: tuple[str, ...] = (
    "baseline_mg_mmol_l",
    "baseline_ca_corrected_mmol_l",
    "baseline_creatinine_umol_l",
)
"""The reduced censoring model's covariates: the index Mg and corrected Ca that decide
treatment and discharge, and creatinine (log) for illness and kidney function."""

_R = "observed"
_A = "arm"


@dataclass(frozen=True)
class CensoringFit:
    """A fitted censoring model and its weights, one value per eligible row.

    ``observed``: outcome measured (bool); ``p_observed``: fitted P(measured | arm,
    covariates); ``weights``: stabilised, truncated IPCW (0 for an unmeasured episode);
    ``terms``: the model's terms in words with their coefficients (log-odds of being
    measured); ``arm_only``: True when the small-sample rule (or a failed fit) left the arm
    alone; ``covariates``: the covariates of the model that ran; ``truncation``: the (low,
    high) weight bounds applied; ``n_truncated``: measured
    episodes whose weight was clipped; ``notes``: words for the results.json entry.
    """

    observed: np.ndarray
    p_observed: np.ndarray
    weights: np.ndarray
    terms: list[dict[str, Any]]
    arm_only: bool
    truncation: tuple[float, float]
    n_truncated: int
    covariates: list[str]
    notes: list[str] = field(default_factory=list)

    def weight_summary(self) -> dict[str, float | None]:
        """Distribution of the measured episodes' weights (no unit): min, quartiles, max,
        mean, and the Kish effective sample size as a share of the measured episodes."""
        w = self.weights[self.observed]
        if w.size == 0:
            return {k: None for k in ("min", "p25", "median", "p75", "max", "mean", "ess_share")}
        q = np.quantile(w, [0.0, 0.25, 0.5, 0.75, 1.0])
        ess = float(w.sum() ** 2 / np.sum(w * w)) if np.sum(w * w) > 0 else 0.0
        return {
            "min": float(q[0]),
            "p25": float(q[1]),
            "median": float(q[2]),
            "p75": float(q[3]),
            "max": float(q[4]),
            "mean": float(w.mean()),
            "ess_share": ess / w.size,
        }


def _frame(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            _R: data[OBSERVED].astype(bool).to_numpy(dtype=float),
            _A: exposure_indicator(data[EXPOSURE]),
        }
    )
    for col in covariates:
        if col in CATEGORICAL_COVARIATES:
            frame[col] = factor_column(data[col])
        else:
            frame[col] = data[col].astype(float).to_numpy()
    return frame


def _fit_logit(frame: pd.DataFrame, rhs: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Fitted probabilities and terms of ``observed ~ rhs``; raises on a failed fit."""
    y, x_mat = patsy.dmatrices(f"{_R} ~ {rhs}", frame, NA_action="raise")
    keep = independent_columns(np.asarray(x_mat))  # corrected Ca = total Ca + albumin term
    names = [x_mat.design_info.column_names[j] for j in keep]
    X = np.asarray(x_mat)[:, keep]
    with warnings.catch_warnings():
        # perfect separation or no convergence: raise, and the caller falls back
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        fit = sm.GLM(np.asarray(y).ravel(), X, family=sm.families.Binomial()).fit()
    p = np.asarray(fit.fittedvalues, dtype=float)
    if not np.all(np.isfinite(p)) or p.min() <= 1e-8:
        raise np.linalg.LinAlgError("fitted probabilities of being measured reach 0")
    terms = [
        {"term": name, "coefficient": float(b), "se": float(s)}
        for name, b, s in zip(names, fit.params, fit.bse, strict=True)
    ]
    return p, terms


def fit_censoring(
    data: pd.DataFrame,
    adjustment: Sequence[str],
    *,
    truncation_quantile: float,
    min_episodes_per_parameter: int,
) -> CensoringFit:
    """Fit the censoring model on the eligible episodes ``data`` (every row complete in the
    arm and the ``adjustment`` columns the source records; ``outcome_observed`` bool) and
    compute its weights. A severity proxy the source does not record is left out with a note
    (:func:`~mgca.analysis.estimation.models.recorded_covariates`)."""
    observed = data[OBSERVED].astype(bool).to_numpy()
    treat = exposure_indicator(data[EXPOSURE])
    adjustment, notes = recorded_covariates(data, adjustment)
    covariates, usable_notes = usable_covariates(data, adjustment, treat)
    notes.extend(usable_notes)
    core = [c for c in CORE_COVARIATES if c in covariates]
    frame = _frame(data, covariates)
    rarer = int(min(observed.sum(), (~observed).sum()))
    k = min_episodes_per_parameter
    p: np.ndarray | None = None
    terms: list[dict[str, Any]] = []
    arm_only = True
    used: list[str] = []
    for candidate, label in (
        (covariates, "the arm and the adjustment set"),
        (core, "the arm and the index Mg, corrected Ca and log creatinine"),
    ):
        if not candidate:
            continue
        rhs = f"{_A} + {covariate_rhs(candidate, splines=False)}"
        # the design's columns, read off a few rows: a factor keeps every level of the data
        # (``factor_column``), so the count does not depend on which rows come first
        n_predictors = patsy.dmatrix(rhs, frame.iloc[:5]).shape[1] - 1
        if rarer < k * n_predictors:
            notes.append(
                f"censoring model: not {label} ({n_predictors} predictors; the rarer of "
                f"measured and missing outcomes has fewer than {k} episodes per predictor)"
            )
            continue
        try:
            p, terms = _fit_logit(frame, rhs)
        except (Warning, ValueError, np.linalg.LinAlgError):
            notes.append(f"censoring model: {label} did not converge or separated")
            continue
        arm_only, used = False, list(candidate)
        notes.append(f"censoring model: {label}")
        break
    if arm_only:
        notes.append(
            "censoring model: the arm alone, so the weights correct only for the arms' "
            "different shares measured"
        )
        if observed.all() or not observed.any():
            p = np.full(len(data), float(observed.mean()) if len(data) else 1.0)
            terms = [{"term": "Intercept", "coefficient": None, "se": None}]
        else:
            try:
                p, terms = _fit_logit(frame, _A)
            except (Warning, ValueError, np.linalg.LinAlgError):
                p = np.full(len(data), float(observed.mean()))
                terms = [{"term": "Intercept", "coefficient": None, "se": None}]
    assert p is not None
    # stabilised: the measured share of the episode's arm over its fitted probability
    share = np.where(
        treat == 1,
        observed[treat == 1].mean() if (treat == 1).any() else 1.0,
        observed[treat == 0].mean() if (treat == 0).any() else 1.0,
    )
    raw = np.where(observed, share / p, 0.0)
    low, high = 0.0, float("inf")
    n_truncated = 0
    if observed.any():
        bounds = np.quantile(raw[observed], [truncation_quantile, 1 - truncation_quantile])
        low, high = float(bounds[0]), float(bounds[1])
        clipped = np.clip(raw, low, high)
        n_truncated = int(np.sum(observed & (clipped != raw)))
        raw = np.where(observed, clipped, 0.0)
    return CensoringFit(
        observed=observed,
        p_observed=p,
        weights=raw,
        terms=terms,
        arm_only=arm_only,
        truncation=(low, high),
        n_truncated=n_truncated,
        covariates=used,
        notes=notes,
    )

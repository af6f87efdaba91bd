"""Diagnostics of the weighting estimators and sensitivity to unmeasured confounding.

Everything returned here is an aggregate (no ids, no dates, no single-episode values):

- :func:`covariate_balance`: standardised mean difference (SMD) of each covariate between the
  exposed and unexposed arms, before and after inverse-probability weighting. Continuous
  covariates: ``(mean₁ − mean₀) / sqrt((s₁² + s₀²) / 2)`` with sample variances (ddof 1);
  binary ones (and each level of sex): proportions, with variances ``p (1 − p)``. The
  denominator is always the *unweighted* one, so before and after differ only through the
  means (Austin & Stuart 2015, Stat Med 34:3661; the default of R ``cobalt``). Covariates are
  taken as they enter the models (creatinine on the log scale); pre-index covariates outside
  the adjustment set (potassium, phosphate, drugs before index) are shown too, marked
  ``in_model = False``.
- :func:`overlap_summary`: quantiles of the propensity score by arm and the share of
  episodes outside ``[0.05, 0.95]``.
- :func:`effective_sample_size`: Kish's effective sample size of the weights per arm,
  ``(Σ w)² / Σ w²``.
- :func:`weighting_warnings`: words for poor balance (|SMD| > 0.1 after weighting), poor
  overlap (> 5 % of scores outside [0.05, 0.95]) or a small ESS (< 50 % of the arm).
- :func:`evalue`: the E-value of an estimate and of its CI limit closer to the null.

Counts (``n`` columns) are subject to disclosure control when published
(:mod:`mgca.analysis.privacy`); SMDs, quantiles of scores and shares are not counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.estimation.models import (
    CATEGORICAL_COVARIATES,
    LOG_COVARIATES,
    OUTCOME,
    exposure_indicator,
)
from mgca.analysis.estimation.propensity import (
    DEFAULT_THRESHOLD,
    PropensityFit,
    ate_weights,
    fit_propensity,
)
from mgca.analysis.privacy import display_count

SMD_LIMIT = 0.1
"""|SMD| above this after weighting is poor balance (Austin 2009; Stuart 2010)."""
OVERLAP_BOUNDS = (0.05, 0.95)
"""Propensity scores outside this range signal limited overlap (Crump et al. 2009 use
[0.1, 0.9]; 0.05/0.95 is the looser common screen)."""
OVERLAP_SHARE_LIMIT = 0.05
"""More than this share of episodes outside ``OVERLAP_BOUNDS`` is poor overlap."""
ESS_SHARE_LIMIT = 0.5
"""A Kish effective sample size below this share of the arm's episodes is a warning."""
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
"""Propensity-score quantiles reported per arm (no minima or maxima: single episodes)."""

EXTRA_COVARIATES: tuple[str, ...] = (
    "baseline_potassium_mmol_l",
    "baseline_phosphate_mmol_l",
    "ppi_before_index",
    "loop_diuretic_before_index",
    "thiazide_before_index",
    "nephrotoxic_drug_before_index",
    "vitamin_d_analogue_before_index",
    "calcium_before_index",
    "icu_at_index",
    "vasopressor_at_index",
)
"""Pre-index covariates whose balance is shown; those in the adjustment set are shown with
it (``in_model``), the rest (e.g. nephrotoxic drugs) as not adjusted; columns absent from
the cohort are skipped."""

EVALUE_RR_PER_SMD = 0.91
"""log RR ≈ 0.91 · d for a standardised mean difference d (VanderWeele & Ding 2017)."""


# ---------------------------------------------------------------------------------------------
# balance, overlap, ESS on plain arrays (unit-testable by hand)


def _is_binary(x: np.ndarray) -> bool:
    values = np.unique(x[~np.isnan(x)])
    return len(values) <= 2 and set(values.tolist()) <= {0.0, 1.0}


def smd(x: np.ndarray, treat: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Standardised mean difference of ``x`` (exposed − unexposed), unitless.

    Means are ``weights``-weighted within each arm when given; the denominator is always the
    unweighted ``sqrt((s₁² + s₀²) / 2)`` (sample variances, ddof 1; ``p (1 − p)`` for a 0/1
    covariate). Missing ``x`` are left out. ``nan`` when the denominator is 0 and the means
    differ; 0 when both are constant and equal.
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(treat, dtype=float) == 1
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    ok = ~np.isnan(x)
    x1, x0 = x[ok & t], x[ok & ~t]
    w1, w0 = w[ok & t], w[ok & ~t]
    if len(x1) == 0 or len(x0) == 0:
        return float("nan")
    m1, m0 = np.average(x1, weights=w1), np.average(x0, weights=w0)
    if _is_binary(x[ok]):
        p1, p0 = x1.mean(), x0.mean()
        var1, var0 = p1 * (1 - p1), p0 * (1 - p0)
    else:
        var1 = x1.var(ddof=1) if len(x1) > 1 else 0.0
        var0 = x0.var(ddof=1) if len(x0) > 1 else 0.0
    denom = math.sqrt((var1 + var0) / 2)
    if denom == 0:
        return 0.0 if m1 == m0 else float("nan")
    return float((m1 - m0) / denom)


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` (episodes; scale-free in ``w``)."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2)) if len(w) else 0.0


# ---------------------------------------------------------------------------------------------
# on a fitted propensity model


def covariate_columns(data: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """(label, values) per covariate as it enters the models; factor levels as 0/1."""
    out: list[tuple[str, np.ndarray]] = []
    for col in columns:
        if col not in data.columns:
            continue
        if col in CATEGORICAL_COVARIATES:
            values = data[col].astype(str)
            for level in sorted(values.unique()):
                out.append((f"{col} = {level}", (values == level).to_numpy(dtype=float)))
        elif col in LOG_COVARIATES:
            x = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append((f"log {col}", np.where(x > 0, np.log(x), np.nan)))
        else:
            series = data[col]
            if series.dtype == bool or str(series.dtype) == "boolean":
                x = series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            else:
                x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            out.append((col, x))
    return out


def covariate_balance(ps: PropensityFit, extra: Sequence[str] = EXTRA_COVARIATES) -> pd.DataFrame:
    """SMD of each covariate before and after ATE weighting (aggregate frame, no ids).

    Columns: ``covariate`` (as entered: ``log …`` for creatinine, ``sex = F`` per level),
    ``in_model`` (in the adjustment set), ``smd_before``, ``smd_after`` (unitless).
    """
    data = ps.adjusted.data
    w = ate_weights(ps.treat, ps.score)
    rows = []
    model_cols = list(ps.adjusted.covariates)
    for in_model, cols in ((True, model_cols), (False, [c for c in extra if c not in model_cols])):
        for label, x in covariate_columns(data, cols):
            rows.append(
                {
                    "covariate": label,
                    "in_model": in_model,
                    "smd_before": smd(x, ps.treat),
                    "smd_after": smd(x, ps.treat, w),
                }
            )
    return pd.DataFrame(rows, columns=["covariate", "in_model", "smd_before", "smd_after"])


def overlap_summary(
    ps: PropensityFit, bounds: tuple[float, float] = OVERLAP_BOUNDS
) -> dict[str, Any]:
    """Propensity-score overlap: quantiles by arm and shares outside ``bounds``.

    Returns ``{"bounds": [lo, hi], "quantiles": DataFrame(arm, n, q05, q25, q50, q75, q95),
    "share_outside": float, "share_outside_exposed": float, "share_outside_unexposed":
    float}``; shares are fractions of episodes (0–1), scores unitless. Uses the scores the
    estimators use (after any truncation).
    """
    lo, hi = bounds
    e, t = ps.score, ps.treat == 1
    outside = (e < lo) | (e > hi)
    rows = []
    for arm, mask in (("exposed", t), ("unexposed", ~t)):
        q = np.quantile(e[mask], QUANTILES) if mask.any() else [np.nan] * len(QUANTILES)
        rows.append(
            {"arm": arm, "n": int(mask.sum())}
            | {f"q{round(p * 100):02d}": float(v) for p, v in zip(QUANTILES, q, strict=True)}
        )
    return {
        "bounds": [lo, hi],
        "quantiles": pd.DataFrame(rows),
        "share_outside": float(outside.mean()),
        "share_outside_exposed": float(outside[t].mean()) if t.any() else float("nan"),
        "share_outside_unexposed": float(outside[~t].mean()) if (~t).any() else float("nan"),
    }


def effective_sample_size(ps: PropensityFit) -> pd.DataFrame:
    """Kish effective sample size of the ATE weights per arm.

    Columns: ``arm``, ``n`` (episodes), ``ess`` (episodes, not a count of people: a
    real number), ``ess_share`` (``ess / n``).
    """
    w = ate_weights(ps.treat, ps.score)
    t = ps.treat == 1
    rows = []
    for arm, mask in (("exposed", t), ("unexposed", ~t)):
        n = int(mask.sum())
        ess = kish_ess(w[mask])
        rows.append({"arm": arm, "n": n, "ess": ess, "ess_share": ess / n if n else float("nan")})
    return pd.DataFrame(rows)


def weighting_warnings(
    ps: PropensityFit,
    *,
    balance: pd.DataFrame | None = None,
    overlap: dict[str, Any] | None = None,
    ess: pd.DataFrame | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[str]:
    """Warnings in words for poor balance, overlap or effective sample size (aggregates only).

    Computes whichever of ``balance``/``overlap``/``ess`` is not given. ``threshold``: the
    small-cell threshold (no count below it is written).
    """
    balance = covariate_balance(ps) if balance is None else balance
    overlap = overlap_summary(ps) if overlap is None else overlap
    ess = effective_sample_size(ps) if ess is None else ess
    out: list[str] = []
    bad = balance.loc[balance["smd_after"].abs().gt(SMD_LIMIT)]
    for in_model, words in (
        (True, "adjusted covariates still imbalanced after weighting"),
        (False, "covariates outside the adjustment set imbalanced after weighting"),
    ):
        sub = bad.loc[bad["in_model"] == in_model]
        if not sub.empty:
            items = ", ".join(f"{r.covariate} ({r.smd_after:+.2f})" for r in sub.itertuples())
            out.append(f"{words} (|SMD| > {SMD_LIMIT:g}): {items}")
    if overlap["share_outside"] > OVERLAP_SHARE_LIMIT:
        lo, hi = overlap["bounds"]
        out.append(
            f"limited overlap: {100 * overlap['share_outside']:.1f} % of propensity scores "
            f"outside [{lo:g}, {hi:g}] (more than {100 * OVERLAP_SHARE_LIMIT:g} %)"
        )
    for r in ess.itertuples():
        if r.n and r.ess_share < ESS_SHARE_LIMIT:
            out.append(
                f"small effective sample size in the {r.arm} arm: Kish ESS {r.ess:.0f} of "
                f"{display_count(int(r.n), threshold)} episodes ({100 * r.ess_share:.0f} %, "
                f"below {100 * ESS_SHARE_LIMIT:g} %)"
            )
    return out


def weighting_diagnostics(
    cohort: pd.DataFrame,
    *,
    truncate_percentiles: tuple[float, float] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """All weighting diagnostics for the analytic cohort (aggregates only, no ids).

    Returns ``{"balance": DataFrame, "overlap": dict, "ess": DataFrame, "warnings": [str],
    "truncation": dict | None, "n": int, "n_dropped": int}``; see the functions above.
    """
    ps = fit_propensity(cohort, truncate_percentiles=truncate_percentiles, threshold=threshold)
    balance = covariate_balance(ps)
    overlap = overlap_summary(ps)
    ess = effective_sample_size(ps)
    return {
        "balance": balance,
        "overlap": overlap,
        "ess": ess,
        "warnings": weighting_warnings(
            ps, balance=balance, overlap=overlap, ess=ess, threshold=threshold
        ),
        "truncation": None if ps.truncation is None else vars(ps.truncation).copy(),
        "n": len(ps.score),
        "n_dropped": ps.adjusted.n_dropped,
    }


# ---------------------------------------------------------------------------------------------
# E-value


def _evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR + sqrt(RR (RR − 1)), RR ≥ 1."""
    rr = 1 / rr if rr < 1 else rr
    return float(rr + math.sqrt(rr * (rr - 1)))


def evalue(estimate: float, ci_low: float, ci_high: float, sd_outcome: float) -> dict[str, float]:
    """E-value of a difference in mean outcome and of its CI limit closer to the null.

    ``estimate``, ``ci_low``, ``ci_high`` and ``sd_outcome`` share one unit (here mmol/L);
    ``sd_outcome`` is the outcome's standard deviation (e.g. :func:`pooled_outcome_sd`).
    The difference is standardised, ``d = estimate / sd_outcome``, and converted to an
    approximate risk ratio ``RR ≈ exp(0.91 · d)`` (VanderWeele TJ, Ding P. Sensitivity
    analysis in observational research: introducing the E-value. Ann Intern Med
    2017;167:268–274, Table and eAppendix; the same conversion as ``evalues.MD`` of the R
    package EValue). The 0.91 comes from d ≈ (√3/π) log OR (Hasselblad & Hedges 1995;
    Chinn 2000), i.e. log OR ≈ 1.81 d, and RR ≈ √OR for a common outcome; it is an
    approximation that assumes a roughly normal outcome, so the E-value is a rough guide.
    The CI limits are converted the same way (``exp(0.91 · limit / sd)``; with a symmetric
    95 % interval this is ``exp(0.91 d ± 1.78 SE_d)``, as in EValue).

    E-value = ``RR + sqrt(RR (RR − 1))`` (for RR < 1, of 1/RR): the minimum strength of
    association, on the risk-ratio scale, that an unmeasured confounder would need with both
    exposure and outcome, beyond the measured covariates, to fully explain the estimate away.
    For the CI it is computed at the limit closer to the null, and is 1 when the interval
    includes the null. Returns ``d``, ``rr``, ``rr_ci_low``, ``rr_ci_high``,
    ``evalue_estimate``, ``evalue_ci`` (unitless).
    """
    if not sd_outcome > 0:
        raise ValueError(f"sd_outcome must be > 0, got {sd_outcome}")
    if not ci_low <= estimate <= ci_high:
        raise ValueError(f"need ci_low <= estimate <= ci_high, got {ci_low}, {estimate}, {ci_high}")
    d = estimate / sd_outcome
    rr, rr_lo, rr_hi = (
        math.exp(EVALUE_RR_PER_SMD * v / sd_outcome) for v in (estimate, ci_low, ci_high)
    )
    # the CI limit closer to the null; 1 when the interval includes the null
    e_ci = 1.0 if rr_lo <= 1 <= rr_hi else _evalue_rr(rr_lo if rr > 1 else rr_hi)
    return {
        "d": float(d),
        "rr": float(rr),
        "rr_ci_low": float(rr_lo),
        "rr_ci_high": float(rr_hi),
        "evalue_estimate": _evalue_rr(rr),
        "evalue_ci": e_ci,
    }


def pooled_outcome_sd(cohort: pd.DataFrame) -> float:
    """Pooled within-arm SD of the outcome (mmol/L) over episodes with outcome and exposure:
    ``sqrt(((n₁ − 1) s₁² + (n₀ − 1) s₀²) / (n₁ + n₀ − 2))``; the scale for :func:`evalue`."""
    data = cohort.loc[cohort[OUTCOME].notna() & cohort["exposed"].notna()]
    y = data[OUTCOME].to_numpy(dtype=float)
    t = exposure_indicator(data["exposed"]).astype(bool)
    y1, y0 = y[t], y[~t]
    if len(y1) < 2 or len(y0) < 2:
        raise ValueError("each arm needs at least two outcomes for a pooled SD")
    pooled = ((len(y1) - 1) * y1.var(ddof=1) + (len(y0) - 1) * y0.var(ddof=1)) / (len(y) - 2)
    return float(math.sqrt(pooled))

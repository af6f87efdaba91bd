"""Propensity score for Mg repletion: P(exposed | adjustment set), a logistic GLM.

The model is statsmodels ``GLM(exposed, X, family=Binomial())`` (logit link, maximum
likelihood by IRLS) with the *same* design terms as the primary outcome model
(:func:`mgca.analysis.estimation.models.covariate_rhs`): natural cubic splines (3 df, patsy ``cr``,
centred) for baseline Mg (mmol/L) and baseline corrected Ca (mmol/L), baseline total Ca
(mmol/L) and albumin (g/L) linear, log baseline creatinine (µmol/L), age (years) linear, sex
as a factor. It uses the same complete-case rows as ``fit_primary``, so every adjusted
estimate of one cohort is made on the same episodes. The model's own standard errors are
never used (only its fitted probabilities and score equations), so it needs no clustering;
the estimators that use it (:mod:`mgca.analysis.estimation.estimators`) cluster on patient.

Corrected Ca is computed from total Ca and albumin (Payne), so one design column is always an
exact linear combination of the others; such columns are dropped before fitting (fitted
probabilities are unchanged).

Overlap and trimming: by default nothing is trimmed or truncated; overlap is *reported*
(:mod:`mgca.analysis.estimation.diagnostics`). When ``truncate_percentiles=(lo, hi)`` is given,
fitted
scores below the ``lo``-th or above the ``hi``-th percentile are set to those percentiles
(Cole & Hernán 2008, Am J Epidemiol 168:656) and the fit records how many episodes were
truncated at each bound and the bound values, which the estimators copy into their notes.
Episodes are never dropped for poor overlap.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm

from mgca.analysis.estimation.models import (
    CATEGORICAL_COVARIATES,
    REPORT_SAYS,
    AdjustedData,
    InsufficientDataError,
    covariate_rhs,
    factor_column,
    independent_columns,
    prepare_adjusted,
)
from mgca.analysis.privacy import display_count

DEFAULT_THRESHOLD = 11
"""Small-cell threshold for counts in notes when the caller gives none (config default)."""

SEPARATION_BOUND = 1e-6
"""A score within this of 0 or 1 is near-deterministic: as an observed arm's weight (above
10⁶) it makes the estimate meaningless (no estimate); in the other direction it is noted."""
COMPLETE_SEPARATION_GAP = 1e-4
SCORE_FLOOR = 1e-12
"""Fitted scores are kept in [SCORE_FLOOR, 1 − SCORE_FLOOR] (floating-point safety only)."""
"""Every |score − exposure| below this: the model predicts each arm exactly (no estimate)."""

PROPENSITY_METHOD = (
    "Propensity score: logistic regression (statsmodels GLM, Binomial family, logit link) of "
    "exposure on the primary model's adjustment set with the same terms (natural cubic "
    "splines, 3 df, for baseline Mg and baseline corrected Ca; log creatinine; sex as a "
    "factor)"
)


@dataclass(frozen=True)
class Truncation:
    """Scores truncated at percentiles of the fitted-score distribution (unitless).

    ``lower_percentile``/``upper_percentile``: the requested percentiles (0–100);
    ``lower_bound``/``upper_bound``: the score values there; ``n_lower``/``n_upper``: episodes
    whose score was raised to the lower / lowered to the upper bound.
    """

    lower_percentile: float
    upper_percentile: float
    lower_bound: float
    upper_bound: float
    n_lower: int
    n_upper: int

    def note(self, threshold: int) -> str:
        """The truncation in words for a results.json entry; counts from 1 to
        ``threshold − 1`` show as ``<threshold`` (disclosure control)."""
        return (
            f"propensity scores truncated at percentiles {self.lower_percentile:g} and "
            f"{self.upper_percentile:g} of their distribution (scores {self.lower_bound:.3f} "
            f"and {self.upper_bound:.3f}): {display_count(self.n_lower, threshold)} episodes "
            f"raised to the lower and {display_count(self.n_upper, threshold)} lowered to the "
            "upper bound"
        )


@dataclass(frozen=True)
class PropensityFit:
    """A fitted propensity model on the analysed rows.

    ``adjusted``: the complete-case rows (ids: private) and notes; ``score``: fitted
    P(exposed | X) after any truncation, unitless in (0, 1), in the row order of
    ``adjusted.data``; ``raw_score``: the same before truncation; ``X``: the design matrix
    (kept columns), for M-estimation sandwiches; ``column_names``: its column names;
    ``truncated``: boolean mask of truncated rows; ``truncation``: what was truncated, or
    ``None``; ``notes``: words for results.json.
    """

    adjusted: AdjustedData
    score: np.ndarray
    raw_score: np.ndarray
    X: np.ndarray
    column_names: list[str]
    truncated: np.ndarray
    truncation: Truncation | None
    notes: list[str]

    @property
    def treat(self) -> np.ndarray:
        """Exposure as 0.0/1.0 in the row order of ``score``."""
        return self.adjusted.treat


def propensity_design(adjusted: AdjustedData) -> tuple[np.ndarray, list[str], list[str]]:
    """Design matrix of the propensity model, its column names, and the factor-level columns
    left out because the level occurs in one arm only.

    Intercept + the adjustment terms; columns that are exact linear combinations of earlier
    ones are dropped (fitted scores unchanged). A factor level seen in one arm only (e.g. a
    handful of episodes with sex ``U``, all exposed) would separate the arms and send its
    coefficient to infinity; its indicator is dropped, which merges the level into the
    reference level for this model (the estimators say so in their notes).
    """
    frame = pd.DataFrame(index=adjusted.data.index)
    for col in adjusted.covariates:
        if col in CATEGORICAL_COVARIATES:
            frame[col] = factor_column(adjusted.data[col])
        else:
            frame[col] = adjusted.data[col].astype(float)
    x_mat = patsy.dmatrix(covariate_rhs(adjusted.covariates), frame, NA_action="raise")
    X = np.asarray(x_mat)
    names = list(x_mat.design_info.column_names)
    factor_columns = {
        j
        for term, span in x_mat.design_info.term_name_slices.items()
        if any(f"C({c})" in term for c in CATEGORICAL_COVARIATES)
        for j in range(span.start, span.stop)
    }
    one_arm: list[str] = []
    for j in sorted(factor_columns):
        arms = adjusted.treat[X[:, j] != 0]
        if arms.size and arms.min() == arms.max():
            one_arm.append(names[j])
    usable = [j for j in range(X.shape[1]) if names[j] not in one_arm]
    keep = [usable[k] for k in independent_columns(X[:, usable])]
    return X[:, keep], [names[j] for j in keep], one_arm


def fit_logit(treat: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Fitted P(treat = 1 | X) of a logistic GLM (statsmodels, IRLS); unitless.

    Raises ``InsufficientDataError`` when IRLS does not converge, a score is not finite, the
    model predicts every episode's arm (complete separation), or an episode would get a
    practically infinite weight (an exposed episode with a score below ``SEPARATION_BOUND``,
    or an unexposed one above ``1 − SEPARATION_BOUND``). A score that extreme in the
    *expected* direction (say an unexposed episode with a score near 0) gives a weight near 1
    and is allowed; it signals doubtful positivity for that episode, which
    :func:`fit_propensity` notes and the overlap diagnostics report.
    """
    with warnings.catch_warnings():
        # separation is detected below from the fitted scores and reported in words
        warnings.simplefilter("ignore")
        result = sm.GLM(treat, X, family=sm.families.Binomial()).fit(maxiter=100)
        score = np.asarray(result.fittedvalues, dtype=float)
        converged = bool(getattr(result, "converged", True))
    exposed = treat == 1
    infinite_weight = (exposed & (score < SEPARATION_BOUND)) | (
        ~exposed & (score > 1 - SEPARATION_BOUND)
    )
    if (
        not converged
        or not np.all(np.isfinite(score))
        or np.max(np.abs(score - treat)) < COMPLETE_SEPARATION_GAP
        or infinite_weight.any()
    ):
        raise InsufficientDataError(
            "no weighted estimate: the propensity model separates the exposed and unexposed "
            "episodes (some covariate pattern is always or never treated, so positivity "
            f"fails and weights are undefined); {REPORT_SAYS}."
        )
    # a score that rounds to exactly 0 or 1 in the expected direction makes the other arm's
    # weight 0/0 in floating point: keep it a hair inside (0, 1), where its weight is ~1
    return np.clip(score, SCORE_FLOOR, 1 - SCORE_FLOOR)


def truncate_scores(
    score: np.ndarray, percentiles: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, Truncation]:
    """Clip ``score`` to its ``percentiles`` (0–100); return the clipped scores, the mask of
    changed rows and a :class:`Truncation` record."""
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(
            f"truncate_percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}"
        )
    lo, hi = np.percentile(score, [lo_p, hi_p])
    clipped = np.clip(score, lo, hi)
    low, high = score < lo, score > hi
    record = Truncation(
        lower_percentile=float(lo_p),
        upper_percentile=float(hi_p),
        lower_bound=float(lo),
        upper_bound=float(hi),
        n_lower=int(low.sum()),
        n_upper=int(high.sum()),
    )
    return clipped, low | high, record


def fit_propensity(
    cohort: pd.DataFrame,
    *,
    truncate_percentiles: tuple[float, float] | None = None,
    what: str = "weighted estimate",
    threshold: int = DEFAULT_THRESHOLD,
    covariates: Sequence[str] | None = None,
) -> PropensityFit:
    """Fit the propensity model on the analytic cohort (cohort.parquet columns).

    ``truncate_percentiles``: ``None`` (default: no truncation, no trimming) or ``(lo, hi)``
    percentiles (0–100) at which to truncate the fitted scores, recorded in the result.
    ``what`` names the estimate in error messages; ``threshold`` is the small-cell threshold
    for counts written into notes. ``covariates`` (sensitivity analyses and tests): restrict
    the model to these adjustment-set columns (the rows stay the full set's complete cases).
    Raises ``InsufficientDataError`` as
    :func:`mgca.analysis.estimation.models.prepare_adjusted` does, and when the arms are separated.
    """
    adjusted = prepare_adjusted(cohort, what)
    notes = list(adjusted.notes)
    model_rows = adjusted
    if covariates is not None:
        kept = [c for c in adjusted.covariates if c in set(covariates)]
        model_rows = replace(adjusted, covariates=kept)
        notes.append(f"propensity model restricted to {', '.join(kept) or 'the intercept'}")
    X, names, one_arm = propensity_design(model_rows)
    if one_arm:
        notes.append(
            "factor levels seen in one exposure arm only were merged into the reference level "
            f"in the propensity model (they would separate the arms): {', '.join(one_arm)}"
        )
    raw = fit_logit(adjusted.treat, X)
    n_extreme = int(((raw < SEPARATION_BOUND) | (raw > 1 - SEPARATION_BOUND)).sum())
    if n_extreme:
        notes.append(
            f"{display_count(n_extreme, threshold)} episodes have a propensity score within "
            f"{SEPARATION_BOUND:g} of 0 or 1 (treatment near-deterministic for their "
            "covariates: positivity doubtful there; the outcome model carries them in the "
            "doubly robust estimate)"
        )
    if truncate_percentiles is None:
        score, mask, record = raw, np.zeros(len(raw), dtype=bool), None
        notes.append("no propensity scores or weights were truncated or trimmed")
    else:
        score, mask, record = truncate_scores(raw, truncate_percentiles)
        notes.append(record.note(threshold))
    return PropensityFit(
        adjusted=adjusted,
        score=score,
        raw_score=raw,
        X=X,
        column_names=names,
        truncated=mask,
        truncation=record,
        notes=notes,
    )


def ate_weights(treat: np.ndarray, score: np.ndarray, *, stabilised: bool = True) -> np.ndarray:
    """Inverse-probability weights for the ATE (unitless).

    Exposed: ``1 / e``; unexposed: ``1 / (1 − e)``. Stabilised (default): multiplied by the
    marginal share of the episode's own arm (``P(exposed)`` or ``1 − P(exposed)``), so each
    arm's weights sum to about its size. Normalised (Hájek) estimators give the same answer
    either way; stabilising only makes the weights readable and the Kish ESS comparable.
    """
    treat = np.asarray(treat, dtype=float)
    score = np.asarray(score, dtype=float)
    w = np.where(treat == 1, 1.0 / score, 1.0 / (1.0 - score))
    if stabilised:
        p = treat.mean()
        w = w * np.where(treat == 1, p, 1.0 - p)
    return w

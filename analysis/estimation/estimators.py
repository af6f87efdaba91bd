"""Weighting estimators of the primary contrast: IPW (Hájek) and augmented IPW (doubly robust).

Both take the analytic cohort (cohort.parquet columns) and return one results.json
``estimates`` entry with exactly the keys of :func:`mgca.analysis.estimation.models.fit_primary`.
Estimates, standard errors and CI bounds are in mmol/L of albumin-corrected calcium at the
horizon; p-values are two-sided; intervals are 95 % from a t distribution with (number of
patients − 1) degrees of freedom, as for the primary estimate. Both use the same
complete-case rows as ``fit_primary`` (:func:`mgca.analysis.estimation.models.prepare_adjusted`)
and the
propensity model of :mod:`mgca.analysis.estimation.propensity`.

Estimand. IPW and AIPW target the ATE of the population the analytic cohort represents (the
marginal ATE over the cohort's covariate distribution): their influence-function variance
counts the sampling of covariates. So does ``fit_primary``'s patient-cluster bootstrap (its
delta-method interval, kept beside it, treats the covariates as fixed: the sample ATE).
``overlap_ate`` targets the average effect in the overlap population instead.
All three estimate the same number, the mean over the cohort's episodes of the effect of Mg
repletion in the grace period, and the recovery tests compare each with the simulator's truth
for the pipeline's own cohort.

- ``ipw_ate`` (name ``"ipw"``): difference of stabilised, normalised (Hájek) inverse-
  probability-weighted means. Default SE: M-estimation sandwich stacking the propensity
  score equations with the two weighted-mean equations, meat summed by patient (so it
  accounts both for clustering and for the estimated propensity score; Lunceford & Davidian
  2004, Stat Med 23:2937), with the CR1 small-sample factor ``G/(G−1)·(n−1)/(n−K)`` the
  primary's statsmodels covariance also uses. Optional: a patient-cluster bootstrap
  (``se_method="bootstrap"``, 200 resamples, fixed seed) that refits the propensity model in
  each resample.
- ``aipw_ate`` (name ``"doubly_robust"``): augmented IPW (Robins, Rotnitzky & Zhao 1994;
  Bang & Robins 2005), with the primary outcome model (fully interacted OLS = one
  regression per arm, same splines) for the arm-specific predictions and the propensity model
  for the weights. Consistent when either model is right. SE from the estimated influence
  function summed by patient (cluster-robust, same CR1 factor), treating the nuisance models
  as known (the standard, asymptotically valid choice when both are consistent).

Small samples: every patient-clustered sandwich here (and the primary's CR1) is too small
when each arm holds only about 100 episodes for its 11-parameter model (leverage); see the
recovery test's ``se_ratio`` column.

Post-index variables (``calcium_in_grace``, ``outcome_hours_from_index``, doses) are never
adjusted for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from mgca.analysis.estimation import diagnostics
from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    CLUSTER,
    MODEL_SPEC_WORDS,
    OUTCOME,
    REPORT_SAYS,
    AdjustedData,
    InsufficientDataError,
    ModelSpec,
    bootstrap_interval,
    choose_model_spec,
    estimate_entry,
    interacted_design,
    outcome_design,
    resample_counts,
    t_interval,
)
from mgca.analysis.estimation.propensity import (
    DEFAULT_THRESHOLD,
    PROPENSITY_METHOD,
    PropensityFit,
    fit_propensity,
)
from mgca.analysis.text import overlap_estimand, weighted_estimand
from mgca.config import EstimationConfig, StudyConfig

N_BOOTSTRAP = 200
"""Patient-cluster bootstrap resamples for ``ipw_ate(..., se_method="bootstrap")``."""
BOOTSTRAP_SEED = 20261124
"""Seed of the bootstrap resampling (fixed: a rerun gives the same interval)."""

SeMethod = Literal["sandwich", "bootstrap"]


def cluster_se(influence: np.ndarray, groups: pd.Series, n_params: int = 0) -> float:
    """Standard error of a mean-zero influence function summed by cluster (mmol/L).

    ``influence``: one value per row (the estimator minus its target is about
    ``mean(influence)``); ``groups``: the cluster of each row; ``n_params``: parameters
    estimated on the way (propensity and outcome models). Variance
    ``G/(G−1) · (n−1)/(n−K) · Σ_g (Σ_{i∈g} IF_i)² / n²``: the small-sample factor of Stata's
    and statsmodels' CR1 cluster covariance (the one the primary estimate uses), with ``K``
    = ``n_params`` (no ``(n−1)/(n−K)`` factor when 0).
    """
    n = len(influence)
    codes, _ = pd.factorize(groups.astype(str))
    sums = np.bincount(codes, weights=influence)
    g = len(sums)
    factor = g / (g - 1) if g > 1 else 1.0
    if 0 < n_params < n - 1:
        factor *= (n - 1) / (n - n_params)
    return float(np.sqrt(factor * np.sum(sums**2)) / n)


def hajek_means(treat: np.ndarray, y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Normalised inverse-probability-weighted mean outcome under exposure and non-exposure."""
    w1 = treat / score
    w0 = (1 - treat) / (1 - score)
    return float(np.sum(w1 * y) / np.sum(w1)), float(np.sum(w0 * y) / np.sum(w0))


def ipw_influence(ps: PropensityFit, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Hájek IPW ATE and its influence function from the stacked M-estimation sandwich.

    Parameters ``θ = (β, μ1, μ0)`` solve ``Σ ψ_i(θ) = 0`` with ``ψ_β = X (T − e)``,
    ``ψ_1 = T (Y − μ1) / e``, ``ψ_0 = (1 − T)(Y − μ0) / (1 − e)``. The influence of row ``i``
    on ``θ`` is ``−J⁻¹ ψ_i`` with ``J = mean(∂ψ/∂θ')``; the ATE's is the μ1 minus μ0 entry.
    Truncated scores are constant in ``β`` (their bounds are treated as fixed).
    """
    t, e, X = ps.treat, ps.score, ps.X
    raw = ps.raw_score
    mu1, mu0 = hajek_means(t, y, e)
    n, p = X.shape
    de = np.where(ps.truncated, 0.0, raw * (1 - raw))  # ∂e/∂η per row
    r1 = t * (y - mu1)
    r0 = (1 - t) * (y - mu0)
    psi = np.column_stack([X * (t - raw)[:, None], r1 / e, r0 / (1 - e)])
    J = np.zeros((p + 2, p + 2))
    J[:p, :p] = -(X * (raw * (1 - raw))[:, None]).T @ X / n
    J[p, :p] = -(r1 * de / e**2) @ X / n
    J[p, p] = -np.mean(t / e)
    J[p + 1, :p] = (r0 * de / (1 - e) ** 2) @ X / n
    J[p + 1, p + 1] = -np.mean((1 - t) / (1 - e))
    influence = -psi @ np.linalg.inv(J).T
    return mu1 - mu0, influence[:, p] - influence[:, p + 1]


def _bootstrap_se(
    ps: PropensityFit, y: np.ndarray, n_boot: int, seed: int
) -> tuple[float, int, int]:
    """Patient-cluster bootstrap SE of the Hájek IPW ATE, refitting the propensity model.

    Resamples patients with replacement (all their episodes together); the design matrix
    (spline knots) stays the full-sample one, truncation bounds too. Returns (SE, resamples
    used, resamples skipped because the refitted model separated the arms or an arm was
    empty).
    """

    def ipw(treat: np.ndarray, score: np.ndarray, w: np.ndarray) -> float:
        if ps.truncation is not None:
            score = np.clip(score, ps.truncation.lower_bound, ps.truncation.upper_bound)
        w1, w0 = w * treat / score, w * (1 - treat) / (1 - score)
        return float(np.sum(w1 * y) / np.sum(w1) - np.sum(w0 * y) / np.sum(w0))

    values, skipped = propensity_bootstrap(ps, ipw, n_boot, seed)
    if len(values) < 2:
        raise InsufficientDataError(
            f"no IPW estimate: the bootstrap could not refit the propensity model; {REPORT_SAYS}."
        )
    return float(np.std(values, ddof=1)), len(values), skipped


def _weighting_notes(ps: PropensityFit, threshold: int) -> list[str]:
    notes = list(ps.notes)
    notes += [f"diagnostic: {w}" for w in diagnostics.weighting_warnings(ps, threshold=threshold)]
    return notes


def ipw_ate(
    cohort: pd.DataFrame,
    study: StudyConfig | None = None,
    *,
    se_method: SeMethod = "sandwich",
    n_boot: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
    truncate_percentiles: tuple[float, float] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    propensity_covariates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Hájek (stabilised, normalised) IPW difference in mean outcome, mmol/L.

    ``se_method``: ``"sandwich"`` (default; stacked M-estimation, patient-clustered meat) or
    ``"bootstrap"`` (``n_boot`` patient-cluster resamples with ``seed``, refitting the
    propensity model). ``truncate_percentiles``: see :func:`fit_propensity` (default none).
    ``threshold``: small-cell threshold for counts in notes. ``propensity_covariates``
    (sensitivity analyses and tests): restrict the propensity model to these adjustment-set
    columns. Raises ``InsufficientDataError`` like ``fit_primary`` and when the arms are
    separated.
    """
    what = "IPW estimate"
    ps = fit_propensity(
        cohort,
        truncate_percentiles=truncate_percentiles,
        what=what,
        threshold=threshold,
        covariates=propensity_covariates,
    )
    data = ps.adjusted.data
    y = data[OUTCOME].to_numpy(dtype=float)
    ate, influence = ipw_influence(ps, y)
    n_clusters = int(data[CLUSTER].nunique())
    notes = _weighting_notes(ps, threshold)
    if se_method == "sandwich":
        se = cluster_se(influence, data[CLUSTER], n_params=ps.X.shape[1] + 2)
        se_words = (
            "SE from the M-estimation sandwich stacking the propensity score equations with "
            "the two weighted-mean equations (accounts for the estimated propensity score), "
            "meat summed by patient (cluster-robust; CR1 small-sample factor "
            "G/(G−1)·(n−1)/(n−K), K = propensity parameters + 2)"
        )
    elif se_method == "bootstrap":
        se, used, skipped = _bootstrap_se(ps, y, n_boot, seed)
        se_words = (
            f"SE from a patient-cluster bootstrap ({n_boot} resamples of patients with "
            f"replacement, seed {seed}; the propensity model refitted in each, spline knots "
            "fixed at the full sample)"
        )
        if skipped:
            notes.append(
                f"bootstrap: {skipped} of {n_boot} resamples skipped (an arm empty or "
                f"separated); SE from the other {used}"
            )
    else:
        raise ValueError(f"se_method must be 'sandwich' or 'bootstrap', got {se_method!r}")
    if n_clusters < 30:
        notes.append("fewer than 30 patients: clustered standard errors may be too small")
    method = (
        f"{PROPENSITY_METHOD}. Inverse-probability weights 1/e (exposed) and 1/(1 − e) "
        "(unexposed), stabilised by the arm's share; Hájek (normalised) weighted mean outcome "
        f"per arm, ATE = difference. {se_words}; 95 % CI and p-value from t with "
        "(patients − 1) df."
    )
    return estimate_entry(
        name="ipw",
        estimand=weighted_estimand(study),
        study=study,
        stats=t_interval(ate, se, n_clusters),
        data=data,
        treat=ps.treat,
        n_dropped=ps.adjusted.n_dropped,
        method=method,
        adjustment_set=list(ADJUSTMENT_SET),
        notes=notes,
    )


def aipw_scores(ps: PropensityFit, y: np.ndarray, m1: np.ndarray, m0: np.ndarray) -> np.ndarray:
    """Per-episode AIPW scores (mmol/L); their mean is the ATE.

    ``m1 − m0 + T (Y − m1) / e − (1 − T)(Y − m0) / (1 − e)`` with ``m1``, ``m0`` the outcome
    model's predictions under exposure and non-exposure and ``e`` the propensity score.
    """
    t, e = ps.treat, ps.score
    return m1 - m0 + t * (y - m1) / e - (1 - t) * (y - m0) / (1 - e)


def outcome_predictions(
    adjusted: AdjustedData, what: str, spec: ModelSpec | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Predictions (mmol/L) of the primary outcome model with everyone exposed / unexposed.

    ``spec``: the outcome model (default: the fully interacted one, one regression per arm);
    the doubly robust estimate passes the one the pre-specified rule chose for the primary.
    Fitted by least squares on the analysed rows; returns ``(m1, m0, notes, number of
    parameters)``.
    """
    design = (
        interacted_design(adjusted, what) if spec is None else outcome_design(adjusted, what, spec)
    )
    beta, *_ = np.linalg.lstsq(design.X, design.y, rcond=None)
    notes = [design.dropped_note] if design.dropped_note else []
    return design.x1 @ beta, design.x0 @ beta, notes, design.X.shape[1]


def aipw_ate(
    cohort: pd.DataFrame,
    study: StudyConfig | None = None,
    *,
    truncate_percentiles: tuple[float, float] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    outcome_covariates: Sequence[str] | None = None,
    propensity_covariates: Sequence[str] | None = None,
    estimation: EstimationConfig | None = None,
) -> dict[str, Any]:
    """Augmented IPW (doubly robust) ATE, mmol/L, with a patient-clustered influence SE.

    Outcome model: the primary model (exposure × adjustment terms, OLS). Propensity model:
    :func:`fit_propensity`. ``truncate_percentiles``/``threshold``: as for :func:`ipw_ate`.
    The outcome model is the one the pre-specified rule (:func:`choose_model_spec`, with
    ``estimation``) picks for these rows, as for the primary estimate.
    ``outcome_covariates`` / ``propensity_covariates`` (sensitivity analyses and tests of
    double robustness): restrict either model to these adjustment-set columns; the rows stay
    the full set's complete cases. Raises
    ``InsufficientDataError`` like ``fit_primary`` and when the arms are separated.
    """
    what = "doubly robust estimate"
    ps = fit_propensity(
        cohort,
        truncate_percentiles=truncate_percentiles,
        what=what,
        threshold=threshold,
        covariates=propensity_covariates,
    )
    data = ps.adjusted.data
    y = data[OUTCOME].to_numpy(dtype=float)
    outcome_rows = ps.adjusted
    model_notes: list[str] = []
    if outcome_covariates is not None:
        kept = [c for c in outcome_rows.covariates if c in set(outcome_covariates)]
        outcome_rows = replace(outcome_rows, covariates=kept)
        model_notes.append(f"outcome model restricted to {', '.join(kept) or 'the intercept'}")
    spec = choose_model_spec(
        outcome_rows, (estimation or EstimationConfig()).min_episodes_per_parameter
    )
    m1, m0, design_notes, n_outcome = outcome_predictions(outcome_rows, what, spec)
    scores = aipw_scores(ps, y, m1, m0)
    ate = float(scores.mean())
    se = cluster_se(scores - ate, data[CLUSTER], n_params=ps.X.shape[1] + n_outcome)
    n_clusters = int(data[CLUSTER].nunique())
    notes = _weighting_notes(ps, threshold) + design_notes + model_notes
    if n_clusters < 30:
        notes.append("fewer than 30 patients: clustered standard errors may be too small")
    method = (
        "Augmented inverse-probability weighting (doubly robust; Robins, Rotnitzky & Zhao "
        "1994): mean over episodes of m1 − m0 + T(Y − m1)/e − (1 − T)(Y − m0)/(1 − e). "
        f"Outcome model m: the primary model ({MODEL_SPEC_WORDS[spec.name]}, chosen by the "
        "same pre-specified rule). "
        f"{PROPENSITY_METHOD}, e. SE from the estimated influence function summed by patient "
        "(cluster-robust; nuisance models treated as known; CR1 small-sample factor "
        "G/(G−1)·(n−1)/(n−K), K = propensity + outcome-model parameters); 95 % CI and "
        "p-value from t with (patients − 1) df."
    )
    entry = estimate_entry(
        name="doubly_robust",
        estimand=weighted_estimand(study),
        study=study,
        stats=t_interval(ate, se, n_clusters),
        data=data,
        treat=ps.treat,
        n_dropped=ps.adjusted.n_dropped,
        method=method,
        adjustment_set=list(ADJUSTMENT_SET),
        notes=notes,
    )
    entry["model_spec"] = spec.record()
    return entry


# ---------------------------------------------------------------------------------------------
# the overlap population


def overlap_weights(treat: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Overlap weights (Li, Morgan & Zaslavsky 2018, JASA 113:390), unitless.

    Exposed: ``1 − e``; unexposed: ``e``. Each episode counts in proportion to the
    probability that it could have been in the other arm, so episodes whose treatment was
    all but certain count for almost nothing and no weight is ever extreme. With a logistic
    propensity model the weighted means of every model covariate are exactly equal in the two
    arms.
    """
    treat = np.asarray(treat, dtype=float)
    score = np.asarray(score, dtype=float)
    return np.where(treat == 1, 1.0 - score, score)


def _overlap_difference(
    treat: np.ndarray, y: np.ndarray, score: np.ndarray, frequency: np.ndarray | float = 1.0
) -> float:
    """Overlap-weighted (Hájek) exposed − unexposed mean outcome; ``frequency``: bootstrap
    multiplicities of the episodes."""
    w = overlap_weights(treat, score) * frequency
    w1, w0 = w * treat, w * (1 - treat)
    return float(np.sum(w1 * y) / np.sum(w1) - np.sum(w0 * y) / np.sum(w0))


def weighted_logit(
    treat: np.ndarray, X: np.ndarray, weights: np.ndarray, start: np.ndarray, max_iter: int = 25
) -> np.ndarray | None:
    """Scores of a frequency-weighted logistic regression by Newton–Raphson from ``start``
    (the full-sample coefficients), or ``None`` when it does not converge or separates."""
    beta = start.copy()
    for _ in range(max_iter):
        e = 1 / (1 + np.exp(-np.clip(X @ beta, -30, 30)))
        hessian = (X * (weights * e * (1 - e))[:, None]).T @ X
        try:
            step = np.linalg.solve(hessian, X.T @ (weights * (treat - e)))
        except np.linalg.LinAlgError:
            return None
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            e = 1 / (1 + np.exp(-np.clip(X @ beta, -30, 30)))
            return e if np.all((e > 1e-12) & (e < 1 - 1e-12)) else None
    return None


def propensity_bootstrap(
    ps: PropensityFit,
    contrast: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
    n_replicates: int,
    seed: int,
) -> tuple[np.ndarray, int]:
    """Patient-cluster bootstrap of a weighted contrast that refits the propensity model.

    Each resample weights every episode by how often its patient was drawn
    (:func:`mgca.analysis.estimation.models.resample_counts`), refits the propensity model as a
    frequency-weighted logit (:func:`weighted_logit`, from the full-sample coefficients;
    design and spline knots fixed at the full sample) and evaluates
    ``contrast(treat, score, frequency_weights)``. Returns the values and the number of
    resamples skipped (an arm empty, or the refit did not converge or separated).
    """
    treat, X = ps.treat, ps.X
    codes, _ = pd.factorize(ps.adjusted.data[CLUSTER].astype(str), sort=True)
    with np.errstate(divide="ignore"):
        logit = np.log(ps.raw_score / (1 - ps.raw_score))
    start, *_ = np.linalg.lstsq(X, logit, rcond=None)
    values: list[float] = []
    skipped = 0
    for counts in resample_counts(int(codes.max()) + 1, n_replicates, seed):
        for row in counts:
            w = row[codes]
            score = None
            if np.sum(w * treat) > 0 and np.sum(w * (1 - treat)) > 0:
                score = weighted_logit(treat, X, w, start)
            if score is None:
                skipped += 1
            else:
                values.append(contrast(treat, score, w))
    return np.asarray(values), skipped


def overlap_ate(
    cohort: pd.DataFrame,
    study: StudyConfig | None = None,
    *,
    estimation: EstimationConfig | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """Overlap-weighted (ATO) difference in mean outcome, mmol/L (name ``"overlap"``).

    The answer when too many propensity scores are extreme for the full-cohort average to
    rest on data rather than on the outcome model's extrapolation: the overlap population is
    where exposed and unexposed episodes are comparable. Hájek means with
    :func:`overlap_weights`; SE from a patient-cluster bootstrap that refits the propensity
    model in each resample (``estimation.bootstrap_replicates``, ``bootstrap_seed``), t with
    (patients − 1) df. Raises ``InsufficientDataError`` like :func:`ipw_ate`.
    """
    what = "overlap-population estimate"
    estimation = estimation or EstimationConfig()
    ps = fit_propensity(cohort, what=what, threshold=threshold)
    data = ps.adjusted.data
    y = data[OUTCOME].to_numpy(dtype=float)
    treat = ps.treat
    estimate = _overlap_difference(treat, y, ps.score)

    values, skipped = propensity_bootstrap(
        ps,
        lambda t, e, w: _overlap_difference(t, y, e, w),
        estimation.bootstrap_replicates,
        estimation.bootstrap_seed,
    )
    if len(values) < 2:
        raise InsufficientDataError(
            f"no {what}: the bootstrap could not refit the propensity model; {REPORT_SAYS}."
        )
    n_clusters = int(data[CLUSTER].nunique())
    notes = list(ps.notes)
    if skipped:
        notes.append(
            f"bootstrap: {skipped} of {estimation.bootstrap_replicates} resamples skipped (an "
            f"arm empty or separated); SE from the other {len(values)}"
        )
    method = (
        f"{PROPENSITY_METHOD}. Overlap weights 1 − e (exposed) and e (unexposed) (Li, Morgan "
        "& Zaslavsky 2018): exact mean balance of every propensity-model covariate, no "
        "extreme weights; Hájek weighted mean outcome per arm, ATO = difference. SE from a "
        f"patient-cluster bootstrap ({estimation.bootstrap_replicates} resamples of whole "
        f"patients, seed {estimation.bootstrap_seed}, propensity model refitted in each); "
        "95 % CI and p-value from t with (patients − 1) df."
    )
    return estimate_entry(
        name="overlap",
        estimand=overlap_estimand(study),
        study=study,
        stats=bootstrap_interval(estimate, values, n_clusters),
        data=data,
        treat=treat,
        n_dropped=ps.adjusted.n_dropped,
        method=method,
        adjustment_set=list(ADJUSTMENT_SET),
        notes=notes,
    )

"""The primary estimate with missing outcomes weighted, not dropped, and the results.json
``missing_outcomes`` block.

:func:`fit_primary_ipcw` is the primary g-computation of
:func:`mgca.analysis.estimation.models.fit_primary` over *all eligible episodes*
(``eligible_episodes``: outcome measured or not): the outcome model (the same pre-specified
model rule) is fitted by weighted least squares on the measured episodes with the censoring
weights of :mod:`mgca.analysis.estimation.censoring`, and the predicted exposed − unexposed
difference is averaged over every eligible episode. The entry keeps the name ``primary`` and
every key of the complete-case entry, and adds ``missing_outcome_handling`` and
``censoring_model``. The complete-case fit stays beside it as ``primary_complete_case``.

Estimates, SEs and CI bounds are in mmol/L of albumin-corrected calcium.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm

from mgca.analysis.estimation.censoring import (
    MISSING_REASONS,
    OBSERVED,
    REASON,
    CensoringFit,
    fit_censoring,
)
from mgca.analysis.estimation.composite import COUNT_KEYS as COMPOSITE_COUNT_KEYS
from mgca.analysis.estimation.composite import composite_risk_difference
from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    CATEGORICAL_COVARIATES,
    CLUSTER,
    EXPOSURE,
    MODEL_SPEC_WORDS,
    OUTCOME,
    REPORT_SAYS,
    InsufficientDataError,
    bootstrap_interval,
    check_columns,
    choose_model_spec,
    cluster_sums,
    complete_cases,
    covariate_rhs,
    estimate_entry,
    exposure_indicator,
    factor_column,
    independent_columns,
    linear_contrast,
    outcome_design,
    prepare_adjusted,
    recorded_covariates,
    resample_counts,
)
from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import suppress_count, suppress_estimate
from mgca.analysis.text import (
    complete_case_estimand,
    eligible_cohort_words,
    ipcw_estimand,
    ipcw_method,
)
from mgca.config import EstimationConfig, StudyConfig

HANDLING = "inverse probability of censoring weights (stabilised, truncated)"
"""results.json ``missing_outcome_handling`` of the IPCW primary."""

_Y = "y"
_TREAT = "mg_repletion"


def _design(
    data: pd.DataFrame, covariates: Sequence[str], splines: bool, interacted: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Observed, everyone-exposed and everyone-unexposed design matrices over all rows of
    ``data`` (the outcome filled with 0 where missing: it is never read there)."""
    frame = pd.DataFrame(
        {
            _Y: data[OUTCOME].astype(float).fillna(0.0).to_numpy(),
            _TREAT: exposure_indicator(data[EXPOSURE]),
        }
    )
    for col in covariates:
        if col in CATEGORICAL_COVARIATES:
            frame[col] = factor_column(data[col])
        else:
            frame[col] = data[col].astype(float).to_numpy()
    joiner = "*" if interacted else "+"
    rhs = covariate_rhs(covariates, splines)
    _, x_mat = patsy.dmatrices(f"{_Y} ~ {_TREAT} {joiner} ({rhs})", frame, NA_action="raise")
    design = x_mat.design_info
    (x1,) = patsy.build_design_matrices([design], frame.assign(**{_TREAT: 1.0}))
    (x0,) = patsy.build_design_matrices([design], frame.assign(**{_TREAT: 0.0}))
    return np.asarray(x_mat), np.asarray(x1), np.asarray(x0), list(design.column_names)


def _weighted_bootstrap(
    X: np.ndarray,
    diff: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    treat: np.ndarray,
    groups: pd.Series,
    n_replicates: int,
    seed: int,
) -> tuple[np.ndarray, int]:
    """Patient-cluster bootstrap of the weighted g-computation ATE over all eligible rows.

    Each resample refits the weighted least squares (``w`` is 0 on unmeasured rows) and
    averages ``diff · β`` over the resampled eligible episodes; resamples without a measured
    episode in an arm are skipped. Returns the ATEs and the number skipped.
    """
    n, p = X.shape
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    Xs, Ds = X / scale, diff / scale
    measured = (w > 0).astype(float)
    per_patient = cluster_sums(
        groups,
        np.column_stack(
            [
                (w[:, None, None] * Xs[:, :, None] * Xs[:, None, :]).reshape(n, p * p),
                Xs * (w * y)[:, None],
                Ds,
                np.ones(n),
                treat * measured,
                (1 - treat) * measured,
            ]
        ),
    )
    xx, xy = per_patient[:, : p * p], per_patient[:, p * p : p * p + p]
    dd = per_patient[:, p * p + p : p * p + 2 * p]
    rows, m1, m0 = per_patient[:, -3], per_patient[:, -2], per_patient[:, -1]
    values: list[np.ndarray] = []
    skipped = 0
    for counts in resample_counts(len(per_patient), n_replicates, seed):
        ok = ((counts @ m1) > 0) & ((counts @ m0) > 0)
        skipped += int((~ok).sum())
        c = counts[ok]
        beta = np.linalg.pinv((c @ xx).reshape(-1, p, p), rcond=1e-13) @ (c @ xy)[..., None]
        mean_diff = (c @ dd) / (c @ rows)[:, None]
        values.append(np.sum(mean_diff * beta[..., 0], axis=1))
    return (np.concatenate(values) if values else np.array([])), skipped


def complete_case_entry(entry: dict[str, Any], study: StudyConfig | None) -> dict[str, Any]:
    """The complete-case primary fit (``fit_primary``) renamed ``primary_complete_case``."""
    return {
        **entry,
        "name": "primary_complete_case",
        "estimand": complete_case_estimand(study),
        "missing_outcome_handling": "complete cases (episodes without an outcome dropped)",
        "censoring_model": None,
    }


def eligible_rows(
    eligible: pd.DataFrame, adjustment: Sequence[str] = ADJUSTMENT_SET
) -> tuple[pd.DataFrame, int]:
    """Eligible episodes complete in the arm, the cluster and the ``adjustment`` columns the
    source records (:func:`recorded_covariates`; outcome may be missing), with
    ``outcome_observed`` true only where the outcome is present; n dropped."""
    adjustment, _ = recorded_covariates(eligible, adjustment)  # a proxy not recorded: out
    needed = [CLUSTER, EXPOSURE, OBSERVED, *adjustment]
    check_columns(eligible, [*needed, OUTCOME])
    data, n_dropped = complete_cases(eligible, needed)
    data[OBSERVED] = data[OBSERVED].astype(bool).to_numpy() & data[OUTCOME].notna().to_numpy()
    return data, n_dropped


def fit_primary_ipcw(
    eligible: pd.DataFrame,
    study: StudyConfig,
    estimation: EstimationConfig | None = None,
) -> tuple[dict[str, Any], CensoringFit]:
    """The IPCW primary (results.json ``estimates`` entry ``primary``) and its censoring fit.

    Raises ``InsufficientDataError`` like ``fit_primary`` (checked on the measured episodes).
    """
    what = "primary estimate"
    estimation = estimation or EstimationConfig()
    data, n_dropped = eligible_rows(eligible)
    observed = data[OBSERVED].to_numpy()
    adjusted = prepare_adjusted(data.loc[observed].reset_index(drop=True), what)
    spec = choose_model_spec(adjusted, estimation.min_episodes_per_parameter)
    checked = outcome_design(adjusted, what, spec)  # raises when an arm is too small
    censoring = fit_censoring(
        data,
        ADJUSTMENT_SET,
        truncation_quantile=estimation.ipcw_truncation_quantile,
        min_episodes_per_parameter=estimation.min_episodes_per_parameter,
    )
    X, x1, x0, _ = _design(data, adjusted.covariates, spec.splines, spec.interacted)
    keep = independent_columns(X[observed])
    X, diff = X[:, keep], (x1 - x0)[:, keep]
    y = data[OUTCOME].astype(float).fillna(0.0).to_numpy()
    w = censoring.weights
    treat = exposure_indicator(data[EXPOSURE])
    codes, _ = pd.factorize(data.loc[observed, CLUSTER].astype(str), sort=True)
    fit = sm.WLS(y[observed], X[observed], weights=w[observed]).fit(
        cov_type="cluster", cov_kwds={"groups": codes}, use_t=True
    )
    delta = linear_contrast(fit, diff.mean(axis=0))
    values, skipped = _weighted_bootstrap(
        X,
        diff,
        y,
        w,
        treat,
        data[CLUSTER],
        estimation.bootstrap_replicates,
        estimation.bootstrap_seed,
    )
    if len(values) < 2:
        raise InsufficientDataError(
            f"no {what}: the patient-cluster bootstrap could not refit the weighted outcome "
            f"model; {REPORT_SAYS}."
        )
    notes = list(dict.fromkeys([*adjusted.notes, *censoring.notes]))
    if checked.dropped_note:
        notes.append(checked.dropped_note)
    if n_dropped:
        notes.append(
            "eligible episodes missing the exposure or an adjustment covariate were left out "
            "(count in n_dropped)"
        )
    if skipped:
        notes.append(
            f"bootstrap: {skipped} of {estimation.bootstrap_replicates} resamples skipped (no "
            f"measured episode in an arm); SE from the other {len(values)}"
        )
    stats = bootstrap_interval(
        float(delta["estimate"] or np.nan), values, int(data[CLUSTER].nunique())
    )
    entry = estimate_entry(
        name="primary",
        estimand=ipcw_estimand(study),
        study=study,
        stats=stats,
        data=data,
        treat=treat,
        n_dropped=n_dropped,
        method=ipcw_method(
            MODEL_SPEC_WORDS[spec.name],
            estimation.bootstrap_replicates,
            estimation.bootstrap_seed,
            estimation.ipcw_truncation_quantile,
        ),
        adjustment_set=list(ADJUSTMENT_SET),
        notes=notes,
    )
    entry["cohort"] = eligible_cohort_words(study)
    entry["model_spec"] = spec.record()
    entry["delta_method"] = {k: delta[k] for k in ("se", "ci_low", "ci_high", "p_value")}
    entry["missing_outcome_handling"] = HANDLING
    entry["censoring_model"] = (
        "arm only" if censoring.arm_only else "arm and " + ", ".join(censoring.covariates)
    )
    return entry, censoring


def missing_outcomes_analysis(
    eligible: pd.DataFrame | None,
    estimates: list[dict[str, Any]],
    study: StudyConfig,
    estimation: EstimationConfig,
    threshold: int,
    rounding: str = "none",
) -> dict[str, Any]:
    """results.json ``missing_outcomes`` for a run: the censoring model refitted as the IPCW
    primary fits it (cheap: one logistic regression), the composite sensitivity analysis
    with its counts suppressed, and the block of :func:`missing_outcomes_block`; ``{"reason":
    ...}`` when the run has no eligible-episode table or no eligible episode."""
    if eligible is None or eligible.empty:
        return {"reason": "no eligible episodes, so no missing outcomes to describe"}
    data, _ = eligible_rows(eligible)
    censoring: CensoringFit | None = None
    if len(data):
        censoring = fit_censoring(
            data,
            ADJUSTMENT_SET,
            truncation_quantile=estimation.ipcw_truncation_quantile,
            min_episodes_per_parameter=estimation.min_episodes_per_parameter,
        )
    composite = suppress_estimate(
        finite_or_none(composite_risk_difference(eligible, study)),
        COMPOSITE_COUNT_KEYS,
        ("n_exposed", "n_unexposed"),
        threshold,
    )
    block = missing_outcomes_block(eligible, censoring, estimates, composite, threshold, rounding)
    block["reason"] = None
    return block


def _count(n: int, threshold: int, rounding: str = "none") -> int | None:
    return suppress_count(int(n), threshold, rounding)


def missing_outcomes_block(
    eligible: pd.DataFrame,
    censoring: CensoringFit | None,
    estimates: list[dict[str, Any]],
    composite: dict[str, Any] | None,
    threshold: int,
    rounding: str = "none",
) -> dict[str, Any]:
    """results.json ``missing_outcomes``: eligible episodes per arm and reason (count rule),
    the censoring model's terms, the weight distribution, and complete-case vs IPCW.

    ``counts``: one record per arm with ``n_eligible``, ``n_measured`` and one ``n_<reason>``
    per :data:`~mgca.analysis.estimation.censoring.MISSING_REASONS` (a count below
    ``threshold`` is ``None``; the arm's other counts then too, so none can be recovered by
    subtraction; and when any count of any arm is hidden, every arm's ``n_eligible`` and
    ``n_measured``, which add up to the attrition's totals across arms).
    """
    data, _ = eligible_rows(eligible, ())
    treat = exposure_indicator(data[EXPOSURE])
    counts = []
    for arm, sel in (("exposed", treat == 1), ("unexposed", treat == 0)):
        part = data.loc[sel]
        record: dict[str, Any] = {
            "arm": arm,
            "n_eligible": len(part),
            "n_measured": int(part[OBSERVED].sum()),
        }
        for reason in MISSING_REASONS:
            record[f"n_{reason}"] = int((part[REASON] == reason).sum())
        shown = {
            k: (_count(v, threshold, rounding) if k != "arm" else v) for k, v in record.items()
        }
        reasons = [f"n_{r}" for r in MISSING_REASONS]
        hidden = [k for k in reasons if shown[k] is None]
        if len(hidden) == 1:
            # complementary suppression: one hidden reason is eligible − measured − the
            # others, so the smallest other non-zero reason is hidden with it
            others = [k for k in reasons if k not in hidden and record[k] > 0]
            if others:
                shown[min(others, key=lambda k: record[k])] = None
            else:
                shown["n_measured"] = shown["n_eligible"] = None
        counts.append(shown)
    if any(v is None for record in counts for v in record.values()):
        # the arms' eligible and measured counts add up to attrition totals (eligible before
        # the outcome step, analysed): one arm's hidden count would come back from the other
        for record in counts:
            record["n_measured"] = record["n_eligible"] = None
    by_name = {e["name"]: e for e in estimates}
    comparison = [
        {
            "name": name,
            "estimate": finite_or_none(by_name[name].get("estimate")),
            "ci_low": finite_or_none(by_name[name].get("ci_low")),
            "ci_high": finite_or_none(by_name[name].get("ci_high")),
            "handling": (
                by_name[name].get("missing_outcome_handling") or "complete cases (dropped)"
            ),
        }
        for name in ("primary", "primary_complete_case")
        if name in by_name
    ]
    block: dict[str, Any] = {
        "counts": counts,
        "reasons": list(MISSING_REASONS),
        "censoring_model": None,
        "weights": None,
        "comparison": comparison,
        "composite": composite,
    }
    if censoring is not None:
        block["censoring_model"] = {
            "arm_only": censoring.arm_only,
            "covariates": censoring.covariates,
            "terms": [finite_or_none(t) for t in censoring.terms],
            "notes": censoring.notes,
        }
        block["weights"] = {
            **{k: finite_or_none(v) for k, v in censoring.weight_summary().items()},
            "truncation_low": finite_or_none(censoring.truncation[0]),
            "truncation_high": finite_or_none(censoring.truncation[1]),
            "n_truncated": _count(censoring.n_truncated, threshold, rounding),
        }
    return block

"""Secondary analyses of the target trial: each returns results.json ``secondary`` entries.

Every function takes the analytic cohort (``cohort.parquet`` columns) and, where it needs
more than one row per episode or post-index data, a table derived in SQL (ARCHITECTURE.md):
``index_calcium_correction`` (``sql/calcium_correction_time.sql``), ``index_pth_response``
(``sql/pth_response.sql``) or ``calcium_trajectory_points``
(``sql/calcium_trajectory_points.sql``). Nothing here re-derives a cohort rule.

Shared choices:

- Adjustment: the primary adjustment set (:data:`mgca.analysis.estimation.models.ADJUSTMENT_SET`),
  entered as in the primary model (splines for baseline Mg and corrected Ca, log creatinine,
  sex as a factor), additively (no exposure × covariate interaction: the secondary models
  target a conditional contrast, except the risk difference, which is standardised).
- Inference: patient-clustered sandwich covariance (one patient can contribute several
  stays), 95 % Wald intervals (t with patients − 1 df for OLS, normal otherwise).
- Complete cases of the variables each model uses; rows left out are counted in
  ``n_dropped``.

Every entry has the keys of :func:`entry` and names its estimand, outcome, scale and model.
A model that cannot be fitted gives an entry with ``estimate: None`` and a ``reason``
(:func:`run_secondary`), never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    CATEGORICAL_COVARIATES,
    CI_LEVEL,
    CLUSTER,
    EXPOSURE,
    MIN_EPISODES,
    OUTCOME,
    InsufficientDataError,
    clustered_ols,
    complete_cases,
    covariate_rhs,
    exposure_indicator,
    factor_column,
    independent_columns,
    linear_contrast,
    recorded_covariates,
    usable_covariates,
)
from mgca.analysis.estimation.propensity import DEFAULT_THRESHOLD
from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import display_count
from mgca.analysis.text import horizon_outcome_words
from mgca.config import StudyConfig

SECONDARY_COUNT_KEYS: tuple[str, ...] = (
    "n",
    "n_exposed",
    "n_unexposed",
    "n_clusters",
    "n_dropped",
)
SECONDARY_GROUP_KEYS: tuple[str, ...] = ("n", "n_exposed", "n_unexposed")
DOSE_STEP_MMOL = 10.0
"""Dose-response slope is per this many mmol of elemental Mg (≈ 2.5 g MgSO4·7H2O)."""
_Z = float(stats.norm.ppf(0.5 + CI_LEVEL / 2))


# ---------------------------------------------------------------------------------------------
# shared mechanics


def entry(
    *,
    name: str,
    estimand: str,
    outcome: str,
    unit: str,
    scale: str,
    method: str,
    stats_: dict[str, float | None] | None = None,
    data: pd.DataFrame | None = None,
    n_dropped: int = 0,
    adjustment_set: Sequence[str] = (),
    notes: Sequence[str] = (),
    reason: str | None = None,
) -> dict[str, Any]:
    """One results.json ``secondary`` entry (the same keys for every analysis).

    ``stats_`` holds ``estimate``, ``ci_low``, ``ci_high``, ``p_value`` (``None`` when the
    model was not fitted; ``reason`` then says why). Counts come from ``data``.
    """
    values = stats_ or {}
    counts: dict[str, int | None] = dict.fromkeys(SECONDARY_COUNT_KEYS[:-1])
    if data is not None:
        treat = exposure_indicator(data[EXPOSURE])
        counts = {
            "n": len(data),
            "n_exposed": int(treat.sum()),
            "n_unexposed": int(len(treat) - treat.sum()),
            "n_clusters": int(data[CLUSTER].nunique()),
        }
    return {
        "name": name,
        "estimand": estimand,
        "outcome": outcome,
        "unit": unit,
        "scale": scale,
        "method": method,
        "estimate": values.get("estimate"),
        "ci_low": values.get("ci_low"),
        "ci_high": values.get("ci_high"),
        "p_value": values.get("p_value"),
        **counts,
        "n_dropped": n_dropped,
        "adjustment_set": list(adjustment_set),
        "notes": list(notes),
        "reason": reason,
    }


def _frame(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Plain float and categorical columns patsy understands (``factor_column``)."""
    out = pd.DataFrame(index=data.index)
    for col in columns:
        if col in CATEGORICAL_COVARIATES:
            out[col] = factor_column(data[col])
        elif data[col].dtype == bool or str(data[col].dtype) == "boolean":
            out[col] = data[col].astype(bool).astype(float)
        else:
            out[col] = pd.to_numeric(data[col], errors="coerce").astype(float)
    return out


def _adjusted_rows(
    data: pd.DataFrame, needed: Sequence[str], what: str, *, both_arms: bool = True
) -> tuple[pd.DataFrame, int, list[str]]:
    """Complete cases of ``needed`` + the adjustment set; covariates that vary in them."""
    adjustment, _ = recorded_covariates(data, ADJUSTMENT_SET)
    columns = [CLUSTER, EXPOSURE, *needed, *adjustment]
    kept, n_dropped = complete_cases(data, list(dict.fromkeys(columns)))
    if len(kept) < MIN_EPISODES:
        raise InsufficientDataError(f"no {what}: fewer than {MIN_EPISODES} analysable episodes")
    if kept[CLUSTER].nunique() < 2:
        raise InsufficientDataError(f"no {what}: all episodes come from one patient")
    treat = None
    if both_arms:
        treat = exposure_indicator(kept[EXPOSURE])
        if treat.sum() == 0 or treat.sum() == len(treat):
            raise InsufficientDataError(f"no {what}: one exposure arm has no analysable episodes")
    covariates, _ = usable_covariates(kept, adjustment, treat)
    return kept, n_dropped, covariates


def _design(
    data: pd.DataFrame, terms: str, covariates: Sequence[str], columns: Sequence[str]
) -> pd.DataFrame:
    """Design matrix (with names) of ``terms + adjustment`` on ``data``'s rows, without
    columns that are exact linear combinations of earlier ones."""
    frame = _frame(data, [*columns, *covariates])
    rhs = " + ".join(part for part in (terms, covariate_rhs(covariates)) if part != "1")
    X = patsy.dmatrix(rhs, frame, NA_action="raise", return_type="dataframe")
    # corrected Ca is total Ca + slope x (reference - albumin): one of the three is always
    # redundant; drop exact linear combinations of earlier columns (the terms come first,
    # so they are kept; fitted values and the terms' coefficients are unchanged)
    return X.iloc[:, independent_columns(X.to_numpy())]


def _groups(data: pd.DataFrame) -> np.ndarray:
    codes, _ = pd.factorize(data[CLUSTER].astype(str), sort=True)
    return codes


def _wald(estimate: float, se: float, *, log_scale: bool = False) -> dict[str, float | None]:
    """Normal-theory 95 % CI and two-sided p; on a log scale, exponentiated."""
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0):
        return {
            "estimate": finite_or_none(estimate),
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
        }
    low, high = estimate - _Z * se, estimate + _Z * se
    p = float(2 * stats.norm.sf(abs(estimate / se)))
    if log_scale:
        estimate, low, high = math.exp(estimate), math.exp(low), math.exp(high)
    return {"estimate": float(estimate), "ci_low": float(low), "ci_high": float(high), "p_value": p}


def _merge(cohort: pd.DataFrame, table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The cohort with ``columns`` of a per-episode SQL table joined on ``encounter_id``."""
    return cohort.merge(table[["encounter_id", *columns]], on="encounter_id", how="left")


def _adjustment_words() -> str:
    return (
        "adjusted for the primary adjustment set (splines of baseline Mg and corrected Ca, "
        "baseline total Ca, albumin, log creatinine, age, sex)"
    )


# ---------------------------------------------------------------------------------------------
# 1. calcium corrected within the window (logistic)


def correction_within_window(
    cohort: pd.DataFrame, correction: pd.DataFrame, study: StudyConfig
) -> list[dict[str, Any]]:
    """Calcium corrected (a corrected Ca ≥ the low threshold) within ``correction_window_hours``.

    Not run by the pipeline, which withholds this contrast by design (detection bias;
    :mod:`mgca.analysis.estimation.any_draw`): ``bench/secondary_null.py`` fits it to
    measure its null-world false-positive rate.

    Logistic regression of ``corrected_within_window`` (``index_calcium_correction``) on
    exposure + adjustment set, patient-clustered covariance. Two entries from one fit:
    the standardised risk difference (mean predicted probability with everyone exposed
    minus everyone unexposed, proportion 0–1, delta-method SE) and the conditional odds
    ratio of exposure. Episodes without a corrected Ca drawn in the window are left out.
    """
    what = f"logistic model of correction within {study.correction_window_hours} h"
    data = _merge(cohort, correction, ["corrected_within_window"])
    data, n_dropped, covariates = _adjusted_rows(data, ["corrected_within_window"], what)
    y = data["corrected_within_window"].astype(bool).to_numpy(dtype=float)
    if y.min() == y.max():
        raise InsufficientDataError(f"no {what}: every analysed episode has the same outcome")
    X = _design(data, EXPOSURE, covariates, [EXPOSURE])
    fit = sm.Logit(y, X).fit(
        disp=0, cov_type="cluster", cov_kwds={"groups": _groups(data)}, maxiter=200
    )
    j = list(X.columns).index(EXPOSURE)
    x1, x0 = X.copy(), X.copy()
    x1.iloc[:, j], x0.iloc[:, j] = 1.0, 0.0
    beta, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    p1, p0 = _expit(x1.to_numpy() @ beta), _expit(x0.to_numpy() @ beta)
    grad = (x1.to_numpy() * (p1 * (1 - p1))[:, None]).mean(0) - (
        x0.to_numpy() * (p0 * (1 - p0))[:, None]
    ).mean(0)
    rd, rd_se = float(p1.mean() - p0.mean()), float(math.sqrt(grad @ cov @ grad))
    outcome = (
        f"albumin-corrected Ca ≥ {study.ca_corrected_low_mmol_l:.2f} mmol/L at any draw in "
        f"(index + {study.grace_hours} h, index + {study.correction_window_hours} h]"
    )
    common = {
        "outcome": outcome,
        "data": data,
        "n_dropped": n_dropped,
        "adjustment_set": covariates,
        "notes": [
            "episodes without a corrected Ca drawn in the window are left out (n_dropped)",
            f"follow-up starts when the {study.grace_hours} h grace period ends (pre-specified): "
            "draws inside it, where the treated get extra post-dose re-checks, never count",
        ],
    }
    method = (
        f"Logistic regression on exposure, {_adjustment_words()}; patient-clustered sandwich "
        "covariance; 95 % Wald CI."
    )
    return [
        entry(
            name="calcium_corrected_risk_difference",
            estimand=(
                f"standardised risk difference (Mg repletion within {study.grace_hours} h vs "
                f"not) in the probability of calcium correction within "
                f"{study.correction_window_hours} h"
            ),
            unit="proportion (0–1)",
            scale="risk difference",
            method=method + " Risk difference standardised over the analysed episodes "
            "(g-computation), delta-method SE.",
            stats_=_wald(rd, rd_se),
            **common,
        ),
        entry(
            name="calcium_corrected_odds_ratio",
            estimand=(
                f"conditional odds ratio of calcium correction within "
                f"{study.correction_window_hours} h, Mg repletion within {study.grace_hours} h "
                "vs not"
            ),
            unit="ratio",
            scale="odds ratio",
            method=method,
            stats_=_wald(float(fit.params.iloc[j]), float(fit.bse.iloc[j]), log_scale=True),
            **common,
        ),
    ]


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# 2. time to correction (Cox)


def time_to_correction(
    cohort: pd.DataFrame, correction: pd.DataFrame, study: StudyConfig
) -> dict[str, Any]:
    """Hazard ratio of calcium correction, Mg repletion within grace vs not.

    Not run by the pipeline, which withholds this contrast by design (detection bias;
    :mod:`mgca.analysis.estimation.any_draw`): ``bench/secondary_null.py`` and the
    detection-bias recovery test fit it to show that it rejects where Mg does nothing.

    Cox proportional hazards (statsmodels ``PHReg``, Efron ties) of ``hours_to_event`` with
    event ``corrected`` (``index_calcium_correction``: censored at the last corrected Ca
    before discharge), exposure + adjustment set; robust sandwich covariance clustered on
    patient. Time in hours from index.
    """
    what = "Cox model of time to calcium correction"
    data = _merge(cohort, correction, ["hours_to_event", "corrected"])
    data, n_dropped, covariates = _adjusted_rows(data, ["hours_to_event", "corrected"], what)
    status = data["corrected"].astype(bool).to_numpy(dtype=float)
    if status.sum() == 0:
        raise InsufficientDataError(f"no {what}: no episode's calcium corrected")
    X = _design(data, EXPOSURE, covariates, [EXPOSURE]).drop(columns="Intercept")
    fit = sm.PHReg(
        data["hours_to_event"].to_numpy(dtype=float), X, status=status, ties="efron"
    ).fit(groups=_groups(data))
    j = list(X.columns).index(EXPOSURE)
    return entry(
        name="time_to_calcium_correction_hazard_ratio",
        estimand=(
            f"conditional hazard ratio of calcium correction (corrected Ca ≥ "
            f"{study.ca_corrected_low_mmol_l:.2f} mmol/L), Mg repletion within "
            f"{study.grace_hours} h vs not"
        ),
        outcome="hours from index to the first corrected Ca at or above the threshold drawn "
        f"after the {study.grace_hours} h grace period, censored at the last corrected Ca "
        "draw before discharge",
        unit="ratio",
        scale="hazard ratio",
        method=f"Cox proportional hazards (statsmodels PHReg, Efron ties) on exposure, "
        f"{_adjustment_words()}; robust sandwich covariance clustered on patient; 95 % Wald CI.",
        stats_=_wald(float(fit.params[j]), float(fit.bse[j]), log_scale=True),
        data=data,
        n_dropped=n_dropped,
        adjustment_set=covariates,
        notes=[
            "proportional hazards assumed; correction is only seen when calcium is drawn "
            "(interval-censored in truth), so the hazard ratio also reflects testing frequency",
            f"follow-up starts when the {study.grace_hours} h grace period ends (pre-specified): "
            "draws inside it, where the treated get extra post-dose re-checks, never count",
        ],
    )


# ---------------------------------------------------------------------------------------------
# shared by the linear models


def _stats(c: dict[str, float | None]) -> dict[str, float | None]:
    return {k: c[k] for k in ("estimate", "ci_low", "ci_high", "p_value")}


# ---------------------------------------------------------------------------------------------
# 4. PTH response


def pth_response(cohort: pd.DataFrame, pth: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Ratio of geometric mean PTH after the grace period, Mg repletion vs not.

    OLS of log follow-up PTH (``index_pth_response.followup_pth_pmol_l``, pmol/L) on exposure +
    baseline Mg + baseline corrected Ca (linear: PTH is measured in few episodes, so the
    model is kept small), patient-clustered; exp(coefficient) with its CI. Only episodes with
    a follow-up PTH (informative: PTH is ordered for a reason).
    """
    what = "PTH response model"
    data = _merge(cohort, pth, ["followup_pth_pmol_l"])
    adjust = ["baseline_mg_mmol_l", "baseline_ca_corrected_mmol_l"]
    needed = [CLUSTER, EXPOSURE, "followup_pth_pmol_l", *adjust]
    ok = data[needed].notna().all(axis=1) & data["followup_pth_pmol_l"].gt(0)
    kept, n_dropped = data.loc[ok].reset_index(drop=True), int((~ok).sum())
    if len(kept) < MIN_EPISODES:
        raise InsufficientDataError(
            f"no {what}: fewer than {MIN_EPISODES} episodes have a PTH measured "
            f"{study.grace_hours}–{study.pth_response_hours} h after index"
        )
    treat = exposure_indicator(kept[EXPOSURE])
    if treat.sum() == 0 or treat.sum() == len(treat):
        raise InsufficientDataError(f"no {what}: one exposure arm has no PTH measured")
    X = np.column_stack([np.ones_like(treat), treat, kept[adjust].to_numpy(dtype=float)])
    log_pth = np.log(kept["followup_pth_pmol_l"].to_numpy(dtype=float))
    fit = clustered_ols(log_pth, X, kept[CLUSTER])
    c = linear_contrast(fit, np.array([0.0, 1.0, 0.0, 0.0]))
    ratio = {
        "estimate": _exp(c["estimate"]),
        "ci_low": _exp(c["ci_low"]),
        "ci_high": _exp(c["ci_high"]),
        "p_value": c["p_value"],
    }
    return entry(
        name="pth_response_ratio",
        estimand=(
            "ratio of geometric mean intact PTH after the grace period, Mg repletion within "
            f"{study.grace_hours} h vs not, among episodes with PTH measured"
        ),
        outcome=f"first intact PTH (pmol/L) in (index + {study.grace_hours} h, index + "
        f"{study.pth_response_hours} h]",
        unit="ratio",
        scale="ratio of geometric means",
        method="OLS of log PTH on exposure, baseline Mg and baseline corrected Ca (linear); "
        "patient-clustered (CR1) covariance; t with (patients − 1) df; exponentiated.",
        stats_=ratio,
        data=kept,
        n_dropped=n_dropped,
        adjustment_set=adjust,
        notes=["PTH is measured only when ordered: a selected subgroup"],
    )


def _exp(x: float | None) -> float | None:
    return None if x is None else float(math.exp(x))


# ---------------------------------------------------------------------------------------------
# 5. dose-response


def mg_dose_response(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Change in corrected Ca at the horizon per 10 mmol elemental Mg, among the exposed.

    OLS of the primary outcome (mmol/L) on ``mg_dose_grace_mmol`` / 10 + adjustment set,
    among episodes given Mg within the grace period, patient-clustered. Dose is chosen by
    clinicians (larger for lower Mg), so the slope is adjusted but associational.
    """
    what = "dose-response model"
    exposed = cohort.loc[exposure_indicator(cohort[EXPOSURE]).astype(bool)]
    data, n_dropped, covariates = _adjusted_rows(
        exposed, [OUTCOME, "mg_dose_grace_mmol"], what, both_arms=False
    )
    if data["mg_dose_grace_mmol"].nunique() < 2:
        raise InsufficientDataError(f"no {what}: every exposed episode had the same dose")
    frame = data.assign(dose_per_10_mmol=data["mg_dose_grace_mmol"].astype(float) / DOSE_STEP_MMOL)

    X = _design(frame, "dose_per_10_mmol", covariates, ["dose_per_10_mmol"])
    fit = clustered_ols(data[OUTCOME].to_numpy(dtype=float), X.to_numpy(), data[CLUSTER])
    c = np.zeros(X.shape[1])
    c[list(X.columns).index("dose_per_10_mmol")] = 1.0
    return entry(
        name="mg_dose_response",
        estimand=(
            f"difference in corrected Ca at the horizon per {DOSE_STEP_MMOL:g} mmol more "
            f"elemental Mg given within {study.grace_hours} h, among episodes given Mg"
        ),
        outcome=horizon_outcome_words(study),
        unit=f"mmol/L per {DOSE_STEP_MMOL:g} mmol Mg",
        scale="slope",
        method=f"OLS on elemental Mg dose (linear), {_adjustment_words()}; patient-clustered "
        "(CR1) covariance; t with (patients − 1) df.",
        stats_=_stats(linear_contrast(fit, c)),
        data=data,
        n_dropped=n_dropped,
        adjustment_set=covariates,
        notes=["dose is chosen by clinicians (confounding by indication within the exposed)"],
    )


# ---------------------------------------------------------------------------------------------
# 6. repeated measures (linear mixed model)


def patient_sample(subjects: pd.Series, max_patients: int, seed: int) -> np.ndarray | None:
    """The patients a model is fitted on when there are more than ``max_patients``.

    ``None`` when every patient is kept (``max_patients`` 0, or no more patients than that).
    Otherwise ``max_patients`` ids drawn without replacement by ``numpy.random.default_rng
    (seed)`` from the distinct ids sorted as text: the same ids on every run and whatever the
    rows' order (ids: private, never published).
    """
    ids = np.sort(subjects.astype(str).unique())
    if max_patients == 0 or len(ids) <= max_patients:
        return None
    picked = np.random.default_rng(seed).choice(len(ids), size=max_patients, replace=False)
    return ids[np.sort(picked)]


def _trajectory_rows(points: pd.DataFrame, base: pd.DataFrame, what: str) -> pd.DataFrame:
    """Every corrected Ca of an analysable episode, with its episode's model columns, sorted
    by patient, episode, time and value (so the fit does not depend on the input's order)."""
    cols = [CLUSTER, EXPOSURE, *recorded_covariates(base, ADJUSTMENT_SET)[0]]
    rows = points[["encounter_id", "hours_from_index", "ca_corrected_mmol_l"]].merge(
        base[["encounter_id", *dict.fromkeys(cols)]], on="encounter_id", how="inner"
    )
    rows = rows.loc[rows["ca_corrected_mmol_l"].notna()]
    if rows.empty:
        raise InsufficientDataError(f"no {what}: no calcium drawn after the grace period")
    rows = rows.assign(_patient=rows[CLUSTER].astype(str))
    order = ["_patient", "encounter_id", "hours_from_index", "ca_corrected_mmol_l"]
    return rows.sort_values(order, kind="stable").drop(columns="_patient").reset_index(drop=True)


def _sampling_note(
    rows: pd.DataFrame,
    all_rows: pd.DataFrame,
    sample: np.ndarray | None,
    study: StudyConfig,
    threshold: int,
) -> str:
    """Words saying which patients and draws the mixed model was fitted on (counts shown
    as ``<threshold`` when small, as everywhere else)."""

    def count(n: int) -> str:
        return display_count(n, threshold)

    fitted = (
        f"{count(len(rows))} calcium results of {count(rows['encounter_id'].nunique())} "
        f"episodes of {count(rows[CLUSTER].nunique())} patients"
    )
    if sample is None:
        return f"every patient and every draw in the window kept ({fitted})"
    return (
        f"fitted on a random sample of {count(len(sample))} of "
        f"{count(all_rows[CLUSTER].nunique())} patients (seed {study.trajectory_model_seed}; "
        f"study.trajectory_model_max_patients = {study.trajectory_model_max_patients} keeps "
        f"the fit fast); every calcium result of a sampled patient kept ({fitted}, of "
        f"{count(len(all_rows))} results in all)"
    )


def calcium_trajectory_mixed(
    cohort: pd.DataFrame,
    points: pd.DataFrame,
    study: StudyConfig,
    *,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[dict[str, Any]]:
    """Linear mixed model of every corrected Ca after the grace period.

    statsmodels ``MixedLM`` (REML) of ``ca_corrected_mmol_l`` (``calcium_trajectory_points``)
    on exposure × days since index + adjustment set, with a random intercept per patient.
    Entries: the exposure × time term (difference in the rate of change, mmol/L per day)
    and the exposure difference at the primary horizon (mmol/L). Time enters linearly.

    MixedLM's cost grows with the number of patients (groups), so when more patients have a
    calcium result than ``study.trajectory_model_max_patients`` (0: no cap), the model is
    fitted on a seeded random sample of that many patients (:func:`patient_sample`), keeping
    every draw of every episode of a sampled patient (whole patients keep the
    random-intercept structure). The notes say which (``threshold``: small-cell threshold
    for their counts). ``n`` and the arm counts are the fitted episodes; ``n_dropped``
    counts cohort episodes left out for a missing covariate or no calcium result, not those
    outside the sample.
    """
    what = "mixed model of calcium trajectories"
    base, _, covariates = _adjusted_rows(cohort.assign(_ok=1.0), ["_ok"], what)
    all_rows = _trajectory_rows(points, base, what)
    sample = patient_sample(
        all_rows[CLUSTER], study.trajectory_model_max_patients, study.trajectory_model_seed
    )
    rows = all_rows
    if sample is not None:
        rows = all_rows.loc[all_rows[CLUSTER].astype(str).isin(sample)].reset_index(drop=True)
    treat = exposure_indicator(rows[EXPOSURE])
    if treat.min() == treat.max():
        raise InsufficientDataError(
            f"no {what}: the calcium results analysed come from one exposure arm only"
        )
    rows["days"] = rows["hours_from_index"].astype(float) / 24.0
    X = _design(rows, f"{EXPOSURE} * days", covariates, [EXPOSURE, "days"])
    with warnings.catch_warnings():  # convergence is checked below and reported in a note
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = sm.MixedLM(
            rows["ca_corrected_mmol_l"].to_numpy(dtype=float), X, groups=_groups(rows)
        ).fit(reml=True)
    fit_notes = []
    if not fit.converged:
        fit_notes.append("MixedLM did not report convergence: treat with caution")
    if float(np.asarray(fit.cov_re).ravel()[0]) < 1e-8:
        fit_notes.append("random-intercept variance estimated at zero (boundary)")
    names = list(X.columns)
    beta = np.asarray(fit.fe_params)
    cov = np.asarray(fit.cov_params())[: len(beta), : len(beta)]
    at = study.horizon_hours / 24.0
    notes = [
        _sampling_note(rows, all_rows, sample, study, threshold),
        "time linear; episodes of one patient share its intercept",
        "re-testing is more frequent when calcium is low (informative observation times)",
        *fit_notes,
    ]
    out = []
    for name, weights, estimand, unit, scale in (
        (
            "trajectory_slope_difference",
            {f"{EXPOSURE}:days": 1.0},
            "difference in the mean rate of change of corrected Ca (exposed − unexposed)",
            "mmol/L per day",
            "slope difference",
        ),
        (
            "trajectory_difference_at_horizon",
            {EXPOSURE: 1.0, f"{EXPOSURE}:days": at},
            f"difference in mean corrected Ca at {study.horizon_hours} h from the mixed model "
            "(exposed − unexposed, conditional on covariates and patient)",
            "mmol/L",
            "difference",
        ),
    ):
        c = np.zeros(len(beta))
        for term, w in weights.items():
            c[names.index(term)] = w
        est, se = float(c @ beta), float(math.sqrt(c @ cov @ c))
        out.append(
            entry(
                name=name,
                estimand=estimand,
                outcome=f"every corrected Ca (mmol/L) in (index + {study.grace_hours} h, "
                f"index + {study.trajectory_after_hours} h]",
                unit=unit,
                scale=scale,
                method=f"Linear mixed model (statsmodels MixedLM, REML): exposure × days since "
                f"index, {_adjustment_words()}; random intercept per patient; model-based "
                "95 % Wald CI.",
                stats_=_wald(est, se),
                data=base.loc[base["encounter_id"].isin(rows["encounter_id"])],
                n_dropped=len(cohort) - int(all_rows["encounter_id"].nunique()),
                adjustment_set=covariates,
                notes=notes,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# all of them


SecondaryFit = Callable[[], dict[str, Any] | list[dict[str, Any]]]


def _failed(name: str, reason: str) -> dict[str, Any]:
    return entry(
        name=name,
        estimand="(not estimated)",
        outcome="",
        unit="",
        scale="",
        method="",
        reason=reason,
    )


def run_secondary(
    cohort: pd.DataFrame,
    *,
    pth: pd.DataFrame,
    points: pd.DataFrame,
    study: StudyConfig,
    threshold: int = DEFAULT_THRESHOLD,
) -> list[dict[str, Any]]:
    """The modelled secondaries on the analytic cohort (PTH response, dose-response, the
    mixed model); one that cannot be fitted gives ``estimate: None`` and a ``reason``
    instead of raising. ``threshold``: small-cell threshold for counts in notes.

    The any-draw outcomes are not modelled here: the run reports them per arm only
    (:mod:`mgca.analysis.estimation.any_draw`); :func:`correction_within_window` and
    :func:`time_to_correction` are what ``bench/secondary_null.py`` and the detection-bias
    recovery test fit to show why."""
    fits: list[tuple[str, SecondaryFit]] = [
        ("pth_response_ratio", lambda: pth_response(cohort, pth, study)),
        ("mg_dose_response", lambda: mg_dose_response(cohort, study)),
        (
            "trajectory_slope_difference",
            lambda: calcium_trajectory_mixed(cohort, points, study, threshold=threshold),
        ),
    ]
    out: list[dict[str, Any]] = []
    for name, fit in fits:
        try:
            result = fit()
        except InsufficientDataError as exc:
            out.append(_failed(name, str(exc)))
            continue
        except Exception as exc:  # a numerical failure of one model must not stop the run
            out.append(_failed(name, f"model could not be fitted: {type(exc).__name__}: {exc}"))
            continue
        out.extend(result if isinstance(result, list) else [result])
    return out


__all__ = [
    "calcium_trajectory_mixed",
    "correction_within_window",
    "entry",
    "mg_dose_response",
    "patient_sample",
    "pth_response",
    "run_secondary",
    "time_to_correction",
]

"""Effect estimates for results.json: the primary adjusted ATE and two contrasts.

All three functions take the analytic cohort (``cohort.parquet`` columns, ARCHITECTURE.md)
and return one ``estimates`` entry of results.json. Estimates, standard errors and CI bounds
are in mmol/L of albumin-corrected calcium; p-values are two-sided. Every interval is a
95 % interval from a t distribution with (number of patients − 1) degrees of freedom, on a
standard error that respects patients (one patient can contribute several episodes): a
patient-cluster bootstrap for the primary, the patient-clustered (CR1) sandwich covariance of
statsmodels ``OLS(...).fit(cov_type="cluster")`` for the two contrasts.

- ``fit_primary``: outcome regression (g-computation) with the model a pre-specified rule
  picks from the arms' sizes (:func:`choose_model_spec`: exposure × covariate interaction
  (Lin 2013) only where both arms support it); the ATE is the mean, over the analysed cohort,
  of the predicted outcome with exposure set to 1 minus set to 0, ``(mean(X1) − mean(X0)) ·
  β``. Its interval comes from a patient-cluster bootstrap that also resamples the
  covariates, so it targets the ATE of the population the cohort represents; the
  delta-method interval ``c'Vc`` (covariates fixed: the sample ATE) is kept beside it.
- ``unadjusted_difference``: the crude exposed − unexposed difference in the outcome.
- ``naive_before_after``: the mean change from baseline among exposed episodes. Not causal.

Post-index variables (``calcium_in_grace``, ``outcome_hours_from_index``, doses) are never
adjusted for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import sparse

from mgca.analysis.finite import finite_or_none
from mgca.analysis.text import (
    cohort_words,
    exposure_words,
    model_spec_words,
    naive_estimand,
    outcome_words,
    primary_estimand,
    primary_method,
    unadjusted_estimand,
)
from mgca.config import EstimationConfig, StudyConfig

UNIT = "mmol/L"
CI_LEVEL = 0.95
MIN_EPISODES = 20
"""Fewer analysable episodes than this and no estimate is made."""

OUTCOME = "outcome_ca_corrected_mmol_l"
BASELINE_CA = "baseline_ca_corrected_mmol_l"
EXPOSURE = "exposed"
CLUSTER = "subject_id"

ADJUSTMENT_SET: tuple[str, ...] = (
    "baseline_ca_corrected_mmol_l",
    "baseline_ca_total_mmol_l",
    "baseline_mg_mmol_l",
    "baseline_albumin_g_l",
    "baseline_creatinine_umol_l",
    "age_years",
    "sex",
    "baseline_potassium_mmol_l",
    "baseline_phosphate_mmol_l",
    "loop_diuretic_before_index",
    "thiazide_before_index",
    "ppi_before_index",
    "calcium_before_index",
    "vitamin_d_analogue_before_index",
    "icu_at_index",
    "vasopressor_at_index",
)
"""Pre-index confounders of the primary model, in formula order (cohort.parquet names): the
recorded values clinicians act on, then the rest of the protocol's set (clinical.md,
"Confounding by indication"): K, phosphate, loop and thiazide diuretics, PPIs, calcium
supplements and active vitamin D before index (the drug flags as 0/1, each in its look-back),
then the severity proxies at index (in an ICU; a vasopressor in the day before), which only
some sources record. A covariate missing in every episode (not recorded by this source) is
left out before the complete-case rule, with a note, so it never costs an episode; a
covariate with one value in the analysed episodes is dropped with a note; the model rule
(:func:`choose_model_spec`) counts every parameter, so more covariates mean a simpler model
sooner, never an unstable one."""

SEVERITY_COVARIATES: frozenset[str] = frozenset({"icu_at_index", "vasopressor_at_index"})
"""The adjustment-set columns only some sources record (sql/index_severity.sql): null in every
episode when the source does not, and absent from a cohort table written before they were
derived; either way they are left out of the model with a note."""

SPLINE_DF = 3
SPLINE_COVARIATES = frozenset({"baseline_mg_mmol_l", "baseline_ca_corrected_mmol_l"})
"""Entered as natural cubic splines: the Mg → Ca relation is steep, not linear."""
LOG_COVARIATES = frozenset({"baseline_creatinine_umol_l"})
"""Entered on the log scale (must be > 0)."""
CATEGORICAL_COVARIATES = frozenset({"sex"})

COUNT_KEYS: tuple[str, ...] = ("n", "n_exposed", "n_unexposed", "n_clusters", "n_dropped")
"""Keys of an estimate entry that are counts (disclosure control applies to them)."""

_TREAT = "mg_repletion"  # 0/1 float exposure inside the model frame
_Y = "y"

REPORT_SAYS = 'the report will say "no estimate"'
"""Closing clause of every ``InsufficientDataError`` message."""


class InsufficientDataError(ValueError):
    """The cohort cannot support the requested estimate; the report then says "no estimate".

    The message says why in words and never contains a small count.
    """


# ---------------------------------------------------------------------------------------------
# shared mechanics (the weighting, diagnostics and secondary estimators use them too)


def check_columns(cohort: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise ``KeyError`` naming the ``columns`` the cohort lacks (a caller's bug, not data)."""
    missing = [c for c in columns if c not in cohort.columns]
    if missing:
        raise KeyError(
            f"cohort is missing column(s) {missing}; see cohort.parquet in ARCHITECTURE.md"
        )


def complete_cases(cohort: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows with every one of ``columns`` present (and creatinine > 0 when used); n dropped."""
    ok = cohort[list(columns)].notna().all(axis=1)
    for col in LOG_COVARIATES.intersection(columns):
        ok &= pd.to_numeric(cohort[col], errors="coerce").gt(0).fillna(False).astype(bool)
    kept = cohort.loc[ok.to_numpy()].reset_index(drop=True)
    return kept, int(len(cohort) - len(kept))


def exposure_indicator(values: pd.Series) -> np.ndarray:
    """Exposure as 0.0/1.0 (accepts bool, nullable boolean or 0/1)."""
    return values.astype(bool).to_numpy(dtype=float)


def require_arms(treat: np.ndarray, *, what: str) -> None:
    """Raise ``InsufficientDataError`` for the estimate ``what`` when an arm has no episodes."""
    n_exp = int(treat.sum())
    for arm, n_arm in (("exposed (Mg repletion)", n_exp), ("unexposed", len(treat) - n_exp)):
        if n_arm == 0:
            raise InsufficientDataError(
                f"no {what}: the {arm} arm has no analysable episodes, so "
                f"there is nothing to compare; {REPORT_SAYS}."
            )


def require_size(n: int, n_clusters: int, *, what: str) -> None:
    """Raise ``InsufficientDataError`` for the estimate ``what`` when fewer than
    ``MIN_EPISODES`` episodes or only one patient remain (no clustered interval then)."""
    if n < MIN_EPISODES:
        raise InsufficientDataError(
            f"no {what}: fewer than {MIN_EPISODES} analysable episodes; {REPORT_SAYS}."
        )
    if n_clusters < 2:
        raise InsufficientDataError(
            f"no {what}: all episodes come from one patient, so a "
            f"patient-clustered interval cannot be formed; {REPORT_SAYS}."
        )


def clustered_ols(y: np.ndarray, X: np.ndarray, groups: pd.Series) -> Any:
    """OLS with CR1 patient-clustered covariance; t inference with (clusters − 1) df."""
    codes, _ = pd.factorize(groups.astype(str), sort=True)
    return sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)


def linear_contrast(fit: Any, c: np.ndarray) -> dict[str, float | None]:
    """Estimate, SE, CI and p-value of the linear combination ``c · β`` (delta method)."""
    test = fit.t_test(np.atleast_2d(c))
    low, high = test.conf_int(alpha=1 - CI_LEVEL)[0]
    return {
        "estimate": finite_or_none(test.effect[0]),
        "se": finite_or_none(test.sd[0][0]),
        "ci_low": finite_or_none(low),
        "ci_high": finite_or_none(high),
        "p_value": finite_or_none(test.pvalue),
    }


def estimate_entry(
    *,
    name: str,
    estimand: str,
    study: StudyConfig | None,
    stats: dict[str, float | None],
    data: pd.DataFrame,
    treat: np.ndarray,
    n_dropped: int,
    method: str,
    adjustment_set: list[str],
    notes: list[str],
) -> dict[str, Any]:
    """One results.json ``estimates`` entry (the same key set for every estimate)."""
    n_exposed = int(treat.sum())
    return {
        "name": name,
        "estimand": estimand,
        "outcome": outcome_words(study),
        "unit": UNIT,
        **stats,
        "n": len(data),
        "n_dropped": n_dropped,
        "grace_hours": None if study is None else study.grace_hours,
        "horizon_hours": None if study is None else study.horizon_hours,
        "method": method,
        "adjustment_set": adjustment_set,
        "cohort": cohort_words(study),
        "exposure": exposure_words(study),
        "n_exposed": n_exposed,
        "n_unexposed": len(treat) - n_exposed,
        "n_clusters": int(data[CLUSTER].nunique()),
        "notes": notes,
        "model_spec": None,
        "delta_method": None,
        # set by the IPCW primary (mgca.analysis.estimation.missing_outcome); None: the
        # estimate uses the episodes with a measured outcome only
        "missing_outcome_handling": None,
        "censoring_model": None,
        "reason": None,
    }


def no_estimate_entry(
    name: str, estimand: str, reason: str, study: StudyConfig | None
) -> dict[str, Any]:
    """A results.json ``estimates`` entry for an estimate that could not be made: the same
    keys as every other entry, numbers ``None``, and ``reason`` in words (never a small
    count), so no estimate is ever a bare ``null``."""
    return {
        "name": name,
        "estimand": estimand,
        "outcome": outcome_words(study),
        "unit": UNIT,
        "estimate": None,
        "se": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "n": None,
        "n_dropped": None,
        "grace_hours": None if study is None else study.grace_hours,
        "horizon_hours": None if study is None else study.horizon_hours,
        "method": None,
        "adjustment_set": [],
        "cohort": cohort_words(study),
        "exposure": exposure_words(study),
        "n_exposed": None,
        "n_unexposed": None,
        "n_clusters": None,
        "notes": [],
        "model_spec": None,
        "delta_method": None,
        "missing_outcome_handling": None,
        "censoring_model": None,
        "reason": reason.replace(f"; {REPORT_SAYS}", ""),
    }


# ---------------------------------------------------------------------------------------------
# primary: g-computation with full interaction


def _term(col: str, splines: bool = True) -> str:
    if splines and col in SPLINE_COVARIATES:
        return f"cr({col}, df={SPLINE_DF}, constraints='center')"
    if col in LOG_COVARIATES:
        return f"np.log({col})"
    if col in CATEGORICAL_COVARIATES:
        return f"C({col})"
    return col


def factor_column(values: pd.Series) -> pd.Categorical:
    """A categorical covariate as patsy reads it fastest: a pandas Categorical of its values
    as text, levels sorted (the levels and order patsy gives a text column, so the design's
    columns are the same), read by position. Patsy checks a text column value by value for
    missingness and levels; a Categorical it reads as codes (about 3x faster per design on
    24,000 episodes)."""
    text = values.astype(str)
    return pd.Categorical(text.to_numpy(dtype=object), categories=sorted(text.unique()))


def _model_frame(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Plain float and categorical columns patsy understands (:func:`factor_column`)."""
    frame = pd.DataFrame(
        {_Y: data[OUTCOME].astype(float), _TREAT: exposure_indicator(data[EXPOSURE])}
    )
    for col in covariates:
        if col in CATEGORICAL_COVARIATES:
            frame[col] = factor_column(data[col])
        else:
            frame[col] = data[col].astype(float)
    return frame


def independent_columns(X: np.ndarray, rel_tol: float = 1e-9) -> list[int]:
    """Indices of columns kept, in order, skipping any that is a linear combination of earlier
    ones (judged on unit-length columns by the smallest singular value).

    The singular values of any set of X's columns are those of the same columns of R in
    X = QR (Q has orthonormal columns), so X is factored once and each candidate set is
    judged on R's few rows instead of X's n rows (one QR instead of one SVD of n rows per
    column)."""
    norms = np.linalg.norm(X, axis=0)
    R = np.linalg.qr(np.asarray(X, dtype=float), mode="r")
    keep: list[int] = []
    for j in range(X.shape[1]):
        if norms[j] == 0:
            continue
        cand = [*keep, j]
        s = np.linalg.svd(R[:, cand] / norms[cand], compute_uv=False)
        if s[-1] > rel_tol * s[0]:
            keep.append(j)
    return keep


def _estimable(X: np.ndarray, c: np.ndarray, rel_tol: float = 1e-8) -> bool:
    """True when ``c · β`` is the same for every least-squares ``β`` (``c`` in X's row space)."""
    a, *_ = np.linalg.lstsq(X.T, c, rcond=None)
    return bool(np.linalg.norm(X.T @ a - c) <= rel_tol * max(np.linalg.norm(c), 1.0))


@dataclass(frozen=True)
class AdjustedData:
    """The rows and covariates every adjusted estimate (outcome regression, IPW, AIPW) uses.

    ``data``: complete cases of outcome, exposure, cluster and the adjustment set (with ids:
    private); ``treat``: exposure as 0.0/1.0; ``n_dropped``: rows left out; ``covariates``:
    the adjustment-set columns that vary in ``data`` (formula order); ``notes``: words for the
    results.json entry about dropped rows and constant covariates.
    """

    data: pd.DataFrame
    treat: np.ndarray
    n_dropped: int
    covariates: list[str]
    notes: list[str]


def prepare_adjusted(
    cohort: pd.DataFrame, what: str, adjustment_set: Sequence[str] | None = None
) -> AdjustedData:
    """Complete-case rows for an adjusted estimate named ``what`` (used in error messages).

    ``adjustment_set``: cohort columns to adjust for (default ``ADJUSTMENT_SET``; notebooks
    refit with others via ``mgca.analysis.notebook``).

    Rows missing the outcome, exposure or any adjustment covariate (or with creatinine ≤ 0)
    are dropped and counted. Raises ``InsufficientDataError`` when an arm is empty or fewer
    than ``MIN_EPISODES`` rows (or one patient) remain.
    """
    adjustment = tuple(ADJUSTMENT_SET if adjustment_set is None else adjustment_set)
    check_columns(
        cohort,
        [CLUSTER, EXPOSURE, OUTCOME, *(c for c in adjustment if c not in SEVERITY_COVARIATES)],
    )
    adjustment, notes = recorded_covariates(cohort, adjustment)
    needed = [CLUSTER, EXPOSURE, OUTCOME, *adjustment]
    data, n_dropped = complete_cases(cohort, needed)
    treat = exposure_indicator(data[EXPOSURE])
    require_arms(treat, what=what)
    require_size(len(data), data[CLUSTER].nunique(), what=what)

    if n_dropped:
        notes.append(
            "episodes missing the outcome, the exposure or an adjustment covariate (or with "
            "creatinine ≤ 0) were left out (complete-case analysis; count in n_dropped)"
        )
    covariates, covariate_notes = usable_covariates(data, adjustment, treat)
    notes.extend(covariate_notes)
    return AdjustedData(
        data=data, treat=treat, n_dropped=n_dropped, covariates=covariates, notes=notes
    )


def recorded_covariates(
    cohort: pd.DataFrame, adjustment: Sequence[str]
) -> tuple[tuple[str, ...], list[str]]:
    """The ``adjustment`` columns the source records, and a note for each one it does not.

    A column missing in every episode of ``cohort`` (the severity proxies of a source without
    ICU stays or vasopressors: sql/index_severity.sql writes them null throughout; or a
    :data:`SEVERITY_COVARIATES` column absent from an older cohort table) cannot be
    adjusted for; it is left out before the complete-case rule, which would otherwise drop
    every episode. A column missing in only some episodes stays in: those episodes are
    dropped and counted, as for any other covariate."""
    kept: list[str] = []
    notes: list[str] = []
    for col in adjustment:
        absent = col in SEVERITY_COVARIATES and col not in cohort.columns
        if absent or (col in cohort.columns and len(cohort) and cohort[col].isna().all()):
            notes.append(
                f"{col} dropped from the model: not recorded by this source (missing in "
                "every episode)"
            )
            continue
        kept.append(col)
    return tuple(kept), notes


MIN_INDICATOR_PER_ARM = 5
"""A 0/1 covariate (a drug flag) is adjusted for only when each arm has at least this many
episodes with the flag and this many without it. Rarer than that, its coefficient rests on a
handful of episodes: one flagged episode in one arm separates the propensity model (the
weights and every bootstrap refit then fail, so a hospital that could be answered is not),
and leaving the flag out moves an estimate by at most its carriers' share times their
difference. Pre-specified, like the model rule; the dropped flags are named in the notes."""


def usable_covariates(
    data: pd.DataFrame, adjustment: Sequence[str], treat: np.ndarray | None = None
) -> tuple[list[str], list[str]]:
    """The ``adjustment`` columns an adjusted model can estimate on ``data``'s rows, and notes.

    Dropped (each with a note): a column with one value in every row; a 0/1 indicator with
    fewer than :data:`MIN_INDICATOR_PER_ARM` flagged or unflagged episodes in an arm
    (``treat``: 0/1 exposure of the rows; without it the rule applies to all rows at once).
    """
    covariates: list[str] = []
    notes: list[str] = []
    arms = [np.ones(len(data), dtype=bool)] if treat is None else [treat == 1, treat == 0]
    for col in adjustment:
        values = data[col]
        if values.nunique() <= 1:
            notes.append(f"{col} dropped from the model: one value in all analysed episodes")
            continue
        if col not in CATEGORICAL_COVARIATES and _is_indicator(values):
            flag = pd.to_numeric(values, errors="coerce").astype(float).to_numpy() == 1
            fewest = min(min(int(flag[a].sum()), int((~flag[a]).sum())) for a in arms)
            if fewest < MIN_INDICATOR_PER_ARM:
                notes.append(
                    f"{col} dropped from the model: fewer than {MIN_INDICATOR_PER_ARM} episodes "
                    "with (or without) it in an arm, too few to estimate its coefficient"
                )
                continue
        covariates.append(col)
    return covariates, notes


def _is_indicator(values: pd.Series) -> bool:
    """True for a 0/1 (or boolean) column."""
    if values.dtype == bool or str(values.dtype) == "boolean":
        return True
    numeric = pd.to_numeric(values, errors="coerce")
    return bool(numeric.notna().all() and numeric.isin([0, 1]).all())


def covariate_rhs(covariates: Sequence[str], splines: bool = True) -> str:
    """Right-hand side of the adjustment formula: splines for Mg and corrected Ca (linear
    terms with ``splines=False``), log creatinine, sex as a factor, the rest linear (``"1"``
    when there are no covariates)."""
    return " + ".join(_term(c, splines) for c in covariates) or "1"


MODEL_SPECS: tuple[str, ...] = ("interacted_splines", "additive_splines", "additive_linear")
"""Candidate primary outcome models, richest first (see :func:`choose_model_spec`)."""

MODEL_SPEC_WORDS: dict[str, str] = model_spec_words(SPLINE_DF)
"""The model of each spec in words (results.json ``model_spec.words``, report, methods)."""


@dataclass(frozen=True)
class ModelSpec:
    """The primary outcome model the pre-specified rule chose, and why.

    ``name``: one of :data:`MODEL_SPECS`; ``interacted``/``splines``: its shape;
    ``n_parameters``: parameters of one arm's regression (interacted) or of the whole model
    (additive); ``episodes_per_parameter``: episodes behind each (the smaller arm's for an
    interacted model); ``reason``: the rule's decision in words.
    """

    name: str
    interacted: bool
    splines: bool
    n_parameters: int
    episodes_per_parameter: float
    reason: str

    def record(self) -> dict[str, Any]:
        """results.json ``model_spec``: name, words, parameters, episodes per parameter, why."""
        return {
            "name": self.name,
            "words": MODEL_SPEC_WORDS[self.name],
            "parameters": self.n_parameters,
            "episodes_per_parameter": round(self.episodes_per_parameter, 1),
            "reason": self.reason,
        }


def _n_covariate_columns(adjusted: AdjustedData, splines: bool) -> int:
    """Independent columns (intercept included) of the covariate design on the analysed rows."""
    frame = _model_frame(adjusted.data, adjusted.covariates)
    X = np.asarray(
        patsy.dmatrix(covariate_rhs(adjusted.covariates, splines), frame, NA_action="raise")
    )
    return len(independent_columns(X))


def choose_model_spec(adjusted: AdjustedData, min_episodes_per_parameter: int) -> ModelSpec:
    """Pre-specified rule: the richest model whose parameters each have enough episodes.

    In order: ``interacted_splines`` when the *smaller* arm has at least
    ``min_episodes_per_parameter`` episodes per parameter of its own regression (each arm
    predicts the other arm's episodes, so each must carry its own model);
    ``additive_splines`` and then ``additive_linear`` when the whole analysed cohort has that
    many per parameter of the one shared model (exposure + covariates). When none qualifies,
    ``additive_linear`` is still fitted and ``reason`` says it falls short; the diagnostics
    gate then decides whether its answer may be stated. The rule reads only exposure and
    covariates, never the outcome.
    """
    k = min_episodes_per_parameter
    n1 = int(adjusted.treat.sum())
    n0 = len(adjusted.treat) - n1
    n = n1 + n0
    p_spline = _n_covariate_columns(adjusted, splines=True)
    p_linear = _n_covariate_columns(adjusted, splines=False)
    smaller = min(n1, n0)
    if smaller >= k * p_spline:
        return ModelSpec(
            "interacted_splines",
            True,
            True,
            p_spline,
            smaller / p_spline,
            f"the smaller arm has {smaller / p_spline:.1f} episodes per parameter of its own "
            f"regression ({p_spline} parameters), at least the pre-specified {k}",
        )
    why_not = (
        f"not interacted: the smaller arm has {smaller / p_spline:.1f} episodes per parameter "
        f"of a per-arm regression ({p_spline} parameters), below the pre-specified {k}"
    )
    for name, p in (("additive_splines", p_spline + 1), ("additive_linear", p_linear + 1)):
        if n >= k * p:
            return ModelSpec(
                name,
                False,
                name.endswith("splines"),
                p,
                n / p,
                f"{why_not}; {n / p:.1f} episodes per parameter of the additive model "
                f"({p} parameters), at least {k}",
            )
    p = p_linear + 1
    return ModelSpec(
        "additive_linear",
        False,
        False,
        p,
        n / p,
        f"{why_not}; even the simplest model (additive, linear, {p} parameters) has only "
        f"{n / p:.1f} episodes per parameter, below {k}: fitted, but the estimate is fragile",
    )


@dataclass(frozen=True)
class OutcomeDesign:
    """The outcome model's design for one :class:`ModelSpec`, collinear columns dropped.

    ``X``, ``x1``, ``x0``: observed, everyone-exposed and everyone-unexposed design matrices
    (kept columns only); ``c_full``: ``mean(x1) − mean(x0)`` over all columns; ``keep``: kept
    column indices; ``column_names``: all patsy column names; ``dropped_note``: note on dropped
    columns (or ``None``).
    """

    y: np.ndarray
    X: np.ndarray
    x1: np.ndarray
    x0: np.ndarray
    c_full: np.ndarray
    keep: list[int]
    column_names: list[str]
    dropped_note: str | None


INTERACTED = ModelSpec("interacted_splines", True, True, 0, float("nan"), "requested")
"""The fully interacted spline model, for callers that ask for it by name."""


def outcome_design(adjusted: AdjustedData, what: str, spec: ModelSpec) -> OutcomeDesign:
    """Build the outcome-model design of ``spec`` for ``adjusted`` (see ``fit_primary``).

    Raises ``InsufficientDataError`` when, for an interacted spec, an arm has no more episodes
    than its own outcome model has parameters, or, for an additive one, the cohort has no
    more episodes than the model has parameters.
    """
    frame = _model_frame(adjusted.data, adjusted.covariates)
    rhs = covariate_rhs(adjusted.covariates, spec.splines)
    joiner = "*" if spec.interacted else "+"
    y_mat, x_mat = patsy.dmatrices(f"{_Y} ~ {_TREAT} {joiner} ({rhs})", frame, NA_action="raise")
    design = x_mat.design_info
    X = np.asarray(x_mat)
    (x1,) = patsy.build_design_matrices([design], frame.assign(**{_TREAT: 1.0}))
    (x0,) = patsy.build_design_matrices([design], frame.assign(**{_TREAT: 0.0}))
    x1, x0 = np.asarray(x1), np.asarray(x0)
    c_full = x1.mean(axis=0) - x0.mean(axis=0)
    keep = independent_columns(X)
    dropped = [name for j, name in enumerate(design.column_names) if j not in keep]
    note = None
    if dropped:
        note = (
            "design columns dropped as exact linear combinations of earlier ones (the fitted "
            f"values are unchanged): {', '.join(dropped)}; "
            + (
                "the ATE is unchanged too"
                if _estimable(X, c_full)
                else "the ATE now assumes these terms are zero (e.g. no effect modification "
                "by a level seen in one arm only)"
            )
        )
    treat = adjusted.treat
    if spec.interacted:
        n_main = sum(1 for j in keep if _TREAT not in design.column_names[j])
        arms = (("exposed", int(treat.sum())), ("unexposed", int(len(treat) - treat.sum())))
        for arm, n_arm in arms:
            if n_arm <= n_main + 1:
                raise InsufficientDataError(
                    f"no {what}: the {arm} arm has too few analysable episodes to "
                    f"fit its own outcome model ({n_main} parameters); {REPORT_SAYS}."
                )
    elif len(treat) <= len(keep) + 1:
        raise InsufficientDataError(
            f"no {what}: too few analysable episodes for the outcome model ({len(keep)} "
            f"parameters); {REPORT_SAYS}."
        )
    return OutcomeDesign(
        y=np.asarray(y_mat).ravel(),
        X=X[:, keep],
        x1=x1[:, keep],
        x0=x0[:, keep],
        c_full=c_full,
        keep=keep,
        column_names=list(design.column_names),
        dropped_note=note,
    )


def interacted_design(adjusted: AdjustedData, what: str) -> OutcomeDesign:
    """The fully interacted spline design (``outcome_design`` with ``interacted_splines``)."""
    return outcome_design(adjusted, what, INTERACTED)


BOOTSTRAP_CHUNK = 100
"""Resamples drawn and solved together (bounds memory: chunk × patients floats)."""


def resample_counts(n_clusters: int, n_replicates: int, seed: int) -> Iterator[np.ndarray]:
    """Patient-cluster bootstrap draws as multiplicities, in chunks of ``BOOTSTRAP_CHUNK``.

    Each row of a yielded ``(chunk, n_clusters)`` array is one resample: how many times each
    patient was drawn when ``n_clusters`` patients are drawn with replacement (all of a
    patient's episodes go together). Seeded: the same draws on every run.
    """
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_replicates:
        size = min(BOOTSTRAP_CHUNK, n_replicates - done)
        pick = rng.integers(0, n_clusters, size=(size, n_clusters))
        yield np.stack([np.bincount(row, minlength=n_clusters) for row in pick]).astype(float)
        done += size


def cluster_sums(groups: pd.Series, values: np.ndarray) -> np.ndarray:
    """Per-patient sums of ``values`` (rows × k) → (patients × k), patients in sorted order."""
    codes, uniques = pd.factorize(groups.astype(str), sort=True)
    values = np.asarray(values, dtype=float).reshape(len(codes), -1)
    indicator = sparse.csr_matrix(
        (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(uniques), len(codes))
    )
    return np.asarray(indicator @ values)


def t_interval(estimate: float, se: float, n_clusters: int) -> dict[str, float | None]:
    """Estimate, SE, 95 % CI ``estimate ± t(G − 1) · SE`` and the two-sided p-value (``G``:
    patients)."""
    from scipy import stats

    df = max(n_clusters - 1, 1)
    q = stats.t.ppf(0.5 + CI_LEVEL / 2, df)
    p = 2 * stats.t.sf(abs(estimate / se), df) if se > 0 else float("nan")
    return {
        "estimate": finite_or_none(estimate),
        "se": finite_or_none(se),
        "ci_low": finite_or_none(estimate - q * se),
        "ci_high": finite_or_none(estimate + q * se),
        "p_value": finite_or_none(p),
    }


def bootstrap_interval(
    estimate: float, values: np.ndarray, n_clusters: int
) -> dict[str, float | None]:
    """:func:`t_interval` on the bootstrap SE of ``values``.

    A t interval on the bootstrap SE rather than bootstrap percentiles: with a few dozen
    patients in the smaller arm the percentile interval's tails are themselves noisy.
    """
    return t_interval(estimate, float(np.std(values, ddof=1)), n_clusters)


def _gcomp_bootstrap(
    design: OutcomeDesign, treat: np.ndarray, groups: pd.Series, n_replicates: int, seed: int
) -> tuple[np.ndarray, int]:
    """Bootstrap of the g-computation ATE: refit the outcome model on each patient resample
    (design columns, spline knots included, fixed at the full sample) and average the
    predicted exposed − unexposed difference over the resampled episodes, so the interval
    also counts the sampling of the covariates the ATE averages over.

    A resample is a weighting of patients by how often each was drawn, so its least-squares
    fit needs only per-patient sums of ``x x'``, ``x y`` and the counterfactual difference;
    all resamples of a chunk are solved at once (pseudo-inverse: a factor level no resampled
    patient has drops out, as it does from the difference it would multiply). Resamples
    with an empty arm are skipped. Returns the ATEs and the number skipped.

    ``x x'`` is symmetric: only its upper triangle (``p (p + 1) / 2`` of the ``p^2``
    products) is summed and resampled, and mirrored into each resample's matrix; the
    products are the same numbers (``x_i x_j == x_j x_i`` exactly), so the fits are too.
    """
    X, y = design.X, design.y
    p = X.shape[1]
    scale = np.linalg.norm(X, axis=0)
    scale[scale == 0] = 1.0
    Xs = X / scale
    upper_i, upper_j = np.triu_indices(p)
    m = len(upper_i)
    per_patient = cluster_sums(
        groups,
        np.column_stack(
            [
                Xs[:, upper_i] * Xs[:, upper_j],
                Xs * y[:, None],
                (design.x1 - design.x0) / scale,
                treat,
                1 - treat,
            ]
        ),
    )
    xx_upper, xy = per_patient[:, :m], per_patient[:, m : m + p]
    diff = per_patient[:, m + p : m + 2 * p]
    n1, n0 = per_patient[:, -2], per_patient[:, -1]
    values: list[np.ndarray] = []
    skipped = 0
    for counts in resample_counts(len(per_patient), n_replicates, seed):
        ok = ((counts @ n1) > 0) & ((counts @ n0) > 0)
        skipped += int((~ok).sum())
        c = counts[ok]
        upper = c @ xx_upper
        xtx = np.empty((len(c), p, p))
        xtx[:, upper_i, upper_j] = upper
        xtx[:, upper_j, upper_i] = upper
        beta = np.linalg.pinv(xtx, rcond=1e-13) @ (c @ xy)[..., None]
        mean_diff = (c @ diff) / (c @ (n1 + n0))[:, None]
        values.append(np.sum(mean_diff * beta[..., 0], axis=1))
    return np.concatenate(values), skipped


def fit_primary(
    cohort: pd.DataFrame,
    study: StudyConfig,
    adjustment_set: Sequence[str] | None = None,
    estimation: EstimationConfig | None = None,
) -> dict[str, Any]:
    """Primary estimate: the adjusted ATE on corrected Ca at the horizon, in mmol/L.

    Model: chosen by :func:`choose_model_spec` from exposure, covariates and
    ``estimation.min_episodes_per_parameter`` (never the outcome): OLS of the outcome on
    exposure × (spline(baseline Mg) + spline(baseline corrected Ca) + baseline total Ca +
    baseline albumin + log baseline creatinine + age + sex + the rest of
    :data:`ADJUSTMENT_SET`, linear) when the smaller arm supports one
    regression of its own, else the additive model with those splines, else additive and
    linear. Counterfactual design matrices (everyone exposed / everyone unexposed) are built
    from the fitted ``design_info``, so spline knots and centring stay the training ones. The
    ATE is ``c · β`` with ``c = mean(X1) − mean(X0)``.

    Interval: patient-cluster bootstrap (``estimation.bootstrap_replicates`` resamples,
    ``estimation.bootstrap_seed``), t with (patients − 1) df on the bootstrap SE; the
    delta-method interval from the CR1 sandwich (``sqrt(c' V c)``, covariates fixed) is kept
    under ``delta_method``. ``model_spec`` records which model ran and why.

    Rows missing the outcome, exposure or any adjustment covariate (or with creatinine ≤ 0)
    are dropped and counted in ``n_dropped``. A covariate constant in the analysed rows and
    design columns that are exact linear combinations of earlier ones are dropped, with a
    note (corrected Ca is computed from total Ca and albumin, so one of the three is always
    redundant and the ATE does not change; when a dropped column does bear on the ATE, e.g. a
    sex level seen in one arm only, the note says the ATE then assumes that term is zero).

    ``adjustment_set`` replaces ``ADJUSTMENT_SET`` (a sensitivity refit; the entry's
    ``adjustment_set`` then names the columns used).

    Raises ``InsufficientDataError`` when an arm is empty, the chosen model has no more
    episodes than parameters, or fewer than ``MIN_EPISODES`` rows remain.
    """
    what = "primary estimate"
    estimation = estimation or EstimationConfig()
    adjusted = prepare_adjusted(cohort, what, adjustment_set)
    data, treat = adjusted.data, adjusted.treat
    notes = list(adjusted.notes)
    spec = choose_model_spec(adjusted, estimation.min_episodes_per_parameter)
    design = outcome_design(adjusted, what, spec)
    if design.dropped_note:
        notes.append(design.dropped_note)

    fit = clustered_ols(design.y, design.X, data[CLUSTER])
    n_clusters = int(data[CLUSTER].nunique())
    if n_clusters < 30:
        notes.append("fewer than 30 patients: clustered standard errors may be too small")
    delta = linear_contrast(fit, design.c_full[design.keep])
    values, skipped = _gcomp_bootstrap(
        design, treat, data[CLUSTER], estimation.bootstrap_replicates, estimation.bootstrap_seed
    )
    if len(values) < 2:
        raise InsufficientDataError(
            f"no {what}: the patient-cluster bootstrap could not refit the outcome model "
            f"(every resample lost an arm or a design column); {REPORT_SAYS}."
        )
    if skipped:
        notes.append(
            f"bootstrap: {skipped} of {estimation.bootstrap_replicates} resamples skipped (an "
            f"arm empty or a design column lost); SE from the other {len(values)}"
        )
    stats = bootstrap_interval(float(delta["estimate"] or np.nan), values, n_clusters)
    entry = estimate_entry(
        name="primary",
        estimand=primary_estimand(study),
        study=study,
        stats=stats,
        data=data,
        treat=treat,
        n_dropped=adjusted.n_dropped,
        method=primary_method(
            MODEL_SPEC_WORDS[spec.name],
            estimation.bootstrap_replicates,
            estimation.bootstrap_seed,
        ),
        adjustment_set=list(ADJUSTMENT_SET if adjustment_set is None else adjustment_set),
        notes=notes,
    )
    entry["model_spec"] = spec.record()
    entry["delta_method"] = {k: delta[k] for k in ("se", "ci_low", "ci_high", "p_value")}
    return entry


# ---------------------------------------------------------------------------------------------
# contrasts


def unadjusted_difference(cohort: pd.DataFrame, study: StudyConfig | None = None) -> dict[str, Any]:
    """Crude difference in mean outcome, exposed − unexposed, mmol/L (patient-clustered CI).

    Confounded by indication (lower Mg and Ca are treated more often): shown for contrast.
    ``study`` only fills in the words and windows of the entry.
    """
    needed = [CLUSTER, EXPOSURE, OUTCOME]
    check_columns(cohort, needed)
    data, n_dropped = complete_cases(cohort, needed)
    treat = exposure_indicator(data[EXPOSURE])
    what = "unadjusted difference"
    require_arms(treat, what=what)
    require_size(len(data), data[CLUSTER].nunique(), what=what)
    X = np.column_stack([np.ones_like(treat), treat])
    fit = clustered_ols(data[OUTCOME].to_numpy(dtype=float), X, data[CLUSTER])
    return estimate_entry(
        name="unadjusted_difference",
        estimand=unadjusted_estimand(study),
        study=study,
        stats=linear_contrast(fit, np.array([0.0, 1.0])),
        data=data,
        treat=treat,
        n_dropped=n_dropped,
        method="Difference in means by OLS on the exposure alone; patient-clustered (CR1) "
        "95 % CI, t with (patients − 1) df.",
        adjustment_set=[],
        notes=[],
    )


def naive_before_after(cohort: pd.DataFrame, study: StudyConfig | None = None) -> dict[str, Any]:
    """Mean change (outcome − baseline corrected Ca) among exposed episodes, mmol/L.

    NOT a causal effect: episodes were selected on a low calcium, so calcium rises on re-test
    without treatment (regression to the mean), and illness resolves. No comparison group.
    ``study`` only fills in the words and windows of the entry.
    """
    check_columns(cohort, [CLUSTER, EXPOSURE, OUTCOME, BASELINE_CA])
    known, n_unknown = complete_cases(cohort, [CLUSTER, EXPOSURE])
    exposed = known.loc[exposure_indicator(known[EXPOSURE]).astype(bool)]
    data, n_incomplete = complete_cases(exposed, [OUTCOME, BASELINE_CA])
    n_dropped = n_unknown + n_incomplete
    what = "naive before/after change"
    if data.empty:
        raise InsufficientDataError(
            f"no {what}: the exposed (Mg repletion) arm has no analysable episodes; {REPORT_SAYS}."
        )
    require_size(len(data), data[CLUSTER].nunique(), what=what)
    change = (data[OUTCOME] - data[BASELINE_CA]).to_numpy(dtype=float)
    fit = clustered_ols(change, np.ones((len(data), 1)), data[CLUSTER])
    return estimate_entry(
        name="naive_before_after",
        estimand=naive_estimand(study),
        study=study,
        stats=linear_contrast(fit, np.array([1.0])),
        data=data,
        treat=np.ones(len(data)),
        n_dropped=n_dropped,
        method="Mean of within-episode change (outcome − baseline corrected Ca) among exposed "
        "episodes; patient-clustered (CR1) 95 % CI, t with (patients − 1) df.",
        adjustment_set=[],
        notes=[],
    )

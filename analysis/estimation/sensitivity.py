"""Sensitivity analyses of the primary estimate (results.json ``sensitivity``).

Each analysis refits the primary model (:func:`mgca.analysis.estimation.models.fit_primary`:
g-computation
from the fully interacted outcome regression, patient-clustered) on a changed cohort or
outcome, and returns an entry with the keys of a results.json ``estimates`` entry plus
``analysis`` (words) and ``reason`` (why there is no estimate, or ``None``):

- :func:`ionized_outcome`: the outcome is ionized Ca (mmol/L) at the horizon instead of
  albumin-corrected Ca; episodes without an ionized outcome are left out.
- :func:`excluding_advanced_ckd`: episodes with baseline eGFR below
  ``advanced_ckd_egfr_ml_min_1_73m2`` (CKD-EPI 2021, ``sql/kidney_function.sql``) left out.
- :func:`same_day_albumin`: only episodes whose index and outcome calcium were corrected
  with an albumin of the same day (or indexed by ionized Ca).
- :func:`alternative_windows`: the cohort re-derived by the same SQL with another grace period
  or outcome horizon (``MgcaConfig.sensitivity_configs``) by the run's engine (only the
  steps the changed setting reaches are re-run).
- :func:`ionized_only_cohort`: the cohort re-derived with eligibility and outcome by ionized
  Ca (``study.index_on_ionized_calcium_only``), baseline ionized Ca adjusted for.
- :func:`primary_evalue`: the E-value of the primary estimate
  (:func:`mgca.analysis.estimation.diagnostics.evalue`).

Nothing here re-implements a cohort rule: changed windows are re-derived in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd

from mgca.analysis.estimation.diagnostics import evalue, pooled_outcome_sd
from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    OUTCOME,
    InsufficientDataError,
    fit_primary,
)
from mgca.config import MgcaConfig, StudyConfig
from mgca.engine.base import CohortUnavailable

IONIZED_OUTCOME = "outcome_ca_ionized_mmol_l"


def _no_estimate(name: str, analysis: str, reason: str) -> dict[str, Any]:
    return {
        "name": name,
        "analysis": analysis,
        "estimate": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "n": None,
        "unit": "mmol/L",
        "reason": reason,
    }


def _refit(
    name: str, analysis: str, fit: Callable[[], dict[str, Any]], **overrides: Any
) -> dict[str, Any]:
    """Run one primary refit; an ``InsufficientDataError`` becomes a no-estimate entry."""
    try:
        result = fit()
    except InsufficientDataError as exc:
        return _no_estimate(name, analysis, str(exc))
    return result | {"name": name, "analysis": analysis, "reason": None} | overrides


def ionized_outcome(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Primary model with ionized Ca at the horizon (mmol/L) as the outcome.

    Ionized Ca is the reference measure in critical illness (clinical.md); it is drawn only
    in some episodes (blood gases), so this is a selected subgroup. The adjustment set is
    the primary one (baseline corrected Ca, the selecting value, included).
    """
    analysis = "outcome: ionized Ca instead of albumin-corrected Ca"
    if IONIZED_OUTCOME not in cohort.columns:
        return _no_estimate("ionized_calcium_outcome", analysis, "no ionized outcome column")
    swapped = cohort.assign(**{OUTCOME: cohort[IONIZED_OUTCOME]})
    return _refit(
        "ionized_calcium_outcome",
        analysis,
        lambda: fit_primary(swapped, study),
        outcome=(
            f"ionized Ca (mmol/L) nearest to {study.horizon_hours} h after index, within ± "
            f"{study.outcome_tolerance_hours} h (episodes without one left out, in n_dropped)"
        ),
    )


def excluding_advanced_ckd(
    cohort: pd.DataFrame, kidney: pd.DataFrame, study: StudyConfig
) -> dict[str, Any]:
    """Primary model without episodes whose baseline eGFR is below the configured limit.

    ``kidney`` is ``index_kidney_function`` (``advanced_ckd`` per ``encounter_id``).
    Episodes whose eGFR is unknown (no creatinine, unknown sex) are kept; the primary model
    drops those without creatinine anyway.
    """
    limit = study.advanced_ckd_egfr_ml_min_1_73m2
    analysis = (
        f"excluding advanced kidney disease: baseline eGFR < {limit:g} mL/min/1.73 m² "
        "(CKD-EPI 2021 creatinine equation)"
    )
    flags = cohort[["encounter_id"]].merge(
        kidney[["encounter_id", "advanced_ckd"]], on="encounter_id", how="left"
    )
    keep = ~flags["advanced_ckd"].astype("boolean").fillna(False).astype(bool).to_numpy()
    return _refit(
        "excluding_advanced_ckd",
        analysis,
        lambda: fit_primary(cohort.loc[keep].reset_index(drop=True), study),
    )


SAME_DAY_INDEX_MEASURES = frozenset({"ionized", "corrected_same_day_albumin"})
"""Index calcium measures that used no albumin older than a day (ionized needs none)."""


def same_day_albumin(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Primary model on the episodes whose index and outcome calcium needed no albumin older
    than ``albumin_same_day_hours``: index by ionized Ca or by a Ca corrected with a same-day
    albumin, outcome corrected with a same-day albumin.

    The primary cohort corrects calcium with the most recent albumin of the look-back
    (``albumin_lookback_hours``); albumin drifts over days in acute illness, so this shows
    whether the older albumins moved the answer.
    """
    name = "same_day_albumin"
    analysis = (
        f"only episodes whose calcium was corrected with an albumin drawn at most "
        f"{study.albumin_same_day_hours} h before it (or indexed by ionized Ca)"
    )
    needed = {"index_calcium_measure", "outcome_calcium_measure"}
    if not needed <= set(cohort.columns):
        return _no_estimate(name, analysis, "the cohort has no calcium measure columns")
    keep = cohort["index_calcium_measure"].isin(SAME_DAY_INDEX_MEASURES) & (
        cohort["outcome_calcium_measure"] == "corrected_same_day_albumin"
    )
    subset = cohort.loc[keep.fillna(False).to_numpy()].reset_index(drop=True)
    return _refit(name, analysis, lambda: fit_primary(subset, study))


CohortFor = Callable[[str, MgcaConfig], pd.DataFrame]
"""``cohort_for(name, config)``: the analytic table re-derived by the SQL under ``config``, the
sensitivity window ``name`` (the run's engine, :meth:`mgca.engine.base.Engine.alternative_cohort`);
raises :class:`mgca.engine.base.CohortUnavailable` when the run cannot give it."""


def alternative_windows(cohort_for: CohortFor, config: MgcaConfig) -> list[dict[str, Any]]:
    """The primary model on cohorts re-derived with each alternative grace period/horizon
    (``MgcaConfig.sensitivity_configs``) by ``cohort_for``. A window whose cohort cannot be
    had gets an entry without an estimate that says why, not a failed run."""
    out = []
    for name, label, alt in config.sensitivity_configs():
        analysis = f"re-derived cohort: {label}"
        try:
            cohort = cohort_for(name, alt)
        except CohortUnavailable as exc:
            out.append(_no_estimate(name, analysis, f"cohort not available: {exc}"))
            continue
        except Exception as exc:  # one window must not stop the run; the entry says why
            # (the exception's type only: a database message may quote a value or a date)
            reason = f"cohort could not be re-derived ({type(exc).__name__})"
            out.append(_no_estimate(name, analysis, reason))
            continue
        fit = partial(fit_primary, cohort, alt.study)
        out.append(_refit(name, analysis, fit))
    return out


IONIZED_ONLY = "ionized_only_cohort"
IONIZED_BASELINE = "baseline_ca_ionized_mmol_l"


def ionized_only_cohort(cohort_for: CohortFor, config: MgcaConfig) -> dict[str, Any]:
    """The whole analysis on ionized Ca alone: the cohort re-derived with
    ``study.index_on_ionized_calcium_only`` (index by a low ionized Ca, an ionized Ca at the
    horizon required), the primary model with ionized Ca at the horizon as the outcome and
    baseline ionized Ca (spline, in the slot of baseline corrected Ca) in the adjustment set
    instead of corrected Ca, total Ca and albumin (no albumin correction at either end)."""
    analysis = (
        "ionized-only cohort: eligibility and outcome by ionized Ca, baseline ionized Ca "
        "adjusted for"
    )
    alt = config.model_copy(
        update={"study": config.study.model_copy(update={"index_on_ionized_calcium_only": True})}
    )
    try:
        cohort = cohort_for(IONIZED_ONLY, alt)
    except CohortUnavailable as exc:
        return _no_estimate(IONIZED_ONLY, analysis, f"cohort not available: {exc}")
    except Exception as exc:  # the entry says why; the exception's type only (no values)
        return _no_estimate(
            IONIZED_ONLY, analysis, f"cohort could not be re-derived ({type(exc).__name__})"
        )
    swapped = cohort.assign(
        **{
            OUTCOME: cohort[IONIZED_OUTCOME],
            "baseline_ca_corrected_mmol_l": cohort[IONIZED_BASELINE],
        }
    )
    adjustment = [
        c for c in ADJUSTMENT_SET if c not in ("baseline_ca_total_mmol_l", "baseline_albumin_g_l")
    ]
    return _refit(
        IONIZED_ONLY,
        analysis,
        lambda: fit_primary(swapped, alt.study, adjustment_set=adjustment),
        outcome=(
            f"ionized Ca (mmol/L) nearest to {config.study.horizon_hours} h after index, within "
            f"± {config.study.outcome_tolerance_hours} h"
        ),
        estimand=(
            "difference in mean ionized Ca at the horizon, Mg repletion within the grace "
            "period vs not, among episodes indexed by a low ionized Ca with a low Mg "
            "(baseline ionized Ca, Mg and the rest of the primary set adjusted for)"
        ),
    )


def primary_evalue(primary: dict[str, Any] | None, cohort: pd.DataFrame) -> dict[str, Any]:
    """E-value of the primary estimate and its CI limit nearer the null (approximate).

    The mmol/L difference is standardised by the pooled within-arm SD of the outcome and
    converted to a risk ratio by RR ≈ exp(0.91 d) (VanderWeele & Ding 2017); see
    :func:`mgca.analysis.estimation.diagnostics.evalue`.
    """
    approximation = (
        "difference standardised by the pooled within-arm SD of the outcome (d), converted "
        "to an approximate risk ratio RR = exp(0.91 d) (VanderWeele & Ding 2017, Ann Intern "
        "Med 167:268); assumes a roughly normal outcome: a rough guide"
    )
    if not primary or primary.get("estimate") is None or primary.get("ci_low") is None:
        return {
            "evalue_estimate": None,
            "evalue_ci": None,
            "approximation": approximation,
            "reason": "no primary estimate",
        }
    try:
        sd = pooled_outcome_sd(cohort)
        values = evalue(primary["estimate"], primary["ci_low"], primary["ci_high"], sd)
    except ValueError as exc:
        return {
            "evalue_estimate": None,
            "evalue_ci": None,
            "approximation": approximation,
            "reason": str(exc),
        }
    return values | {"sd_outcome_mmol_l": sd, "approximation": approximation, "reason": None}


def run_sensitivity(
    cohort: pd.DataFrame,
    *,
    kidney: pd.DataFrame,
    primary: dict[str, Any] | None,
    config: MgcaConfig,
    cohort_for: CohortFor | None,
) -> dict[str, Any]:
    """Every sensitivity analysis: ``{"analyses": [entries], "evalue": {...}}``.

    ``cohort_for`` ``None`` skips the re-derived windows (e.g. in a notebook without a
    database).
    """
    analyses = [ionized_outcome(cohort, config.study)]
    analyses.append(excluding_advanced_ckd(cohort, kidney, config.study))
    analyses.append(same_day_albumin(cohort, config.study))
    if cohort_for is not None:
        analyses += alternative_windows(cohort_for, config)
        analyses.append(ionized_only_cohort(cohort_for, config))
    return {"analyses": analyses, "evalue": primary_evalue(primary, cohort)}

"""Secondary correction outcomes read on a fixed schedule, with a missing read weighted, not
dropped: the secondary contrasts of Mg repletion that extra re-checks in the treated cannot
move (results.json ``secondary``).

Why: "a normal corrected Ca at any draw" rewards the more often tested, and the treated are
re-checked more (6-8 h after each dose in usual care; the ``detection_bias`` threat adds
more). Here every episode has the same chances: one corrected Ca per pre-specified look, the
draw nearest the look within a tolerance (SQL picks it), whatever the number of draws.

- ``calcium_corrected_at_horizon_risk_difference``: corrected Ca ≥ the low threshold at the
  primary outcome draw (``eligible_episodes.outcome_corrected``, ``sql/eligible_episodes.sql``:
  the draw nearest ``horizon_hours`` within ± ``outcome_tolerance_hours``);
- ``calcium_corrected_fixed_looks_risk_difference``: corrected Ca ≥ the low threshold at any
  of the daily looks up to ``correction_window_hours``, every look observed
  (``index_calcium_fixed_looks.corrected_at_fixed_looks``,
  ``sql/calcium_correction_fixed_looks.sql``).

Estimator: the primary's own (:func:`mgca.analysis.estimation.missing_outcome.fit_primary_ipcw`)
with the 0/1 indicator as the outcome, i.e. a linear probability model chosen by the primary's
pre-specified model rule, fitted by weighted least squares on the episodes whose reads were
all observed, weighted by the primary's censoring model (stabilised, truncated inverse
probability of every read being observed given the arm and the pre-index adjustment set), and
standardised (g-computation) over every eligible episode; patient-cluster bootstrap SE, t with
(patients − 1) df. A risk difference in probability (0–1).

Why not the logistic model of the other secondaries: in the null world about 93 % of
episodes correct by 72 h, so a logistic model with the 12-parameter adjustment set has a
handful of non-corrected episodes per arm, separates or nearly so, and its sandwich SE
collapses to 0 or explodes (README, "Design threats"); the linear probability model with a
bootstrap SE stays finite and is what the primary's interval already relies on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.estimation.censoring import OBSERVED
from mgca.analysis.estimation.missing_outcome import fit_primary_ipcw
from mgca.analysis.estimation.models import ADJUSTMENT_SET, OUTCOME, InsufficientDataError
from mgca.analysis.estimation.secondary import entry
from mgca.analysis.text import eligible_cohort_words, exposure_words, horizon_words
from mgca.config import EstimationConfig, StudyConfig

HORIZON_NAME = "calcium_corrected_at_horizon_risk_difference"
"""results.json name: corrected at the primary outcome draw (risk difference)."""
FIXED_LOOKS_NAME = "calcium_corrected_fixed_looks_risk_difference"
"""results.json name: corrected at one of the daily looks (risk difference)."""
HORIZON_CORRECTED = "outcome_corrected"
"""Column of ``eligible_episodes``: corrected Ca ≥ the low threshold at the outcome draw."""
LOOKS_CORRECTED = "corrected_at_fixed_looks"
"""Column of ``index_calcium_fixed_looks``: null unless every look was observed."""

_STAT_KEYS = ("estimate", "ci_low", "ci_high", "p_value")
_COUNT_KEYS = ("n", "n_exposed", "n_unexposed", "n_clusters", "n_dropped")


def _method(read: str) -> str:
    """results.json ``method``; ``read``: what an episode needs to count as read."""
    return (
        "Linear probability model of the 0/1 outcome on exposure and the primary adjustment "
        f"set ({', '.join(ADJUSTMENT_SET)}, where the source records them; creatinine "
        "logged; splines and exposure interactions as the primary's pre-specified model rule "
        "allows), weighted least squares on the episodes "
        f"with {read}; weights: stabilised inverse probability of {read} given the arm and "
        "the pre-index adjustment set (the primary's censoring model and truncation); risk "
        "difference standardised over every eligible episode (g-computation); "
        "patient-cluster bootstrap SE (the primary's resamples), 95 % CI from t with "
        "(patients − 1) df."
    )


def _contrast(study: StudyConfig) -> str:
    return f"Mg repletion within {study.grace_hours} h vs not"


def ipcw_risk_difference(
    eligible: pd.DataFrame,
    corrected: pd.Series,
    observed: pd.Series,
    study: StudyConfig,
    estimation: EstimationConfig | None = None,
) -> dict[str, Any]:
    """The primary's IPCW g-computation with a 0/1 outcome: its results.json entry.

    ``corrected`` (bool, null where unread) and ``observed`` (bool) are aligned with
    ``eligible``'s rows; ``observed`` decides who the censoring model weights back to every
    eligible episode. Raises ``InsufficientDataError`` as the primary does.
    """
    seen = observed.fillna(False).astype(bool).to_numpy()
    value = pd.to_numeric(corrected.astype("boolean").astype("Float64"), errors="coerce")
    frame = eligible.copy()
    frame[OBSERVED] = seen & value.notna().to_numpy()
    frame[OUTCOME] = np.where(frame[OBSERVED], value.to_numpy(dtype=float, na_value=np.nan), np.nan)
    read = frame.loc[frame[OBSERVED], OUTCOME]
    if read.nunique() < 2:
        # a constant outcome fits a risk difference of exactly 0 with a zero-width interval
        raise InsufficientDataError(
            "no risk difference: every episode with the outcome read has the same outcome"
        )
    fitted, _ = fit_primary_ipcw(frame, study, estimation)
    return fitted


def _as_secondary(
    fitted: dict[str, Any],
    *,
    name: str,
    estimand: str,
    outcome: str,
    study: StudyConfig,
    method: str,
    notes: list[str],
) -> dict[str, Any]:
    """``fitted`` (an IPCW estimate entry) in the key set of every secondary entry, with the
    cohort, exposure and missing-outcome handling kept."""
    out = entry(
        name=name,
        estimand=estimand,
        outcome=outcome,
        unit="proportion (0–1)",
        scale="risk difference",
        method=method,
        stats_={k: fitted[k] for k in _STAT_KEYS},
        adjustment_set=fitted["adjustment_set"],
        notes=[
            f"cohort: {eligible_cohort_words(study)}",
            f"exposure: {exposure_words(study)}",
            *notes,
            *fitted["notes"],
        ],
    )
    out.update({k: fitted[k] for k in _COUNT_KEYS})
    out["cohort"] = eligible_cohort_words(study)
    out["exposure"] = exposure_words(study)
    out["missing_outcome_handling"] = fitted["missing_outcome_handling"]
    out["censoring_model"] = fitted["censoring_model"]
    out["model_spec"] = fitted["model_spec"]
    return out


def corrected_at_horizon(
    eligible: pd.DataFrame, study: StudyConfig, estimation: EstimationConfig | None = None
) -> dict[str, Any]:
    """Risk difference of corrected Ca ≥ the low threshold at the primary outcome draw."""
    fitted = ipcw_risk_difference(
        eligible, eligible[HORIZON_CORRECTED], eligible[OBSERVED], study, estimation
    )
    low = f"{study.ca_corrected_low_mmol_l:.2f} mmol/L"
    return _as_secondary(
        fitted,
        name=HORIZON_NAME,
        estimand=(
            f"risk difference, over all eligible episodes (outcome measured or not), in the "
            f"probability that albumin-corrected Ca is ≥ {low} at {horizon_words(study)}, "
            f"{_contrast(study)}"
        ),
        outcome=(
            f"albumin-corrected Ca ≥ {low} at the primary outcome draw (the draw nearest "
            f"{study.horizon_hours} h within ± {study.outcome_tolerance_hours} h after index)"
        ),
        study=study,
        method=_method("an outcome draw"),
        notes=[
            "one corrected Ca at the horizon whatever the number of draws, so extra "
            "post-dose re-checks in the treated give them no extra chance to look corrected",
        ],
    )


def corrected_at_fixed_looks(
    eligible: pd.DataFrame,
    looks: pd.DataFrame,
    study: StudyConfig,
    estimation: EstimationConfig | None = None,
) -> dict[str, Any]:
    """Risk difference of corrected Ca ≥ the low threshold at any daily look, every look read."""
    data = eligible.merge(
        looks[["encounter_id", "n_looks", "n_looks_observed", LOOKS_CORRECTED]],
        on="encounter_id",
        how="left",
    )
    complete = data["n_looks_observed"].fillna(0) >= data["n_looks"].fillna(1)
    fitted = ipcw_risk_difference(data, data[LOOKS_CORRECTED], complete, study, estimation)
    window = study.correction_window_hours
    step = study.fixed_look_interval_hours
    low = f"{study.ca_corrected_low_mmol_l:.2f} mmol/L"
    return _as_secondary(
        fitted,
        name=FIXED_LOOKS_NAME,
        estimand=(
            f"risk difference, over all eligible episodes (looks read or not), in the "
            f"probability that calcium is corrected at one of the looks every {step} h up to "
            f"{window} h, {_contrast(study)}"
        ),
        outcome=(
            f"albumin-corrected Ca ≥ {low} at any of the looks every {step} h up to {window} h "
            f"after index (the draw nearest each look, within ± "
            f"{study.fixed_look_tolerance_hours} h, after the {study.grace_hours} h grace "
            "period and before discharge); read when every look has a draw"
        ),
        study=study,
        method=_method("every look read"),
        notes=[
            "one value per look whatever the number of draws, so extra post-dose re-checks "
            "in the treated give them no extra chance to look corrected (detection bias)",
            "an episode with a look without any draw in its window is weighted for, not "
            "dropped: the censoring model of every look being read",
        ],
    )


__all__ = [
    "FIXED_LOOKS_NAME",
    "HORIZON_NAME",
    "corrected_at_fixed_looks",
    "corrected_at_horizon",
    "ipcw_risk_difference",
]

"""Sensitivity analysis of missing outcomes that needs no weights: a composite outcome,
"corrected at the outcome, or discharged alive before the horizon", as a risk difference.

Every eligible episode has the composite (``eligible_episodes.corrected_or_discharged_alive``,
derived in SQL: corrected Ca ≥ ``study.ca_corrected_low_mmol_l`` at the outcome, or sent home
alive before the horizon; a death, a missing re-test or a measured low Ca count as not
corrected), so nobody is dropped for a missing outcome. Going home is taken as recovery: the
analysis answers a reviewer who asks what happens if the discharged patients had corrected.

Estimate: the adjusted risk difference (probability, 0-1) exposed − unexposed from a linear
probability model, OLS of the composite on the arm and the adjustment set (linear terms, log
creatinine, sex as a factor), patient-clustered (CR1) 95 % CI, t with (patients − 1) df. In
an additive model the arm's coefficient is the average risk difference over the episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import patsy

from mgca.analysis.estimation.censoring import OBSERVED
from mgca.analysis.estimation.models import (
    ADJUSTMENT_SET,
    CATEGORICAL_COVARIATES,
    CLUSTER,
    EXPOSURE,
    InsufficientDataError,
    check_columns,
    clustered_ols,
    complete_cases,
    covariate_rhs,
    exposure_indicator,
    factor_column,
    independent_columns,
    linear_contrast,
    recorded_covariates,
    require_arms,
    require_size,
    usable_covariates,
)
from mgca.analysis.text import (
    composite_estimand,
    composite_outcome_words,
    eligible_cohort_words,
    exposure_words,
)
from mgca.config import StudyConfig

NAME = "composite_corrected_or_discharged_alive"
"""results.json name of the composite sensitivity analysis."""
COMPOSITE = "corrected_or_discharged_alive"
"""Column of ``eligible_episodes`` (bool) holding the composite outcome."""
UNIT = "risk difference (probability, 0-1)"
COUNT_KEYS: tuple[str, ...] = ("n", "n_exposed", "n_unexposed", "n_dropped")
"""Keys of the entry that are counts (disclosure control applies to them)."""

_Y = "y"
_TREAT = "mg_repletion"


def composite_risk_difference(eligible: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """The composite sensitivity analysis as one JSON-ready entry (counts not yet
    suppressed); ``estimate`` is ``None`` with a ``reason`` when it cannot be made."""
    entry: dict[str, Any] = {
        "name": NAME,
        "estimand": composite_estimand(study),
        "outcome": composite_outcome_words(study),
        "cohort": eligible_cohort_words(study),
        "exposure": exposure_words(study),
        "unit": UNIT,
        "estimate": None,
        "se": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "risk_exposed": None,
        "risk_unexposed": None,
        "n": None,
        "n_exposed": None,
        "n_unexposed": None,
        "n_dropped": None,
        "horizon_hours": study.horizon_hours,
        "method": (
            "Linear probability model: OLS of the composite (0/1) on the arm and the "
            "adjustment set (linear terms, log baseline creatinine, sex as a factor); the "
            "arm's coefficient is the adjusted risk difference; patient-clustered (CR1) 95 % "
            "CI, t with (patients − 1) df. No episode is dropped for a missing outcome."
        ),
        "adjustment_set": list(ADJUSTMENT_SET),
        "notes": [],
        "reason": None,
    }
    what = "composite sensitivity analysis"
    try:
        # a severity proxy the source does not record is left out, not a reason to drop all
        adjustment, notes = recorded_covariates(eligible, ADJUSTMENT_SET)
        needed = [CLUSTER, EXPOSURE, COMPOSITE, *adjustment]
        check_columns(eligible, [*needed, OBSERVED])
        data, n_dropped = complete_cases(eligible, needed)
        treat = exposure_indicator(data[EXPOSURE])
        require_arms(treat, what=what)
        require_size(len(data), data[CLUSTER].nunique(), what=what)
        covariates, usable_notes = usable_covariates(data, adjustment, treat)
        notes.extend(usable_notes)
        frame = pd.DataFrame(
            {_Y: data[COMPOSITE].astype(bool).to_numpy(dtype=float), _TREAT: treat}
        )
        for col in covariates:
            frame[col] = (
                factor_column(data[col])
                if col in CATEGORICAL_COVARIATES
                else data[col].astype(float).to_numpy()
            )
        y_mat, x_mat = patsy.dmatrices(
            f"{_Y} ~ {_TREAT} + {covariate_rhs(covariates, splines=False)}", frame
        )
        X = np.asarray(x_mat)
        keep = independent_columns(X)
        names = [x_mat.design_info.column_names[j] for j in keep]
        if _TREAT not in names:
            raise InsufficientDataError(f"no {what}: the arm is collinear with the covariates")
        fit = clustered_ols(np.asarray(y_mat).ravel(), X[:, keep], data[CLUSTER])
        c = np.zeros(len(keep))
        c[names.index(_TREAT)] = 1.0
        entry.update(linear_contrast(fit, c))
    except InsufficientDataError as exc:
        entry["reason"] = str(exc).split(";")[0]
        return entry
    y = frame[_Y].to_numpy()
    entry.update(
        {
            "risk_exposed": float(y[treat == 1].mean()),
            "risk_unexposed": float(y[treat == 0].mean()),
            "n": len(data),
            "n_exposed": int(treat.sum()),
            "n_unexposed": int(len(treat) - treat.sum()),
            "n_dropped": n_dropped,
            "notes": notes,
        }
    )
    return entry

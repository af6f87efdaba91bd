"""The target trial the study emulates, written out from the config (results.json
``target_trial``; the report's "Target trial" table).

Components follow Hernán & Robins (Am J Epidemiol 2016;183:758): eligibility, treatment
strategies, assignment, time zero, outcome, follow-up, causal contrast and analysis plan.
Each value says what the trial would do and how the data emulate it; every number comes
from the run's config (units in the text).
"""

from __future__ import annotations

from typing import Any

from mgca.analysis.estimation.models import ADJUSTMENT_SET
from mgca.config import MgcaConfig

COMPONENTS: tuple[str, ...] = (
    "eligibility",
    "treatment_strategies",
    "assignment",
    "time_zero",
    "outcome",
    "follow_up",
    "causal_contrast",
    "analysis_plan",
)


def target_trial_spec(config: MgcaConfig) -> dict[str, Any]:
    """The target-trial protocol as ``{component: text}`` in :data:`COMPONENTS` order."""
    s = config.study
    lo, hi = (
        s.horizon_hours - s.outcome_tolerance_hours,
        s.horizon_hours + s.outcome_tolerance_hours,
    )
    return {
        "eligibility": (
            f"Hospital stays of adults (≥ {s.min_age_years:g} y) with serum Mg < "
            f"{s.mg_low_mmol_l:.2f} mmol/L and low calcium (ionized Ca < "
            f"{s.ca_ionized_low_mmol_l:.2f} mmol/L where drawn, else albumin-corrected Ca < "
            f"{s.ca_corrected_low_mmol_l:.2f} mmol/L with the latest albumin drawn at or before "
            f"it, at most {s.albumin_lookback_hours} h earlier) drawn at most "
            f"{s.concurrent_window_hours} h apart (first such episode per stay; no test drawn "
            "after time zero decides eligibility), not already given Mg at or before it; "
            "emulated in sql/index_events.sql and sql/cohort_eligibility.sql"
        ),
        "treatment_strategies": (
            f"(1) start IV or oral Mg repletion within {s.grace_hours} h of time zero; (2) no "
            f"Mg within {s.grace_hours} h; usual care (including calcium) otherwise in both"
        ),
        "assignment": (
            "Not randomised: the strategy is the one the data show within the grace period "
            "(first given, not just ordered, dose); exchangeability assumed conditional on "
            f"the pre-index adjustment set ({', '.join(ADJUSTMENT_SET)})"
        ),
        "time_zero": (
            "Draw time of the later of the two qualifying labs (the same moment for both "
            "strategies, so no immortal time)"
        ),
        "outcome": (
            f"Albumin-corrected Ca (mmol/L) nearest to {s.horizon_hours} h after time zero, "
            f"within {lo}–{hi} h; this window opens after the grace period ends"
        ),
        "follow_up": (
            f"From time zero to {hi} h, or discharge or death if earlier (episodes without an "
            "outcome are not analysed and are counted in the attrition table)"
        ),
        "causal_contrast": (
            "Observational analogue of the per-protocol effect at assignment: average "
            "treatment effect (difference in mean outcome, strategy 1 − strategy 2, mmol/L) in "
            "the analysed cohort"
        ),
        "analysis_plan": (
            "Outcome regression (ANCOVA on baseline, fully interacted, g-computation), "
            "inverse-probability weighting with a logistic propensity model, and augmented "
            "IPW (doubly robust), all with patient-clustered standard errors; balance, overlap "
            "and effective sample size reported; secondary and sensitivity analyses as listed"
        ),
    }

"""Every wording of the study question: estimands, the target trial, methods and windows.

One place for the sentences that say what is estimated, in whom and how, so that changing a
definition (a threshold, the grace period, the outcome window) means reading one file. The
words are built from the run's config, so every number in them (hours, mmol/L, episodes) is
the one the run used. They land in results.json (``estimand``, ``cohort``, ``exposure``,
``outcome``, ``method``, ``target_trial``) and in the report (Methods, Target trial, the
question); tests compare many of them verbatim.

This module imports nothing from the estimation code (which imports it); numbers the
estimation code owns (the adjustment set, spline degrees of freedom, the model-spec words)
are passed in as arguments. Words given ``study=None`` are the generic ones used when an
estimate is made without a study config (tests, notebooks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mgca.config import EstimationConfig, MgcaConfig, StudyConfig

# ---------------------------------------------------------------------------------------------
# windows


def grace_words(study: StudyConfig | None) -> str:
    """The grace period (time from index in which Mg must be given), e.g. ``"6 h"``."""
    return "the grace period" if study is None else f"{study.grace_hours} h"


def horizon_words(study: StudyConfig | None) -> str:
    """The outcome window in words, e.g. ``"48 h ± 12 h"``."""
    if study is None:
        return "the outcome horizon"
    return f"{study.horizon_hours} h ± {study.outcome_tolerance_hours} h"


def horizon_outcome_words(study: StudyConfig) -> str:
    """A secondary analysis' outcome at the primary horizon, e.g. ``"albumin-corrected Ca
    (mmol/L) at 48 h ± 12 h"``."""
    return f"albumin-corrected Ca (mmol/L) at {horizon_words(study)}"


# ---------------------------------------------------------------------------------------------
# the primary estimand and its parts (results.json estimate entries)


def cohort_words(study: StudyConfig | None) -> str:
    """Who is analysed (results.json ``cohort``)."""
    if study is None:
        return (
            "analysed episodes of the analytic cohort (first concurrent hypomagnesaemia and "
            "hypocalcaemia per hospital stay) with an outcome calcium in the outcome window"
        )
    lo = study.horizon_hours - study.outcome_tolerance_hours
    hi = study.horizon_hours + study.outcome_tolerance_hours
    return (
        f"adult (≥ {study.min_age_years:g} y) hospital stays with concurrent hypomagnesaemia "
        f"(serum Mg < {study.mg_low_mmol_l:.2f} mmol/L) and hypocalcaemia (albumin-corrected "
        f"Ca < {study.ca_corrected_low_mmol_l:.2f} mmol/L), first such episode per stay, with "
        f"a corrected Ca measured {lo}–{hi} h after index"
    )


def exposure_words(study: StudyConfig | None) -> str:
    """The two treatment strategies compared (results.json ``exposure``)."""
    return (
        f"first given IV or oral magnesium dose within {grace_words(study)} after index "
        f"(time zero = draw time of the later qualifying lab) vs no magnesium within "
        f"{grace_words(study)}; usual care afterwards in both groups"
    )


def outcome_words(study: StudyConfig | None) -> str:
    """The primary outcome (results.json ``outcome`` of every estimate entry)."""
    if study is None:
        return "albumin-corrected serum Ca (mmol/L) nearest to the outcome horizon"
    return (
        f"albumin-corrected serum Ca (mmol/L) nearest to {study.horizon_hours} h after index, "
        f"within ± {study.outcome_tolerance_hours} h"
    )


def _contrast_words(study: StudyConfig | None) -> str:
    """The contrast every adjusted estimand compares, strategy against strategy: an
    initiation (intention-to-treat-like) contrast, not a per-protocol one."""
    grace = grace_words(study)
    return (
        f"starting IV/oral Mg repletion within {grace} after index vs not starting it within "
        f"{grace} (an initiation contrast: usual care afterwards in both arms, so Mg given "
        f"later stays in the second arm), on albumin-corrected Ca at {horizon_words(study)}"
    )


def deviation_words(study: StudyConfig | None) -> str:
    """What the post-grace Mg counts (results.json ``post_grace_deviations``) mean."""
    grace = grace_words(study)
    return (
        f"Episodes given Mg after the grace period ({grace}) and before their outcome draw. "
        "The contrast is an initiation one (Mg started within the grace period vs not started "
        "within it), so later Mg in the unexposed arm is usual care, not a deviation that is "
        "censored: the more of it, the more the estimate compares Mg now with Mg later "
        "rather than Mg with no Mg. In the exposed arm the count is Mg continued or repeated; "
        "stopping after the first dose is within that strategy. The per-protocol contrast "
        "(clone, censor at deviation, weight) is estimated separately: results.json "
        "per_protocol."
    )


def per_protocol_words(config: MgcaConfig) -> dict[str, str]:
    """The per-protocol (clone-censor-weight) estimate's estimand in words: ``estimand``,
    ``cohort``, ``exposure_strategies``, ``outcome``, ``outcome_window``, ``method``
    (results.json ``per_protocol``, the report section and Methods read these)."""
    s, pp = config.study, config.per_protocol
    grace = grace_words(s)
    cut = (
        "none"
        if pp.weight_truncation_percentile >= 100
        else f"at the {pp.weight_truncation_percentile:g}th percentile of each clone arm"
    )
    return {
        "estimand": (
            "per-protocol average effect, in the analysed cohort, of starting Mg within "
            f"{grace} after index vs giving no Mg until the outcome draw (difference in mean "
            "outcome, first strategy − second, mmol/L), had every episode followed each "
            "strategy; a sustained-strategy contrast, unlike the primary initiation contrast"
        ),
        "cohort": cohort_words(s) + "; the episodes of the primary adjusted estimate",
        "exposure_strategies": (
            f"(1) Mg started within {grace} after index, usual care afterwards; (2) no Mg "
            "from index until the outcome draw. Each episode is cloned into both at time zero; "
            f"a clone of (1) is censored at {grace} without Mg, a clone of (2) at its first Mg"
        ),
        "outcome": outcome_words(s),
        "outcome_window": horizon_words(s),
        "method": (
            "clone-censor-weighting: inverse probability of remaining uncensored from a "
            f"pooled logistic model of starting Mg in {pp.interval_hours}-h intervals up to "
            "the outcome draw, on the pre-index adjustment set and the latest Mg and "
            "corrected Ca re-check; weighted (Hájek) means per clone arm; weights truncated "
            f"{cut}; 95 % percentile interval of {pp.bootstrap_replicates} patient-cluster "
            f"bootstrap resamples (seed {pp.bootstrap_seed}), the model refitted in each"
        ),
    }


def negative_control_words(study: StudyConfig) -> dict[str, dict[str, str]]:
    """Every negative control of the design (``mgca.analysis.estimation.negative_controls``):
    per control, ``label`` (the report's row), ``estimand``, ``cohort``, ``exposure`` and
    ``outcome`` in words, and ``why_null`` (why its true effect is zero)."""
    grace = grace_words(study)
    tol = study.outcome_tolerance_hours
    at_horizon = f"nearest to {study.horizon_hours} h after index, within ± {tol} h"
    primary_contrast = (
        f"average treatment effect, in the analytic cohort, of starting IV/oral Mg within "
        f"{grace} after index vs not starting it within {grace}"
    )
    return {
        "sodium_outcome": {
            "label": "Negative-control outcome: sodium",
            "estimand": f"{primary_contrast}, on serum sodium (should be 0)",
            "cohort": cohort_words(study),
            "exposure": exposure_words(study),
            "outcome": f"serum sodium (mmol/L) {at_horizon}",
            "why_null": "Mg repletion does not move serum sodium within 48 h; illness and its "
            "recovery move both",
        },
        "albumin_outcome": {
            "label": "Negative-control outcome: albumin",
            "estimand": f"{primary_contrast}, on serum albumin (should be 0)",
            "cohort": cohort_words(study),
            "exposure": exposure_words(study),
            "outcome": f"serum albumin (g/L) {at_horizon}",
            "why_null": "albumin (half-life about 3 weeks) is not moved by Mg; it tracks "
            "illness, inflammation and fluids",
        },
        "placebo_window": {
            "label": f"Placebo window: corrected Ca {study.placebo_hours_before_index} h "
            "before index",
            "estimand": f"{primary_contrast}, on corrected Ca drawn before index (should be 0)",
            "cohort": cohort_words(study),
            "exposure": exposure_words(study),
            "outcome": f"albumin-corrected serum Ca (mmol/L) nearest to "
            f"{study.placebo_hours_before_index} h before index, within ± {tol} h, drawn "
            "before index",
            "why_null": "Mg given after index cannot act on a calcium drawn before it",
        },
        "potassium_exposure": {
            "label": "Negative-control exposure: KCl without Mg",
            "estimand": f"average treatment effect of potassium chloride within {grace} "
            f"after index vs none, among episodes given no Mg within {grace}, on corrected "
            "Ca (should be 0)",
            "cohort": f"{cohort_words(study)}; only episodes given no Mg within {grace}",
            "exposure": f"a given potassium chloride dose within {grace} after index vs none",
            "outcome": outcome_words(study),
            "why_null": "potassium does not move serum calcium within 48 h; KCl is given to "
            "the same ill, diuresed patients as Mg",
        },
    }


def calibration_words() -> str:
    """What the calibrated interval (results.json ``calibration``) is."""
    return (
        "The primary estimate and 95 % CI after empirical calibration: the negative "
        "controls' estimates, each divided by its outcome's pooled within-arm SD, fit a "
        "systematic-error distribution N(mu, sigma²) by maximum likelihood (each control's "
        "own SE counted, as OHDSI EmpiricalCalibration does for log rate ratios); the "
        "primary, divided by the SD of corrected Ca, is shifted by mu and widened by sigma "
        "and by the standard error of mu, then multiplied back to mmol/L. Same estimand, "
        "cohort, exposure, outcome window and adjustment set as the primary."
    )


def primary_estimand(study: StudyConfig) -> str:
    """The primary (outcome regression) estimand: the ATE of the cohort's population."""
    return (
        "average treatment effect, in the population the analytic cohort represents (the "
        "mean over its episodes; the interval also counts the sampling of their covariates), "
        f"of {_contrast_words(study)}"
    )


def weighted_estimand(study: StudyConfig | None) -> str:
    """The IPW and doubly robust estimand: the same ATE as the primary."""
    return (
        "average treatment effect, in the population the analytic cohort represents (the "
        "marginal ATE over the cohort's covariate distribution), of "
        f"{_contrast_words(study)}, as the primary estimate; the interval also reflects "
        "covariate sampling"
    )


def overlap_estimand(study: StudyConfig | None) -> str:
    """The overlap-population (ATO) estimand."""
    return (
        "average treatment effect in the overlap population (ATO): the analysed episodes "
        "weighted by how uncertain their treatment was, e(1 − e), i.e. the patients in whom "
        f"clinicians were in equipoise; {_contrast_words(study)}"
    )


def unadjusted_estimand(study: StudyConfig | None) -> str:
    """The crude exposed − unexposed difference (shown for contrast, confounded)."""
    return (
        f"crude difference in mean outcome between episodes with and without Mg repletion "
        f"within {grace_words(study)}; not adjusted for confounding by indication"
    )


def naive_estimand(study: StudyConfig | None) -> str:
    """The naive before/after change among the exposed (not causal, and says so)."""
    return (
        "mean change in albumin-corrected Ca from the qualifying (baseline) value to the "
        f"outcome, among episodes with Mg repletion within {grace_words(study)}. NOT a "
        "causal effect: episodes were selected for a low calcium, which rises on re-test "
        "without treatment (regression to the mean), and the illness behind it resolves"
    )


ESTIMAND_WORDS: dict[str, str] = {
    "primary": "average treatment effect in the analysed cohort (g-computation)",
    "overlap": "average treatment effect in the overlap population (overlap weights)",
    "unadjusted_difference": "crude difference in mean outcome, not adjusted",
    "naive_before_after": "mean change from baseline among exposed episodes (not causal)",
    "ipw": "average treatment effect by inverse-probability weighting",
    "doubly_robust": "average treatment effect by augmented IPW (doubly robust)",
    "primary_complete_case": "average treatment effect in the episodes with a measured outcome",
}
"""Short estimand words for an entry whose estimate could not be made."""


def estimand_words(study: StudyConfig) -> dict[str, str]:
    """The primary estimand in words: ``estimand``, ``cohort``, ``exposure``, ``outcome``."""
    return {
        "estimand": primary_estimand(study),
        "cohort": cohort_words(study),
        "exposure": exposure_words(study),
        "outcome": outcome_words(study),
        "deviations": deviation_words(study),
    }


def question_words(study: StudyConfig) -> str:
    """The study question as the report's summary asks it."""
    return (
        "In adults with concurrent low magnesium and low calcium, does giving magnesium "
        f"within {study.grace_hours} h raise albumin-corrected calcium "
        f"{study.horizon_hours} h later, compared with not giving it within {study.grace_hours} h?"
    )


# ---------------------------------------------------------------------------------------------
# methods of the primary contrasts


def model_spec_words(spline_df: int) -> dict[str, str]:
    """Each candidate primary outcome model in words; ``spline_df``: degrees of freedom of the
    natural cubic splines."""
    return {
        "interacted_splines": (
            "exposure × covariate interaction (one regression per arm, Lin 2013), natural cubic "
            f"splines ({spline_df} df) for baseline Mg and baseline corrected Ca"
        ),
        "additive_splines": (
            "additive ANCOVA (common covariate slopes in both arms), natural cubic splines "
            f"({spline_df} df) for baseline Mg and baseline corrected Ca"
        ),
        "additive_linear": "additive ANCOVA (common covariate slopes in both arms), linear terms",
    }


def primary_method(model_words: str, n_replicates: int, seed: int) -> str:
    """results.json ``method`` of the primary estimate; ``model_words``: the chosen model in
    words, ``n_replicates``/``seed``: its patient-cluster bootstrap."""
    return (
        f"Outcome regression (g-computation), fitted by OLS: {model_words}; "
        "log baseline creatinine. The model was chosen by the pre-specified rule "
        "(estimation.min_episodes_per_parameter) before the outcome was read. ATE = mean over "
        "the analysed cohort of predicted outcome with everyone exposed minus everyone "
        f"unexposed. SE from a patient-cluster bootstrap ({n_replicates} resamples of whole "
        f"patients, seed {seed}; the model refitted in each, so the interval counts the "
        "sampling of the covariates too); 95 % CI and p-value from t with (patients − 1) df. "
        "The delta-method interval (patient-clustered CR1 sandwich, covariates held fixed) is "
        "kept beside it as delta_method."
    )


def model_rule_words(estimation: EstimationConfig, spec_words: Mapping[str, str]) -> str:
    """The pre-specified model rule and the interval, in words (Methods); ``spec_words``: the
    candidate models in words (:func:`model_spec_words`)."""
    k = estimation.min_episodes_per_parameter
    return (
        "Outcome regression (g-computation), fitted by OLS, with the richest of three models "
        f"whose parameters each have at least {k} episodes behind them (Harrell): "
        f"(1) {spec_words['interacted_splines']}, when the smaller arm has {k} episodes "
        f"per parameter of its own regression; (2) {spec_words['additive_splines']}; "
        f"(3) {spec_words['additive_linear']}, when the whole cohort has {k} per "
        "parameter; log baseline creatinine in all. The rule reads exposure and covariates "
        "only, never the outcome; results.json model_spec records the choice and why. ATE = "
        "mean predicted outcome with everyone exposed minus everyone unexposed; 95 % CI from "
        f"a patient-cluster bootstrap ({estimation.bootstrap_replicates} resamples, seed "
        f"{estimation.bootstrap_seed}), t with (patients − 1) df."
    )


# ---------------------------------------------------------------------------------------------
# the target trial (Hernán & Robins, Am J Epidemiol 2016;183:758)

TARGET_TRIAL_COMPONENTS: tuple[str, ...] = (
    "eligibility",
    "treatment_strategies",
    "assignment",
    "time_zero",
    "outcome",
    "follow_up",
    "causal_contrast",
    "analysis_plan",
)


def target_trial_words(config: MgcaConfig, adjustment_set: Sequence[str]) -> dict[str, Any]:
    """The target-trial protocol as ``{component: text}`` in :data:`TARGET_TRIAL_COMPONENTS`
    order: what the trial would do and how the data emulate it. ``adjustment_set``: the
    pre-index confounders (cohort.parquet names)."""
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
            "after time zero decides eligibility), not already given Mg at or before it, and "
            f"not given obstetric MgSO4 or citrate-CRRT calcium by {s.grace_hours} h after it; "
            "emulated in sql/index_events.sql and sql/cohort_eligibility.sql"
        ),
        "treatment_strategies": (
            f"(1) start IV or oral Mg repletion within {s.grace_hours} h of time zero; (2) do "
            f"not start Mg within {s.grace_hours} h; usual care (including calcium, and Mg "
            "after the grace period) otherwise in both"
        ),
        "assignment": (
            "Not randomised: the strategy is the one the data show within the grace period "
            "(first given, not just ordered, dose); exchangeability assumed conditional on "
            f"the pre-index adjustment set ({', '.join(adjustment_set)})"
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
            "Observational analogue of an initiation (intention-to-treat-like) effect: Mg "
            f"started within {s.grace_hours} h vs not started within {s.grace_hours} h, "
            "whatever happens afterwards (Mg given later in strategy 2 is not censored; "
            "results.json post_grace_deviations counts it per arm); not a per-protocol effect. "
            "Average treatment effect (difference in mean outcome, strategy 1 − strategy 2, "
            "mmol/L) in the analysed cohort"
        ),
        "analysis_plan": (
            "Outcome regression (ANCOVA on baseline, fully interacted, g-computation), "
            "inverse-probability weighting with a logistic propensity model, and augmented "
            "IPW (doubly robust), all with patient-clustered standard errors; balance, overlap "
            "and effective sample size reported; secondary and sensitivity analyses as listed"
        ),
    }


# ---------------------------------------------------------------------------------------------
# the report's Methods list


def methods_items(
    config: MgcaConfig,
    threshold: int,
    *,
    model_rule: str,
    gate_rule: str,
    adjustment_set: Sequence[str],
    estimator_labels: Iterable[str],
    software: str,
) -> list[tuple[str, str]]:
    """The report's Methods items ``(label, text)`` from the config (thresholds with units),
    then software. ``threshold``: the small-cell threshold; ``model_rule``/``gate_rule``: the
    primary model rule and the diagnostics gate in words; ``estimator_labels``: the report's
    estimate labels in order; ``software``: the versions line."""
    s = config.study
    sample_size = config.report.trajectory_sample_size
    sample_seed = config.report.trajectory_sample_seed
    return [
        ("Hypomagnesaemia", f"serum Mg < {s.mg_low_mmol_l:.2f} mmol/L"),
        (
            "Hypocalcaemia",
            f"ionized Ca < {s.ca_ionized_low_mmol_l:.2f} mmol/L where an ionized Ca was drawn "
            f"in the {s.ionized_window_hours} h up to the calcium draw, else albumin-corrected "
            f"Ca < {s.ca_corrected_low_mmol_l:.2f} mmol/L, with corrected Ca = total Ca + "
            f"{s.albumin_correction_slope:g} × ({s.albumin_reference_g_l:g} − albumin g/L) "
            f"mmol/L, using the latest albumin drawn at or before the calcium and at most "
            f"{s.albumin_lookback_hours} h earlier (same-day: at most "
            f"{s.albumin_same_day_hours} h); a total Ca without such an albumin is never "
            "classified (uncorrected total Ca under-estimates calcium when albumin is low)",
        ),
        (
            "Index (time zero)",
            f"first time per hospital stay with both qualifying draws at most "
            f"{s.concurrent_window_hours} h apart; the later draw (no test drawn after it "
            f"decides eligibility); adults ≥ {s.min_age_years:g} years",
        ),
        (
            "Exposure",
            f"first given (not only ordered) IV or oral magnesium in (index, index + "
            f"{s.grace_hours} h]; unexposed: none in that window (usual care afterwards)",
        ),
        (
            "Outcome",
            f"albumin-corrected Ca nearest to index + {s.horizon_hours} h, within ± "
            f"{s.outcome_tolerance_hours} h",
        ),
        (
            "Baseline covariates",
            f"labs: last value in [index − {s.baseline_lookback_hours} h, index]; drugs (PPI, "
            f"loop diuretic): any given in [index − {s.drug_lookback_hours} h, index)",
        ),
        (
            "Calcium measures",
            f"ionized Ca < {s.ca_ionized_low_mmol_l:.2f} mmol/L is low and preferred when drawn "
            f"within {s.ionized_window_hours} h of a total Ca; PTH above "
            f"{s.pth_upper_ng_l:g} ng/L is appropriately raised, looked for within "
            f"{s.pth_window_hours} h of a hypocalcaemia episode",
        ),
        (
            "Units",
            "every accepted unit is converted to SI (Mg, Ca mmol/L; albumin g/L; creatinine "
            "µmol/L; PTH pmol/L) with the factors in sql/reference/unit_conversions.csv and "
            "rounded to laboratory reporting precision before any threshold; results with an "
            "unknown unit or outside plausibility bounds are quarantined and counted"
            + (
                "; a missing unit is inferred when the value is plausible in exactly one unit"
                if s.infer_missing_units
                else "; a missing unit is never guessed"
            ),
        ),
        ("Primary model", model_rule),
        ("Answer and diagnostics gate", gate_rule),
        ("Adjustment set", ", ".join(adjustment_set)),
        (
            "Estimators",
            "; ".join(f"{label}" for label in estimator_labels)
            + " (each listed with its estimand and method under Estimates)",
        ),
        (
            "Secondary outcome horizons",
            ", ".join(f"{h} h" for h in s.outcome_horizons_hours)
            + f" after index, each ± {s.outcome_tolerance_hours} h",
        ),
        (
            "Trajectory figures",
            f"{s.trajectory_bin_hours} h bins from {s.trajectory_before_hours} h before to "
            f"{s.trajectory_after_hours} h after index; the individual sample draws "
            f"{sample_size} episodes per group (seed {sample_seed})",
        ),
        (
            "Trajectory mixed model",
            "secondary linear mixed model of every corrected Ca after the grace period "
            "(random intercept per patient); "
            + (
                "fitted on every patient"
                if s.trajectory_model_max_patients == 0
                else f"when more than {s.trajectory_model_max_patients:,} patients have such "
                f"a result, fitted on a random sample of {s.trajectory_model_max_patients:,} "
                f"patients (seed {s.trajectory_model_seed}) with every result of each "
                "sampled patient kept; the secondary analyses' notes say which applied"
            ),
        ),
        (
            "Disclosure control",
            f"counts from 1 to {threshold - 1} are shown as <{threshold}; zero is shown as 0; "
            f"estimates are withheld when an exposure group has fewer than {threshold} episodes",
        ),
        ("Software", software),
        (
            "Reproduce",
            "install the mgca version and Git commit under Provenance, save this run's "
            "config.yaml and run: mgca run --config config.yaml --source <source> --path "
            "<data>; the input fingerprint checks the data are the same",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# missing outcomes: the IPCW primary, its complete-case twin and the composite sensitivity


def eligible_cohort_words(study: StudyConfig | None) -> str:
    """Who the IPCW primary describes: every eligible episode, outcome measured or not."""
    return (
        cohort_words(study).replace(
            "with a corrected Ca measured", "whether or not a corrected Ca was measured"
        )
        if study is not None
        else "eligible episodes of the analytic cohort, whether or not the outcome was measured"
    )


def ipcw_estimand(study: StudyConfig | None) -> str:
    """The primary estimand under inverse probability of censoring weighting."""
    return (
        "average treatment effect, in the population of all eligible episodes (outcome "
        "measured or not: those who died, went home or were not re-tested before the outcome "
        "window included, as if their calcium had been measured), of "
        f"{_contrast_words(study)}"
    )


def complete_case_estimand(study: StudyConfig | None) -> str:
    """The complete-case primary: the same contrast in the episodes with a measured outcome."""
    return (
        "average treatment effect in the episodes whose outcome was measured (complete "
        f"cases; no correction for who died, went home or was not re-tested), of "
        f"{_contrast_words(study)}"
    )


def ipcw_method(model_words: str, n_replicates: int, seed: int, truncation: float) -> str:
    """results.json ``method`` of the IPCW primary."""
    return (
        f"Outcome regression (g-computation) fitted by weighted least squares on the episodes "
        f"with a measured outcome: {model_words}; log baseline creatinine. Weights: stabilised "
        "inverse probability of the outcome being measured (logistic model of the arm and "
        "the pre-index adjustment set, linear terms; the arm alone under the small-sample "
        f"rule), truncated at the {truncation:g} and {1 - truncation:g} quantiles. ATE = mean "
        "over all eligible episodes of the predicted outcome with everyone exposed minus "
        f"everyone unexposed. SE from a patient-cluster bootstrap ({n_replicates} resamples, "
        f"seed {seed}; the outcome model refitted in each, the censoring weights held at "
        "their full-sample values); 95 % CI from t with (patients − 1) df."
    )


def composite_outcome_words(study: StudyConfig | None) -> str:
    """The composite outcome of the missing-outcome sensitivity analysis."""
    low = "the low threshold" if study is None else f"{study.ca_corrected_low_mmol_l:.2f} mmol/L"
    horizon = "the horizon" if study is None else f"{study.horizon_hours} h"
    return (
        f"corrected (albumin-corrected Ca ≥ {low} at the outcome, {horizon_words(study)}), or "
        f"discharged alive before {horizon} after index (death, no re-test and a measured Ca "
        "below the threshold count as not corrected)"
    )


def composite_estimand(study: StudyConfig | None) -> str:
    """The composite sensitivity analysis' estimand (a risk difference)."""
    return (
        "adjusted risk difference, over all eligible episodes, in the probability of being "
        f"{composite_outcome_words(study)}, for {_contrast_words(study).split(', on ')[0]}"
    )


def missing_outcome_methods(study: StudyConfig, estimation: EstimationConfig) -> str:
    """The Methods paragraph on missing outcomes."""
    q = estimation.ipcw_truncation_quantile
    return (
        "Missing outcomes. An eligible episode has no outcome when the patient died, was "
        f"discharged or was not re-tested within {horizon_words(study)}; which of these "
        "happens depends on calcium, illness and the arm, so the measured episodes are not a "
        "random part of the eligible ones. The primary estimate therefore weights each "
        "measured episode by the stabilised inverse of its probability of being measured, "
        "from a logistic model of the arm and the pre-index adjustment set (the arm alone "
        "when the rarer of measured and missing has fewer than "
        f"{estimation.min_episodes_per_parameter} episodes per parameter), truncated at the "
        f"{q:g} and {1 - q:g} quantiles, and averages the predicted contrast over all eligible "
        "episodes. This assumes the outcome is missing at random given the arm and the "
        "pre-index covariates; illness after index that drives discharge or death is not in "
        "the model. The complete-case estimate is reported beside it, and a composite "
        f"outcome ({composite_outcome_words(study)}) as a sensitivity analysis that needs no "
        "weights."
    )

"""Parameters of the synthetic lab world (one frozen dataclass) and its fixed constants.

Every number that shapes the simulated hospital lives in :class:`World`, with its unit in the
field name (``_mmol_l`` mmol/L, ``_g_l`` g/L, ``_umol_l`` µmol/L, ``_hours``, ``_days``,
``_per_day``). ``manifest.json`` stores them all, and :func:`mgca.synthetic.true_effect`
rebuilds the world from the manifest, never from these defaults, so a dataset and its truth
stay in step even if the defaults change later (the generator version guards the random-draw
layout itself).

Sources of the clinical numbers: ``/work/shared/clinical.md`` (units, conversions, dose
equivalents, analytic CVs, Mg–PTH–Ca physiology). The other numbers are modelling choices
tuned so that about one stay in six has a concurrent hypoMg + hypoCa panel (effect world; about
one in fourteen in the null world), clinicians replete about half of those at once, and the
true 48-h effect of repletion in that cohort is about +0.09 mmol/L corrected Ca (effect
world; +0.085 to +0.102 over seeds 0-4 at 4,000 stays).

Regimes (:data:`REGIMES`): ``default`` is the world above (switches off, so their own random
stream is never read and the tables for a seed are the pinned ones); ``ward``
(:func:`ward_world`) turns on sparse albumin, a strong and unbalanced usual-care Mg policy and
dropped bloods before discharge, imitating real ward extracts. Measured with the pipeline's SQL
(default config), 4,000 stays, seeds 0-2: 112-127 analysed episodes (effect world; 35-46 null)
instead of 382-392 (129-131), 80-88 % exposed within 6 h instead of 61-62 %, 66-67 % of total-Ca
draws with an albumin within 24 h instead of 85 %, true effect +0.088 to +0.104 mmol/L (null
exactly 0.0). Details and 2,000-stay figures: README, "The ward regime".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

GENERATOR_VERSION = "1.1.0"
"""Bump whenever the order or shape of random draws changes (a manifest from another version
cannot be replayed)."""

BATCH_SIZE = 4096
"""Stays simulated together. Random streams are seeded per batch, so this is part of the draw
layout and is recorded in the manifest."""

MAX_STAY_HOURS = 14 * 24
"""Longest stay (hours); the in-stay hourly grid is 0..MAX_STAY_HOURS inclusive."""

STAY_GRID_HOURS = MAX_STAY_HOURS + 1
"""Rows of every (hour, stay) array of in-stay draws (decisions, measurements)."""

WorldKind = Literal["effect", "null"]

MG_SULFATE_MMOL_PER_G = 4.06
"""Elemental Mg in 1 g MgSO4·7H2O (mmol); clinical.md."""
MG_OXIDE_TABLET_MMOL = 9.9
"""Elemental Mg in one 400 mg MgO tablet (mmol); clinical.md."""
CA_GLUCONATE_MMOL_PER_G = 2.23
"""Elemental Ca in 1 g calcium gluconate (mmol); clinical.md."""


@dataclass(frozen=True)
class UnitSpec:
    """How one analyte is reported by each of the two simulated lab systems.

    ``*_to_internal`` multiplies a reported value to the internal unit (mmol/L for Mg, Ca,
    phosphate, K, Na; g/L albumin; µmol/L creatinine; pg/mL PTH); ``*_decimals`` is the
    reporting precision of that lab system.
    """

    internal_unit: str
    us_unit: str
    us_to_internal: float
    us_decimals: int
    si_unit: str
    si_to_internal: float
    si_decimals: int


# Conversion factors from clinical.md ("Units and conversions").
UNITS: dict[str, UnitSpec] = {
    "magnesium": UnitSpec("mmol/L", "mg/dL", 0.4114, 1, "mmol/L", 1.0, 2),
    "calcium_total": UnitSpec("mmol/L", "mg/dL", 0.2495, 1, "mmol/L", 1.0, 2),
    "calcium_ionized": UnitSpec("mmol/L", "mmol/L", 1.0, 2, "mmol/L", 1.0, 2),
    "albumin": UnitSpec("g/L", "g/dL", 10.0, 1, "g/L", 1.0, 0),
    "pth": UnitSpec("pg/mL", "pg/mL", 1.0, 0, "pmol/L", 1.0 / 0.106, 1),
    "phosphate": UnitSpec("mmol/L", "mg/dL", 0.323, 1, "mmol/L", 1.0, 2),
    "potassium": UnitSpec("mmol/L", "mEq/L", 1.0, 1, "mmol/L", 1.0, 1),
    "creatinine": UnitSpec("umol/L", "mg/dL", 88.4, 1, "umol/L", 1.0, 0),
    "sodium": UnitSpec("mmol/L", "mEq/L", 1.0, 0, "mmol/L", 1.0, 0),
}

ANALYTES: tuple[str, ...] = tuple(UNITS)
"""Analytes the world measures, in the order rows are written within one draw."""

LOINC_SI: dict[str, str] = {
    "magnesium": "LOINC:2601-3",
    "calcium_total": "LOINC:2000-8",
    "calcium_ionized": "LOINC:1994-3",
    "albumin": "LOINC:1751-7",
    "pth": "LOINC:2731-8",
    "phosphate": "LOINC:14879-1",
    "potassium": "LOINC:2823-3",
    "creatinine": "LOINC:14682-9",
    "sodium": "LOINC:2951-2",
}
"""Source codes of the second (SI) lab system; the US-unit system uses
``mgca-synthetic:<analyte>``."""


@dataclass(frozen=True)
class World:
    """All parameters of one synthetic world.

    ``kind="effect"``: low Mg suppresses PTH and lowers the calcium set point (steep smoothed
    hinge below ``ca_hinge_mg_mmol_l``), so repletion raises corrected Ca over about a day.
    ``kind="null"``: the Ca dynamics never read Mg (the hinge term is not evaluated at all);
    illness still lowers both Mg and Ca and resolves, so Ca "corrects" after repletion anyway.

    Clinicians ("usual care") act only at result times on the recorded values of that draw
    (measured Mg, total Ca and creatinine, as reported and rounded) plus independent pre-drawn
    uniforms, never on latent states, so adjusting for the recorded index values removes all
    confounding by indication for the index decision.
    """

    kind: WorldKind = "effect"

    # --- population and stays -------------------------------------------------------------
    multi_stay_subject_fraction: float = 0.15  # subjects with 2-3 stays
    los_median_days: float = 5.0  # lognormal length of stay, clipped to [2, 14] d
    los_sigma_log: float = 0.5
    los_min_days: float = 2.0
    readmission_gap_min_days: float = 10.0  # gap between stays of one subject
    readmission_gap_mean_days: float = 90.0  # ... plus exponential(mean), capped at 300 d
    female_fraction: float = 0.47
    unknown_sex_fraction: float = 0.005
    paediatric_fraction: float = 0.015  # subjects aged 1-17 at first stay
    adult_age_mean_years: float = 63.0
    adult_age_sd_years: float = 17.0
    si_lab_fraction: float = 0.10  # encounters from the second lab system (SI units)
    first_year: int = 2150  # stays spread over first_year .. first_year + n_years - 1
    n_years: int = 3

    # --- illness severity S(t) = S0 exp(-t / tau), dimensionless 0..1 ----------------------
    ill_fraction: float = 0.55  # stays admitted acutely ill: S0 ~ U(ill_s0_low, 1)
    ill_s0_low: float = 0.3
    well_s0_high: float = 0.2  # others: S0 ~ U(0, well_s0_high)
    illness_tau_hours: tuple[float, float] = (48.0, 96.0)  # uniform range
    death_base_probability: float = 0.02
    death_per_severity: float = 0.12

    # --- exposures (stay level) ---------------------------------------------------------------
    ppi_fraction: float = 0.30
    loop_diuretic_fraction: float = 0.25
    ckd_fraction: float = 0.12  # subject level

    # --- magnesium (mmol/L) ---------------------------------------------------------------------
    mg_setpoint_mean_mmol_l: float = 0.88
    mg_setpoint_sd_mmol_l: float = 0.04
    mg_ckd_rise_mmol_l: float = 0.08
    mg_illness_drop_mmol_l: float = 0.10  # at S = 1
    mg_drift_ppi_mmol_l_per_day: float = 0.025
    mg_drift_loop_mmol_l_per_day: float = 0.035
    mg_drift_illness_mmol_l_per_day: float = 0.02  # times S0
    mg_drift_sd_log: float = 0.5  # stay-level lognormal multiplier of the drift rate
    mg_drift_cap_mmol_l: float = 0.45  # cap of chronic deficit + drift
    mg_chronic_probability: float = 0.25  # stays admitted already Mg-depleted ...
    mg_chronic_ppi_probability: float = 0.15  # ... more often with a PPI
    mg_chronic_loop_probability: float = 0.15  # ... or a loop diuretic
    mg_chronic_deficit_mean_mmol_l: float = 0.22  # exponential size of that deficit
    mg_ar_sd_mmol_l: float = 0.03  # short-term AR(1) fluctuation (regression to the mean)
    mg_ar_tau_hours: float = 8.0
    mg_gain_mmol_l_per_mmol: float = 0.022  # serum rise per mmol elemental Mg given (median)
    mg_gain_sd_log: float = 0.2
    mg_tau_hours: tuple[float, float] = (24.0, 36.0)  # decay of a repletion bolus, uniform
    # Part of each dose refills depleted body stores and leaves serum only slowly (as in the
    # Mg loading test, where deficient patients retain most of an IV load); the rest decays
    # with mg_tau_hours. Without it a dose's effect on Ca at 48 h would be mostly undone by
    # the control arm's later usual-care dose.
    mg_retained_fraction: float = 0.6
    mg_store_tau_hours: float = 240.0  # slow loss of the retained part
    mg_oral_bioavailability: float = 0.3
    mg_floor_mmol_l: float = 0.15

    # --- calcium (albumin-corrected, mmol/L) ----------------------------------------------------
    ca_setpoint_mean_mmol_l: float = 2.36
    ca_setpoint_sd_mmol_l: float = 0.07
    ca_illness_drop_mmol_l: float = 0.20  # at S = 1
    ca_loop_drop_mmol_l: float = 0.03
    ca_ckd_drop_mmol_l: float = 0.05
    ca_tau_hours: tuple[float, float] = (20.0, 32.0)  # first-order lag towards the set point
    ca_hinge_mg_mmol_l: float = 0.60  # effect world: PTH suppression below this Mg
    ca_hinge_slope: float = 2.5  # mmol/L Ca lost per mmol/L Mg below the hinge
    ca_hinge_smooth_mmol_l: float = 0.05  # hyperbolic smoothing width of the hinge
    ca_hinge_max_mmol_l: float = 0.70  # the depression saturates (smoothed cap) ...
    ca_hinge_cap_smooth_mmol_l: float = 0.10  # ... with this smoothing width
    ca_ar_sd_mmol_l: float = 0.025
    ca_ar_tau_hours: float = 12.0
    gluconate_rise_mmol_l_per_g: float = 0.12  # transient rise per g calcium gluconate
    gluconate_tau_hours: float = 3.5

    # --- other latent analytes --------------------------------------------------------------
    albumin_mean_g_l: float = 39.0
    albumin_sd_g_l: float = 4.5
    albumin_stay_sd_g_l: float = 2.0
    albumin_illness_drop_g_l: float = 9.0  # at S = 1
    creatinine_median_umol_l: float = 80.0
    creatinine_ckd_median_umol_l: float = 230.0
    creatinine_sd_log: float = 0.25
    creatinine_illness_rise: float = 0.6  # relative rise at S = 1 (acute kidney injury)
    pth_median_pg_ml: float = 40.0
    pth_sd_log: float = 0.3
    pth_ca_slope_per_mmol_l: float = 4.0  # log PTH rises this much per mmol/L Ca below 2.30
    pth_mg_suppression: float = 0.75  # effect world: fraction of PTH lost at very low Mg
    pth_mg_half_mmol_l: float = 0.50
    ionized_fraction_of_corrected: float = 0.5
    ionized_sd_mmol_l: float = 0.02

    # --- analytic variation (coefficient of variation; clinical.md) ---------------------------
    cv_magnesium: float = 0.025
    cv_calcium: float = 0.02
    cv_albumin: float = 0.03
    cv_creatinine: float = 0.04
    cv_potassium: float = 0.05
    cv_phosphate: float = 0.06
    cv_sodium: float = 0.01
    cv_pth: float = 0.20

    # --- lab ordering ----------------------------------------------------------------------
    morning_skip_after_admission_hours: int = 8  # no routine draw this close after admission
    recheck_after_dose_hours: tuple[int, int] = (6, 8)  # Mg re-check after each IV dose
    recheck_calcium_fraction: float = 0.5
    # Detection bias: after each given IV Mg dose, extra Mg + total Ca re-checks this many
    # hours after the administration (on top of the usual re-check). Deterministic given the
    # dose (no random draw), so () (off) leaves the default world's tables unchanged.
    detection_recheck_after_dose_hours: tuple[int, ...] = ()
    albumin_panel_fraction: float = 0.6
    ionized_draw_fraction: float = 0.17
    pth_stay_fraction: float = 0.15  # stays whose clinicians order PTH when Ca is low
    pth_order_total_ca_below_mmol_l: float = 2.05
    result_delay_hours: int = 1  # decision point = draw + this
    # Albumin schedule. "panel": albumin on a share (albumin_panel_fraction) of routine
    # panels. "admission_and_interval" (ward): albumin on the admission panel, then on the
    # first routine panel at least U(albumin_interval_hours) after the previous albumin, so
    # many calcium results have no albumin within a day (albumin_panel_fraction unused).
    albumin_schedule: Literal["panel", "admission_and_interval"] = "panel"
    albumin_interval_hours: tuple[float, float] = (48.0, 96.0)  # uniform range, interval only
    # Informative end of stay: routine (morning) draws in the last discharge_planning_hours
    # before the last in-stay hour are skipped with discharge_planning_skip_probability
    # (re-checks after a dose still happen). 0 hours or probability 0: off.
    discharge_planning_hours: int = 0
    discharge_planning_skip_probability: float = 0.0
    # ICU-like stays: this share of stays has full panels from admission every
    # U{icu_draw_interval_hours} hours (integer, inclusive) instead of morning panels, and an
    # ionized Ca on icu_ionized_fraction of its draws. 0: off.
    icu_fraction: float = 0.0
    icu_draw_interval_hours: tuple[int, int] = (4, 6)
    icu_ionized_fraction: float = 0.8
    # Severity confounding: severity_icu_fraction of stays are in an ICU from admission to
    # discharge (written to care_events), and severity_vasopressor_fraction of those get a
    # vasopressor (norepinephrine, charted every 12 h from admission). Each proxy adds
    # severity_mg_policy_coef to the usual-care logit of IV Mg and lowers the calcium target
    # by severity_ca_drift_mmol_l_per_day per day over the first 3 days (additive, so the effect
    # of Mg is the same with or without it): recorded severity confounds the comparison
    # unless it is adjusted for. 0: off (no ICU stay and no vasopressor is written).
    severity_icu_fraction: float = 0.0
    severity_vasopressor_fraction: float = 0.5
    severity_mg_policy_coef: float = 2.0
    severity_ca_drift_mmol_l_per_day: float = 0.10
    # Informative end of stay (mgca.synthetic.early_exit): at the first draw with recorded Mg
    # below early_exit_mg_below_mmol_l (and a total Ca), the stay ends U{early_exit_after_hours}
    # hours later with probability max * logistic(intercept + mg_coef (Mg - 0.55 mmol/L)
    # + ca_coef (total Ca - 2.00 mmol/L) + illness_coef S + treated_coef [IV Mg within
    # early_exit_treated_within_hours]), Mg and total Ca as recorded at that draw; the
    # patient died (not went home) with probability death_base + death_per_severity * S.
    # early_exit_probability_max 0: off (no draw is made, the tables stay the pinned ones).
    early_exit_probability_max: float = 0.0
    early_exit_mg_below_mmol_l: float = 0.70
    early_exit_intercept: float = 0.0
    early_exit_mg_coef: float = 0.0  # per mmol/L recorded Mg above 0.55
    early_exit_ca_coef: float = 0.0  # per mmol/L recorded total Ca above 2.00
    early_exit_illness_coef: float = 0.0  # per unit of illness severity S (0-1)
    early_exit_treated_coef: float = 0.0  # IV Mg given within the hours below
    early_exit_treated_within_hours: int = 6
    early_exit_after_hours: tuple[int, int] = (12, 30)  # uniform int, before 36 h
    early_exit_death_base: float = 0.0
    early_exit_death_per_severity: float = 0.0

    # --- usual care: IV MgSO4 with probability
    # floor + (ceiling - floor) * logistic(a + b1 (0.70 - Mg) + b2 (2.15 - Ca) - b3 [cr high])
    # The probability is squeezed into [floor, ceiling]: some low results are acted on late
    # or not at all (busy ward), some normal ones get a top-up; positivity at every Mg level.
    mg_policy_floor: float = 0.03
    mg_policy_ceiling: float = 0.85
    mg_policy_intercept: float = -1.5
    mg_policy_mg_coef: float = 12.0  # per mmol/L measured Mg below 0.70
    mg_policy_ca_coef: float = 3.0  # per mmol/L measured total Ca below 2.15
    mg_policy_creatinine_coef: float = 1.0
    mg_policy_creatinine_high_umol_l: float = 177.0  # 2.0 mg/dL
    # A normal re-check stops Mg: this many logit units are subtracted from the linear
    # predictor above when the measured Mg is at or above 0.70 mmol/L (the lower reference
    # limit), so a result that came back normal is rarely acted on; the floor keeps it
    # possible (positivity). It reads the recorded Mg only, so adjusting for the latest
    # re-check removes the confounding it makes. 0: off (the term is not evaluated).
    mg_policy_normal_stop: float = 0.0
    mg_high_dose_below_mmol_l: float = 0.5  # 4 g below this measured Mg, else 2 g
    mg_not_given_fraction: float = 0.05  # ordered but not given (no effect, given=false)
    mg_admin_delay_hours: tuple[int, int] = (0, 2)  # decision to administration, uniform int
    gluconate_below_total_ca_mmol_l: float = 1.90
    gluconate_probability: float = 0.7
    gluconate_one_gram_fraction: float = 0.6  # else 2 g
    # Oral MgO 400 mg: from day 2, at routine panels with a low-normal measured Mg (so never
    # on a hypomagnesaemic draw), decided by a uniform alone (no latent "team" trait, which
    # would be an unrecorded confounder).
    mgo_from_hour: int = 48
    mgo_mg_range_mmol_l: tuple[float, float] = (0.70, 0.80)  # measured Mg in [low, high)
    mgo_probability: float = 0.15
    mgo_delay_hours: int = 2
    # Potassium chloride (the negative-control exposure): at a routine panel whose recorded
    # K is below kcl_below_k_mmol_l, 40 mmol oral KCl with probability kcl_probability_low,
    # else (maintenance) with kcl_probability_other, kcl_delay_hours after the draw. Decided
    # on the recorded K and an independent uniform only; K never acts on Ca in this world.
    kcl_below_k_mmol_l: float = 3.5
    kcl_probability_low: float = 0.7
    kcl_probability_other: float = 0.10
    kcl_delay_hours: int = 2

    # --- unmeasured confounding (threat "unmeasured_confounding"; 0 = off) ----------------
    # A stay-level standard-normal illness factor U that no table records. Per SD of U:
    # the usual-care Mg policy's linear predictor rises by unmeasured_mg_policy_coef, and the
    # corrected-Ca set point, sodium and albumin rise by the amounts below, reached linearly
    # over the first unmeasured_ramp_hours of the stay (a recovery the chart does not show).
    unmeasured_mg_policy_coef: float = 0.0
    unmeasured_ca_rise_mmol_l: float = 0.0
    unmeasured_sodium_rise_mmol_l: float = 0.0
    unmeasured_albumin_rise_g_l: float = 0.0
    unmeasured_ramp_hours: float = 72.0

    # --- populations a clinician excludes (threat "excluded_populations"; fractions 0 = off;
    # mgca.synthetic.exclusions). Each has its own reason for Mg and Ca to move that is not Mg
    # repletion, and a record the pipeline's SQL excludes by (cohort_eligibility.sql steps 5-7).
    # Obstetric MgSO4 (pre-eclampsia seizure prophylaxis): this share of the stays of women
    # aged within obstetric_age_years gets a 4 g loading dose at obstetric_start_hour and
    # 2 g/h for obstetric_infusion_hours (to 24 h after delivery), charted as ingredient
    # 'magnesium_sulfate_obstetric' (MIMIC-IV inputevents 227524). Given whatever the serum Mg;
    # it replaces repletion (no usual-care IV Mg from admission to the end of the infusion).
    # While it runs latent Mg rises by obstetric_mg_rise_mmol_l and the corrected-Ca target
    # falls by obstetric_ca_drop_mmol_l, both first-order with obstetric_tau_hours (Cruikshank
    # 1979, 4 g + 1-2 g/h: Mg +150 % to 1.65-2.25 mmol/L, ionized Ca -16 %, about 0.37 mmol/L
    # of corrected Ca at this world's ionized fraction 0.5; hypermagnesaemia suppresses PTH
    # via the calcium-sensing receptor and raises calciuria). Pregnancy (haemodilution, a
    # higher GFR; lower still in pre-eclampsia) lowers their Mg and Ca set points by
    # obstetric_mg_setpoint_drop_mmol_l and obstetric_ca_setpoint_drop_mmol_l (modelling
    # choices, so that many of them meet the index criteria before the infusion).
    obstetric_fraction: float = 0.0
    obstetric_age_years: tuple[float, float] = (18.0, 45.0)
    obstetric_start_hour: int = 2  # admission panel result at 1 h, infusion started 1 h later
    obstetric_infusion_hours: int = 36
    obstetric_mg_rise_mmol_l: float = 1.2
    obstetric_ca_drop_mmol_l: float = 0.30
    obstetric_tau_hours: float = 3.0
    obstetric_mg_setpoint_drop_mmol_l: float = 0.12
    obstetric_ca_setpoint_drop_mmol_l: float = 0.12
    # CRRT with regional citrate anticoagulation: this share of stays is on CRRT from
    # admission to discharge with a systemic calcium infusion charted every
    # crrt_chart_every_hours as ingredient 'citrate_crrt' (MIMIC-IV inputevents 227525), never
    # as a calcium supplement. The infusion is titrated to a systemic ionized-Ca target, so
    # the corrected-Ca target moves towards crrt_ca_target_mmol_l (2.30 mmol/L = ionized 1.15
    # at the ionized fraction 0.5) with a weight rising linearly to crrt_ca_clamp over
    # crrt_titration_hours: the circuit, not Mg, sets calcium (the Mg hinge keeps only
    # 1 - weight of its effect). Mg lost in the effluent and chelated by citrate lowers the Mg
    # set point by crrt_mg_setpoint_drop_mmol_l, the acute illness the Ca set point by
    # crrt_ca_setpoint_drop_mmol_l, and the unit's protocol replaces Mg: the usual-care IV Mg
    # logit rises by crrt_mg_policy_coef (modelling choices).
    crrt_fraction: float = 0.0
    crrt_chart_every_hours: int = 4
    crrt_ca_target_mmol_l: float = 2.30
    crrt_ca_clamp: float = 0.8
    crrt_titration_hours: float = 24.0
    crrt_mg_setpoint_drop_mmol_l: float = 0.15
    crrt_ca_setpoint_drop_mmol_l: float = 0.15
    crrt_mg_policy_coef: float = 2.0
    # Intermittent haemodialysis: this share of the stays of CKD subjects is on haemodialysis,
    # a dialysis_session_hours session every dialysis_interval_hours from
    # dialysis_first_session_hour, each written to care_events as event 'dialysis' (MIMIC-IV
    # procedureevents). The dialysate sets Mg and Ca: a low-Mg bath (0.25-0.5 mmol/L) lowers
    # the Mg set point by dialysis_mg_setpoint_drop_mmol_l; each session resets the Ca target
    # (dialysate calcium), which then falls by dialysis_ca_fall_mmol_l_per_day until the next
    # session (phosphate retention, low calcitriol); CKD-mineral bone disease lowers the Ca
    # set point by dialysis_ca_setpoint_drop_mmol_l. IV Mg is withheld without renal
    # excretion (hypermagnesaemia risk): the usual-care logit falls by
    # dialysis_mg_policy_coef (modelling choices).
    dialysis_ckd_fraction: float = 0.0
    dialysis_first_session_hour: int = 3
    dialysis_interval_hours: int = 48
    dialysis_session_hours: int = 4
    dialysis_mg_setpoint_drop_mmol_l: float = 0.15
    dialysis_ca_setpoint_drop_mmol_l: float = 0.10
    dialysis_ca_fall_mmol_l_per_day: float = 0.10
    dialysis_mg_policy_coef: float = 3.0

    # --- defects (per lab row) ----------------------------------------------------------------
    duplicate_row_rate: float = 0.003  # exact duplicate lab rows
    null_value_rate: float = 0.002  # lab rows with value null

    def __post_init__(self) -> None:
        if self.kind not in ("effect", "null"):
            raise ValueError(f"world kind must be 'effect' or 'null', got {self.kind!r}")
        if self.albumin_schedule not in ("panel", "admission_and_interval"):
            raise ValueError(
                "albumin_schedule must be 'panel' or 'admission_and_interval', got "
                f"{self.albumin_schedule!r}"
            )
        lo, hi = self.albumin_interval_hours
        if not 0 < lo <= hi:
            raise ValueError(f"albumin_interval_hours must be 0 < low <= high, got {lo}, {hi}")
        if self.discharge_planning_hours < 0:
            raise ValueError(
                f"discharge_planning_hours must be >= 0, got {self.discharge_planning_hours}"
            )
        lo_i, hi_i = self.icu_draw_interval_hours
        if not 2 <= lo_i <= hi_i:
            raise ValueError(
                f"icu_draw_interval_hours must be 2 <= low <= high, got {lo_i}, {hi_i}"
            )
        for name in (
            "icu_fraction",
            "icu_ionized_fraction",
            "severity_icu_fraction",
            "severity_vasopressor_fraction",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo_x, hi_x = self.early_exit_after_hours
        if not 1 <= lo_x <= hi_x:
            raise ValueError(f"early_exit_after_hours must be 1 <= low <= high, got {lo_x}, {hi_x}")
        if not 0.0 <= self.early_exit_probability_max <= 1.0:
            raise ValueError(
                "early_exit_probability_max must be in [0, 1], got "
                f"{self.early_exit_probability_max}"
            )
        if self.mg_policy_normal_stop < 0:
            raise ValueError(
                f"mg_policy_normal_stop must be >= 0, got {self.mg_policy_normal_stop}"
            )
        if any(int(h) != h or h < 1 for h in self.detection_recheck_after_dose_hours):
            raise ValueError(
                "detection_recheck_after_dose_hours must be whole hours >= 1, got "
                f"{self.detection_recheck_after_dose_hours}"
            )
        if not 0.0 <= self.discharge_planning_skip_probability <= 1.0:
            raise ValueError(
                "discharge_planning_skip_probability must be in [0, 1], got "
                f"{self.discharge_planning_skip_probability}"
            )
        for name in (
            "obstetric_fraction",
            "crrt_fraction",
            "dialysis_ckd_fraction",
            "crrt_ca_clamp",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not (
            self.obstetric_start_hour >= 1
            and self.obstetric_infusion_hours >= 1
            and self.crrt_chart_every_hours >= 1
            and self.dialysis_first_session_hour >= 0
            and 1 <= self.dialysis_session_hours < self.dialysis_interval_hours
            and self.obstetric_tau_hours > 0
            and self.crrt_titration_hours > 0
        ):
            raise ValueError(
                "excluded populations: start, infusion, charting and session hours must be "
                "positive whole hours, a dialysis session shorter than its interval, and "
                "obstetric_tau_hours and crrt_titration_hours > 0"
            )

    @property
    def effect(self) -> bool:
        """True when Mg causally affects Ca (the effect world)."""
        return self.kind == "effect"

    def to_dict(self) -> dict[str, Any]:
        """All parameters as JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> World:
        """Rebuild a world from :meth:`to_dict` output (e.g. a manifest's ``parameters``)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown world parameters {unknown}; was the manifest edited?")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**clean)


def default_world(kind: WorldKind = "effect") -> World:
    """The default world: 4,000-stay-shaped hospital, albumin on 60 % of routine panels, about
    half of the index episodes given IV Mg at once, no discharge-planning effect."""
    return World(kind=kind)


def ward_world(kind: WorldKind = "effect") -> World:
    """A harsher world shaped like real ward extracts; every other parameter as the default.

    What each switch imitates:

    - ``albumin_schedule="admission_and_interval"``, ``albumin_interval_hours=(48, 96)``:
      albumin is ordered on admission and then only every two to four days, so about a
      third of calcium results have no albumin within 24 h and cannot be corrected;
    - ``mg_policy_*``: strong confounding by indication with unbalanced arms: clinicians
      replete about 80 % of concurrent low-Mg / low-Ca results within 6 h, almost always when
      Mg or Ca is clearly low, less often near the thresholds. The policy still reads only
      the recorded Mg, total Ca and creatinine plus an independent uniform, so adjusting for
      those recorded values removes the confounding (the truth stays identifiable);
    - ``discharge_planning_hours=36``, ``discharge_planning_skip_probability=0.6``: once
      discharge is planned, routine morning bloods are often dropped, so patients about to go
      home miss their 48-h outcome more often (informative end of stay).
    """
    return replace(
        World(kind=kind),
        albumin_schedule="admission_and_interval",
        albumin_interval_hours=(48.0, 96.0),
        mg_policy_floor=0.03,
        mg_policy_ceiling=0.88,
        mg_policy_intercept=0.5,
        mg_policy_mg_coef=25.0,
        mg_policy_ca_coef=8.0,
        discharge_planning_hours=36,
        discharge_planning_skip_probability=0.6,
    )


RegimeName = Literal["default", "ward"]

REGIMES: dict[str, Callable[[WorldKind], World]] = {
    "default": default_world,
    "ward": ward_world,
}
"""Named regimes: a function from the world kind (effect / null) to its parameters.
``default``: :class:`World`'s defaults, switches off (same tables for the same seed). ``ward``:
albumin on admission then every 2-4 days, strong and unbalanced confounding by indication (about
80 % of index episodes exposed), fewer routine draws in the last 36 h before discharge."""


def regime_world(regime: str, kind: WorldKind = "effect") -> World:
    """The parameters of named regime ``regime`` (a key of :data:`REGIMES`) for ``kind``."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
    return REGIMES[regime](kind)


def regime_name(world: World) -> str:
    """The name of the regime whose parameters ``world`` has exactly, else ``"custom"``."""
    for name, make in REGIMES.items():
        if make(world.kind) == world:
            return name
    return "custom"

"""One validated study configuration (pydantic), loaded from YAML and saved with every run.

Every threshold carries its unit in its name: ``_mmol_l`` (mmol/L), ``_g_l`` (g/L),
``_ng_l`` (ng/L = pg/mL), ``_hours``, ``_years``. The defaults live in
``default_config.yaml`` beside this module, with a comment naming the source of each
clinical threshold.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MIN_TRAJECTORY_MODEL_PATIENTS = 100
"""Smallest nonzero ``trajectory_model_max_patients``: a random-intercept model on fewer
patients estimates the between-patient variance, and so the slope's SE, too poorly."""


class StudyConfig(_Strict):
    """Clinical thresholds and target-trial windows (units in the field names).

    Grouped by what each decides, in the order a cohort is built: lab harmonisation, low
    values, the calcium measure, episodes, cohort entry, exclusions, exposure, outcomes,
    baseline covariates, secondary outcomes, trajectories. The clinical source of each
    default is in ``default_config.yaml``.

    ``outcome_horizons_hours`` is the only list: it is written to its own table
    (``study_outcome_horizons``), every other field to a column of ``study_config``.
    """

    # Lab harmonisation.
    # Whether a unit-less result may take the one unit its value is plausible in (never
    # guess silently: off unless the extract is known to omit a single obvious unit).
    infer_missing_units: bool = False

    # Low values: lower reference limits (mmol/L) below which a result is low, so that "low"
    # means the same as the laboratory's flag and CTCAE v5 grade 1 ("< LLN").
    # Serum magnesium (mmol/L): defines hypomagnesaemia, the trigger of the study.
    mg_low_mmol_l: float = Field(0.70, gt=0.1, lt=2.0)
    # Albumin-corrected total calcium (mmol/L): hypocalcaemia when no ionized Ca is at hand.
    ca_corrected_low_mmol_l: float = Field(2.15, gt=1.0, lt=3.0)
    # Ionized calcium (mmol/L): hypocalcaemia on the reference measure, valid at any albumin.
    ca_ionized_low_mmol_l: float = Field(1.12, gt=0.5, lt=2.0)
    # Serum potassium (mmol/L): hypokalaemia episodes (Mg deficiency also wastes K).
    k_low_mmol_l: float = Field(3.5, gt=1.0, lt=6.0)

    # Calcium measure: the albumin correction of total Ca and the ionized tier above it.
    # Payne reference albumin (g/L): corrected = total + slope x (reference - albumin).
    albumin_reference_g_l: float = Field(40.0, gt=10, lt=60)
    # Payne slope (mmol/L calcium per g/L albumin): calcium bound per gram of albumin.
    albumin_correction_slope: float = Field(0.02, ge=0, le=0.05)
    # Oldest albumin (hours before the calcium, never after) that may correct it: albumin
    # moves over days, and a shorter look-back leaves most calcium draws uncorrectable.
    albumin_lookback_hours: int = Field(72, ge=0, le=720)
    # Albumin at most this old (hours) counts as same-day, reported apart from look-back ones
    # so the analysis can be repeated on same-day corrections only.
    albumin_same_day_hours: int = Field(24, ge=0, le=720)
    # An ionized Ca drawn within this many hours of a calcium draw replaces the corrected
    # total (the same blood-gas and chemistry round: prefer the measure albumin cannot bias).
    ionized_window_hours: int = Field(1, ge=0, le=24)
    # Ionized-only cohort (the sensitivity analysis ionized_only_cohort sets it): true
    # makes only ionized Ca define hypocalcaemia at index and requires an ionized Ca at the
    # primary horizon for an episode to be analysed (the reference measure at both ends, no
    # albumin correction). The primary analysis keeps it false.
    index_on_ionized_calcium_only: bool = False

    # Low-value episodes (runs of low results within a stay).
    # A gap (hours) between results after which nothing is known about the time between, so
    # the episode ends at its last low value.
    episode_gap_hours: int = Field(72, ge=1, le=720)
    # Normal results spanning less than this (hours) are a blip, not a recovery: the two low
    # runs are one episode (0 = never merge).
    episode_merge_hours: int = Field(0, ge=0, le=720)

    # Cohort entry (time zero).
    # Low Mg and low Ca are concurrent when their qualifying draws are at most this far apart
    # (hours); time zero is the later draw, so both are known when the decision is taken.
    concurrent_window_hours: int = Field(6, ge=0, le=72)

    # Exclusions.
    # Youngest age (years) at the stay: the reference limits and the question are adult ones.
    min_age_years: float = Field(18, ge=0, le=120)
    # Baseline eGFR (mL/min/1.73 m2) below which a sensitivity analysis leaves an episode
    # out: corrected Ca agrees poorly with ionized Ca in advanced kidney disease.
    advanced_ckd_egfr_ml_min_1_73m2: float = Field(30.0, gt=0, le=120)

    # Exposure.
    # Grace period (hours after time zero) in which a given Mg dose makes an episode exposed:
    # the decision on the qualifying result, closed before the next routine draw.
    grace_hours: int = Field(6, ge=1, le=168)

    # Outcome windows (hours after time zero).
    # Primary outcome horizon (hours): calcium is read nearest to it.
    horizon_hours: int = Field(48, ge=1, le=720)
    # Half-width (hours) of the window around each horizon in which a draw counts, since
    # bloods are drawn on rounds, not at exact hours.
    outcome_tolerance_hours: int = Field(12, ge=0, le=168)
    # Every target-trial horizon (hours) of the long outcome table; horizon_hours stays the
    # primary one and is always included.
    outcome_horizons_hours: tuple[int, ...] = Field((24, 48, 72), min_length=1, max_length=20)

    # Baseline covariates (windows before time zero, hours).
    # Baseline labs (creatinine, K, phosphate): the last value this recent describes the
    # patient at the decision.
    baseline_lookback_hours: int = Field(24, ge=0, le=720)
    # Drugs that waste Mg or move Ca (PPI, diuretics, vitamin D analogues, nephrotoxins):
    # any dose in this window still acts at time zero.
    drug_lookback_hours: int = Field(168, ge=0, le=8760)
    # Calcium supplement before time zero (cohort contract); its own key so changing the lab
    # look-back leaves this exposure-history column as it is.
    calcium_lookback_hours: int = Field(24, ge=0, le=720)

    # Secondary outcomes: calcium correction and the parathyroid response.
    # Calcium "corrected": a corrected Ca at or above the low threshold within this many
    # hours after time zero (hours).
    correction_window_hours: int = Field(72, ge=1, le=720)
    # Fixed looks (hours): "corrected at the scheduled looks" reads one calcium per look,
    # every this many hours after time zero up to correction_window_hours, so more draws
    # give no more chances (detection bias).
    fixed_look_interval_hours: int = Field(24, ge=1, le=720)
    # The calcium nearest a look counts when drawn at most this many hours from it.
    fixed_look_tolerance_hours: int = Field(12, ge=0, le=360)
    # Effect modification by kidney function: eGFR (CKD-EPI 2021, mL/min/1.73 m2) below this
    # is chronic kidney disease (KDIGO G3a-G5), where Mg and Ca handling change.
    egfr_modifier_ml_min_1_73m2: float = Field(60.0, gt=0, le=200)
    # Intact PTH upper reference limit (ng/L = pg/mL): a PTH at or below it while calcium is
    # low is inappropriately normal (functional hypoparathyroidism, which Mg deficiency causes).
    pth_upper_ng_l: float = Field(65.0, gt=0, le=1000)
    # A PTH at most this many hours before a hypocalcaemia episode (or time zero, for the
    # baseline PTH) or after the episode still describes it: PTH is often sent a round later.
    pth_window_hours: int = Field(24, ge=0, le=168)
    # Follow-up PTH: the first one after the grace period and at most this many hours after
    # time zero (hours), so it reflects the exposure.
    pth_response_hours: int = Field(72, ge=1, le=720)

    # Trajectories: the corrected-Ca figure and the secondary mixed model.
    # Figure window before time zero (hours): shows the fall in calcium that led to entry.
    trajectory_before_hours: int = Field(48, ge=0, le=720)
    # Figure window after time zero (hours): past the last default outcome window (72 +/- 12
    # h), so the figure shows the outcomes and what follows them.
    trajectory_after_hours: int = Field(96, ge=1, le=720)
    # Bin width (hours) of the figure's mean and SD per exposure group (aggregates, no ids).
    trajectory_bin_hours: int = Field(12, ge=1, le=168)
    # Patients (not episodes or draws) entering the trajectory mixed model, whose cost grows
    # with the patients; 0 = every patient. Read by mgca.analysis only.
    trajectory_model_max_patients: int = Field(3000, ge=0, le=100_000_000)
    # Seed of that patient sample (numpy Generator over the sorted patient ids), so reruns
    # fit the same patients.
    trajectory_model_seed: int = Field(20261124, ge=0, le=2**31 - 1)
    # Pre-index placebo window (negative control): corrected Ca nearest to this many hours
    # BEFORE time zero (within +/- outcome_tolerance_hours, before time zero) is refitted as
    # if it were the outcome; Mg given after time zero cannot move it.
    placebo_hours_before_index: int = Field(24, ge=1, le=720)

    @field_validator("trajectory_model_max_patients")
    @classmethod
    def _useful_patient_cap(cls, value: int) -> int:
        if 0 < value < MIN_TRAJECTORY_MODEL_PATIENTS:
            raise ValueError(
                f"trajectory_model_max_patients {value} is too few to estimate a trajectory "
                f"(at least {MIN_TRAJECTORY_MODEL_PATIENTS} patients); raise it, or set 0 to "
                "fit every patient"
            )
        return value

    @model_validator(mode="after")
    def _fixed_looks_countable(self) -> StudyConfig:
        # sql/calcium_correction_fixed_looks.sql numbers the looks with a 1..10 counter
        if self.correction_window_hours > 10 * self.fixed_look_interval_hours:
            raise ValueError(
                f"correction_window_hours {self.correction_window_hours} holds more than 10 "
                f"looks every fixed_look_interval_hours {self.fixed_look_interval_hours}; "
                "raise the interval or shorten the window."
            )
        return self

    @model_validator(mode="after")
    def _windows_consistent(self) -> StudyConfig:
        if self.albumin_same_day_hours > self.albumin_lookback_hours:
            raise ValueError(
                f"albumin_same_day_hours {self.albumin_same_day_hours} exceeds "
                f"albumin_lookback_hours {self.albumin_lookback_hours}: a same-day albumin "
                "must be one the look-back can use. Lower albumin_same_day_hours or raise "
                "albumin_lookback_hours."
            )
        if self.horizon_hours - self.outcome_tolerance_hours <= self.grace_hours:
            raise ValueError(
                "the outcome window must start after the grace period ends "
                f"(horizon_hours {self.horizon_hours} - outcome_tolerance_hours "
                f"{self.outcome_tolerance_hours} <= grace_hours {self.grace_hours}); "
                "otherwise the outcome could be measured before exposure is decided. "
                "Lower grace_hours or the tolerance, or raise horizon_hours."
            )
        for horizon in self.outcome_horizons_hours:
            if not 1 <= horizon <= 720:
                raise ValueError(
                    f"outcome_horizons_hours: {horizon} is not between 1 and 720 hours"
                )
            if horizon - self.outcome_tolerance_hours <= self.grace_hours:
                raise ValueError(
                    "every outcome window must start after the grace period ends "
                    f"(outcome_horizons_hours entry {horizon} - outcome_tolerance_hours "
                    f"{self.outcome_tolerance_hours} <= grace_hours {self.grace_hours}); "
                    "otherwise that outcome could be measured before exposure is decided. "
                    "Drop or raise that horizon, or lower grace_hours or the tolerance."
                )
        if len(set(self.outcome_horizons_hours)) != len(self.outcome_horizons_hours):
            raise ValueError(
                f"outcome_horizons_hours {list(self.outcome_horizons_hours)} repeats a horizon; "
                "list each once"
            )
        return self


class SensitivityConfig(_Strict):
    """Alternative target-trial windows re-derived in SQL for the sensitivity analyses.

    Each entry changes one window of the primary analysis and keeps the rest: a grace period
    (hours) at the primary horizon, or an outcome horizon (hours) with the primary grace
    period. Empty lists skip that sensitivity analysis.
    """

    # Grace periods (hours), each refitted at the primary horizon: is the answer an artefact
    # of where the exposure decision is cut?
    grace_hours: tuple[int, ...] = Field((3, 12), max_length=10)
    # Outcome horizons (hours), each with the primary grace period: does the answer hold
    # earlier and later than the primary horizon?
    horizons_hours: tuple[int, ...] = Field((24, 72), max_length=10)


class EstimationConfig(_Strict):
    """Pre-specified rules of the effect estimation (fixed before any outcome is looked at).

    ``min_episodes_per_parameter``: the primary outcome model is the richest of three
    candidates whose parameters each have at least this many episodes behind them (Harrell,
    Regression Modeling Strategies, 2nd ed., section 4.4: about 15 observations per parameter
    for a model that predicts reliably outside the rows it was fitted on, which
    g-computation does when it predicts each episode under the other arm).
    ``bootstrap_replicates`` / ``bootstrap_seed``: the patient-cluster bootstrap of the
    g-computation and overlap-population estimates (resamples of whole patients; seeded, so
    a rerun gives the same interval).
    """

    # Episodes per model parameter (count) the primary outcome model must have behind it.
    min_episodes_per_parameter: int = Field(15, ge=2, le=100)
    # Bootstrap resamples (count): enough for a stable 95 % interval.
    bootstrap_replicates: int = Field(500, ge=50, le=10_000)
    # Bootstrap seed, so a rerun gives the same interval.
    bootstrap_seed: int = Field(20261124, ge=0)
    # Missing outcomes (inverse probability of censoring weights): the stabilised weights are
    # truncated at this quantile and 1 minus it of the measured episodes' weights (share 0-1;
    # 0.01 = the 1st and 99th percentiles), so a few episodes unlikely to be measured cannot
    # carry the estimate.
    ipcw_truncation_quantile: float = Field(0.01, ge=0, lt=0.5)


class PerProtocolConfig(_Strict):
    """The per-protocol secondary analysis by clone-censor-weighting (sql/per_protocol_followup.sql,
    :mod:`mgca.analysis.estimation.per_protocol`). Pre-specified like the primary.

    ``interval_hours``: width of the follow-up intervals from time zero to the outcome draw in
    which the probability of starting Mg is modelled (the grace period must be a whole number
    of them); ``weight_truncation_percentile``: the inverse-probability weights of each clone
    arm are truncated at this percentile (100 = none); ``bootstrap_replicates`` /
    ``bootstrap_seed``: the patient-cluster bootstrap of the 95 % interval (the initiation
    model is refitted in every resample).
    """

    # On/off (no block in results.json when off).
    enabled: bool = True
    # Interval width (hours). 2 h: an ICU re-check 4-6 h after index is seen by the decision
    # it can stop within the 6-h grace period; the risk set stays small enough to refit fast.
    interval_hours: int = Field(2, ge=1, le=24)
    # Percentile (50-100) at which each clone arm's weights are truncated; 100 = none.
    weight_truncation_percentile: float = Field(99.0, ge=50, le=100)
    # Bootstrap resamples (count) of whole patients for the 95 % percentile interval.
    bootstrap_replicates: int = Field(200, ge=20, le=10_000)
    # Bootstrap seed, so a rerun gives the same interval.
    bootstrap_seed: int = Field(20261205, ge=0)
class CalibrationConfig(_Strict):
    """Empirical calibration of the primary interval by the negative controls
    (``mgca.analysis.estimation.calibration``)."""

    # Fewest negative-control estimates (count) from which the systematic-error distribution
    # N(mu, sigma^2) is fitted; with fewer the calibration says "too few controls". Two
    # parameters need at least three points to leave any information on their spread.
    min_controls: int = Field(3, ge=2, le=100)


class GateConfig(_Strict):
    """Diagnostics that decide whether the report may state an answer (pre-specified bounds,
    after OHDSI HADES's study diagnostics). Units in the names; shares are fractions 0-1.
    """

    # Smallest exposure arm (episodes): fewer cannot carry a comparison.
    min_episodes_per_arm: int = Field(20, ge=2, le=10_000)
    # Largest |standardised mean difference| (no unit) of an adjusted covariate after
    # weighting: beyond it the arms still differ at baseline.
    max_abs_smd: float = Field(0.1, gt=0, le=1)
    # Smallest share (0-1) of episodes with a preference score in [0.3, 0.7]: without it the
    # treated and the untreated are different patients.
    min_equipoise: float = Field(0.2, ge=0, le=1)
    # Smallest Kish effective sample size (episodes) of the weights in each arm: a few heavy
    # weights must not carry the answer.
    min_ess_per_arm: float = Field(20.0, ge=1)
    # Largest believable effect (mmol/L): beyond it the model, not magnesium, is speaking.
    max_plausible_effect_mmol_l: float = Field(0.5, gt=0, le=5)
    # Largest 95 % CI half-width (mmol/L): a wider interval holds no answer.
    max_ci_half_width_mmol_l: float = Field(0.5, gt=0, le=5)


class PrivacyConfig(_Strict):
    """Statistical disclosure control for everything that leaves the run's private folder."""

    # Smallest count (people or episodes) shown as it is; 1 to threshold - 1 are shown as
    # "<threshold", so that no small group can be singled out.
    small_cell_threshold: int = Field(11, ge=1, le=1000)
    # none: counts at or above the threshold are shown exactly. nearest_5 (OpenSAFELY-style):
    # every shown count is also rounded to the nearest 5; small counts stay hidden.
    rounding: Literal["none", "nearest_5"] = "none"


class EngineConfig(_Strict):
    """Where the SQL derivation runs: embedded DuckDB (default) or an Apache Spark cluster.

    DuckDB settings apply to the run's database file in both cases (with Spark it holds the
    reference tables, the study config and the tables pulled back for modelling).
    """

    # duckdb on one machine; spark when the data live in a data lake or outgrow one machine.
    name: Literal["duckdb", "spark"] = "duckdb"
    # DuckDB memory limit (size with unit, e.g. 4GB): beyond it DuckDB spills to disk
    # instead of failing.
    duckdb_memory_limit: str = Field(
        "4GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
    )
    # DuckDB worker threads (count): the cores the run may take from a shared machine.
    duckdb_threads: int = Field(2, ge=1, le=256)
    # Where DuckDB spills beyond memory_limit; None: DuckDB's default (<database>.tmp).
    duckdb_temp_directory: str | None = Field(None, min_length=1, max_length=4096)
    # Spark master URL: local[N] (in-process, for tests and laptops), spark://host:7077,
    # yarn, k8s://https://host:443.
    spark_master: str = Field("local[2]", min_length=1, max_length=500)
    # How a --source canonical folder is stored where Spark reads it: "parquet" reads
    # <path>/<table>.parquet (a file or a folder of part files); "delta" reads the Delta
    # table <path>/<table>: natively when delta-spark is on the cluster, else as the current
    # snapshot's active Parquet files resolved by delta-rs (mgca.sources.delta_snapshot, which
    # refuses deletion vectors, column mapping and other reader features it cannot honour).
    # Synthetic and adapter output are always Parquet.
    spark_format: Literal["parquet", "delta"] = "parquet"


class SyntheticConfig(_Strict):
    """The synthetic dataset `mgca run` generates when given no --path."""

    # Hospital stays to simulate (count).
    stays: int = Field(4000, ge=10, le=10_000_000)
    # "effect": repletion corrects Ca; "null": Mg has no causal effect on Ca, so any
    # "effect" found there is a false positive.
    world: Literal["effect", "null"] = "effect"
    # Generator seed: the same settings and seed give the same tables.
    seed: int = Field(20261124, ge=0)
    # Named preset of the simulator (mgca.synthetic.world.REGIMES): "default" the baseline
    # world, "ward" sparse albumin, unbalanced confounded repletion, fewer late bloods.
    regime: Literal["default", "ward"] = "default"


_COLUMN = r"^[A-Za-z_][A-Za-z0-9_ .-]{0,62}$"  # a column name, safe to quote in SQL
_FILE = r"^[^\x00]{1,500}$"


class _LongFormatTable(_Strict):
    """One file of a plain long-format extract: where it is (relative to --path) and which of
    its columns holds each canonical field (null: the extract has no such column)."""

    file: str = Field(pattern=_FILE)


class LongFormatLabs(_LongFormatTable):
    """Lab results, one row per result. ``analyte`` values may be canonical analyte names
    (``magnesium``, ``calcium_total`` …) or LOINC codes listed in
    ``sql/reference/sources/lab_codes.csv``; ``unit`` is the unit as reported."""

    file: str = Field("lab_results.csv", pattern=_FILE)
    subject_id: str = Field("subject_id", pattern=_COLUMN)
    encounter_id: str | None = Field("encounter_id", pattern=_COLUMN)
    time: str = Field("time", pattern=_COLUMN)
    analyte: str = Field("analyte", pattern=_COLUMN)
    value: str = Field("value", pattern=_COLUMN)
    unit: str | None = Field("unit", pattern=_COLUMN)


class LongFormatMedications(_LongFormatTable):
    """Medication administrations. ``ingredient`` values must be names of
    ``sql/reference/ingredients.csv`` (any case); ``given`` holds true/false, 1/0, yes/no,
    given/not given or administered/not administered. With ``given: null`` every row is
    taken as a given dose (say so only for an administration record, never for orders)."""

    file: str = Field("medication_administrations.csv", pattern=_FILE)
    subject_id: str = Field("subject_id", pattern=_COLUMN)
    encounter_id: str | None = Field("encounter_id", pattern=_COLUMN)
    time: str = Field("time", pattern=_COLUMN)
    ingredient: str = Field("ingredient", pattern=_COLUMN)
    dose: str | None = Field("dose", pattern=_COLUMN)
    dose_unit: str | None = Field("dose_unit", pattern=_COLUMN)
    route: str | None = Field("route", pattern=_COLUMN)
    given: str | None = Field("given", pattern=_COLUMN)


class LongFormatPersons(_LongFormatTable):
    file: str = Field("persons.csv", pattern=_FILE)
    subject_id: str = Field("subject_id", pattern=_COLUMN)
    sex: str | None = Field("sex", pattern=_COLUMN)
    year_of_birth: str | None = Field("year_of_birth", pattern=_COLUMN)


class LongFormatEncounters(_LongFormatTable):
    file: str = Field("encounters.csv", pattern=_FILE)
    encounter_id: str = Field("encounter_id", pattern=_COLUMN)
    subject_id: str = Field("subject_id", pattern=_COLUMN)
    admit_time: str = Field("admit_time", pattern=_COLUMN)
    discharge_time: str = Field("discharge_time", pattern=_COLUMN)
    age_years: str | None = Field("age_years", pattern=_COLUMN)
    died_in_hospital: str | None = Field("died_in_hospital", pattern=_COLUMN)


class LongFormatConfig(_Strict):
    """``--source csv``: the files and columns of a plain long-format extract (CSV or Parquet,
    chosen by the file's extension). Times must be ISO 8601 (``2024-03-01 08:00:00``)."""

    # one character; never the CSV quote '"' (the reader's quote), a line break or NUL
    delimiter: str = Field(",", min_length=1, max_length=1, pattern=r'^[^"\r\n\x00]$')
    labs: LongFormatLabs = LongFormatLabs()
    medications: LongFormatMedications | None = LongFormatMedications()
    persons: LongFormatPersons | None = LongFormatPersons()
    encounters: LongFormatEncounters | None = LongFormatEncounters()


class ReportConfig(_Strict):
    """What the report shows. The two trajectory-sample keys reach SQL (``study_config``)."""

    # Heading of the report (text).
    title: str = Field("Does calcium correct once magnesium is repleted?", max_length=200)
    # Episodes drawn per exposure group for the figure of individual trajectories (0: none).
    trajectory_sample_size: int = Field(20, ge=0, le=200)
    # Seed of that draw (same seed, same episodes on every engine and re-run).
    trajectory_sample_seed: int = Field(20261124, ge=0, le=2**31 - 1)


class ScheduleConfig(_Strict):
    """When and on what `mgca serve` runs the study (a Prefect deployment with a cron schedule).

    ``cron`` is a five-field cron expression evaluated in ``timezone`` (IANA name);
    ``source`` and ``path`` are as for `mgca run`; each scheduled run writes a new
    ``run-<UTC time>-<id>`` folder under ``reports_root`` (relative paths are resolved
    against the folder `mgca serve` starts in).
    """

    deployment_name: str = Field("mgca-scheduled", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    source: str = Field("synthetic", pattern=r"^[a-z][a-z0-9_]*$")
    path: str | None = None
    reports_root: str = "reports"

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone name (for example UTC or Europe/London)"
            ) from exc
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from datetime import datetime

        import cronsim

        fields = value.split()
        if len(fields) != 5 or any(f.casefold() in ("r", "h") for f in fields):
            raise ValueError(
                f"{value!r} must have five fields: minute hour day-of-month month "
                "day-of-week (for example '0 2 * * *' = every day at 02:00)"
            )
        try:
            cronsim.CronSim(value, datetime(2026, 1, 1))
        except cronsim.CronSimError as exc:
            raise ValueError(
                f"{value!r} is not a valid cron expression ({exc}); for example "
                "'0 2 * * *' = every day at 02:00"
            ) from exc
        return value


class MgcaConfig(_Strict):
    """The whole configuration of one mgca run."""

    study: StudyConfig = StudyConfig()
    sensitivity: SensitivityConfig = SensitivityConfig()
    estimation: EstimationConfig = EstimationConfig()
    gate: GateConfig = GateConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    engine: EngineConfig = EngineConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    report: ReportConfig = ReportConfig()
    long_format: LongFormatConfig = LongFormatConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    per_protocol: PerProtocolConfig = PerProtocolConfig()

    @model_validator(mode="after")
    def _sensitivity_windows_consistent(self) -> MgcaConfig:
        study, tol = self.study, self.study.outcome_tolerance_hours
        for grace in self.sensitivity.grace_hours:
            if not 1 <= grace <= 168 or study.horizon_hours - tol <= grace:
                raise ValueError(
                    f"sensitivity.grace_hours entry {grace}: must be 1-168 h and end before "
                    f"the primary outcome window opens (horizon_hours {study.horizon_hours} - "
                    f"outcome_tolerance_hours {tol}); drop or lower it"
                )
        for horizon in self.sensitivity.horizons_hours:
            if not 1 <= horizon <= 720 or horizon - tol <= study.grace_hours:
                raise ValueError(
                    f"sensitivity.horizons_hours entry {horizon}: must be 1-720 h and its "
                    f"window (± {tol} h) must open after the grace period ({study.grace_hours}"
                    " h); drop or raise it"
                )
        return self

    @model_validator(mode="after")
    def _per_protocol_intervals_fit(self) -> MgcaConfig:
        width, study = self.per_protocol.interval_hours, self.study
        if study.grace_hours % width:
            raise ValueError(
                f"per_protocol.interval_hours {width} must divide study.grace_hours "
                f"{study.grace_hours}: the grace period must end on an interval boundary"
            )
        longest = max((*study.outcome_horizons_hours, study.horizon_hours))
        if (longest + study.outcome_tolerance_hours) / width > 1000:
            raise ValueError(
                f"per_protocol.interval_hours {width} makes more than 1000 intervals up to the "
                "latest outcome draw; raise it"
            )
        return self

    def sensitivity_configs(self) -> list[tuple[str, str, MgcaConfig]]:
        """(name, label, config) per alternative window, e.g. ``("grace_12h", "grace period
        12 h", config)``: the study config with one window changed and only the primary
        horizon kept in ``outcome_horizons_hours``. A value equal to the primary is skipped."""
        out: list[tuple[str, str, MgcaConfig]] = []
        for key, values, words in (
            ("grace_hours", self.sensitivity.grace_hours, "grace period {} h"),
            ("horizon_hours", self.sensitivity.horizons_hours, "outcome horizon {} h"),
        ):
            for value in values:
                if value == getattr(self.study, key):
                    continue
                changed = self.study.model_dump() | {key: value}
                changed["outcome_horizons_hours"] = (changed["horizon_hours"],)
                study = StudyConfig.model_validate(changed)
                name = f"{key.removesuffix('_hours')}_{value}h"
                out.append((name, words.format(value), self.model_copy(update={"study": study})))
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def sha256(self) -> str:
        """Hash of the fully resolved config (canonical JSON), for provenance."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, key and fix."""


def default_config_text() -> str:
    return resources.files("mgca").joinpath("default_config.yaml").read_text(encoding="utf-8")


def load_config(path: Path | None = None) -> MgcaConfig:
    """Load and validate a YAML config; ``None`` gives the shipped defaults.

    Keys missing from the file take the defaults; unknown keys are an error (a typo in a
    threshold name must never silently fall back to a default).
    """
    if path is None:
        raw = yaml.safe_load(default_config_text())
        source = "default_config.yaml"
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing YAML file")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        source = str(path)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file {source} must hold a mapping of sections, got {type(raw).__name__}"
        )
    try:
        return MgcaConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"config file {source} is invalid:"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        lines.append("Fix the keys above (units are in the key names) and run again.")
        raise ConfigError("\n".join(lines)) from exc

"""A plain pandas implementation of mgca's episode derivation, for the benchmark to beat.

This is the code an analyst would write in a notebook to get the analysed episodes out of the
canonical Parquet tables with pandas alone: read the files, harmonise units with a merge on
the conversion table, correct calcium for albumin with ``merge_asof`` (latest albumin at or
before the calcium within the look-back), classify each calcium reading (ionized Ca drawn in
the hour up to it, else corrected Ca), find the first concurrent hypoMg + hypoCa time per stay
with ``merge_asof`` (last Mg and last calcium reading at or before each candidate time), flag
Mg given in the grace
period, and take the corrected Ca nearest to the horizon within the tolerance. Thresholds come
from :func:`mgca.config.load_config` (``config.study``), reference tables from the same CSVs
the SQL joins (``sql/reference``), so the two implementations run under one config.

It follows the rules written in the headers of ``sql/*.sql`` (same
thresholds, windows, inclusive/exclusive ends and tie rules; SI values and corrected calcium
at the laboratory's reporting precision before any threshold); when a rule there changes,
change it here too (bench/run.py prints any disagreement in the analysed episodes). Known
differences, none of which the synthetic data
exercise (it has no unlinked rows and no two different values of one analyte at one time):

- duplicate lab rows: SQL ranks identical rows among *all* rows, quarantined ones included,
  and keeps a source-linked copy before one attached to a stay by time; here duplicates are
  dropped after the other quarantine filters, linked rows first. Same result unless two
  copies differ in whether they pass an earlier check, which identical rows cannot.
- SQL rounds with DuckDB's ``round(x, 6)``, pandas with ``Series.round(6)``; the two can differ
  in the 6th decimal only for a value lying exactly half-way, which then matters only if it
  sits exactly on a threshold.

Public API: :func:`derive_episodes` (returns one row per analysed episode) and
:data:`STEPS` (the step names, in the order ``on_step`` is called).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from mgca.config import StudyConfig

OnStep = Callable[[str], None]
"""Called with a step's name just before the step runs (the benchmark times each step)."""

STEPS: tuple[str, ...] = (
    "read_parquet",
    "harmonise_labs",
    "correct_calcium",
    "index_events",
    "exposure",
    "baseline_creatinine",
    "outcome",
    "analytic_episodes",
)

_ID_KEYS = ["subject_id", "encounter_id"]


def _hours(n: float) -> pd.Timedelta:
    return pd.Timedelta(hours=n)


def _reference_csv(stem: str) -> pd.DataFrame:
    """One of the ``sql/reference`` CSVs the SQL joins against."""
    with resources.as_file(resources.files("mgca.sql").joinpath("reference", f"{stem}.csv")) as p:
        return pd.read_csv(p)


def _round_reported(values: pd.Series, decimals: pd.Series | int) -> pd.Series:
    """SI values at the laboratory's reporting precision, half away from zero, as the SQL
    does: round to 6 decimals, scale by 10^decimals, round to 6 again, then to a whole."""
    scale = 10.0 ** np.asarray(decimals, dtype=float)
    scaled = (values.round(6) * scale).round(6)
    return np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) / scale


def _normalise_unit(units: pd.Series) -> pd.Series:
    """lower case, trimmed, no spaces, µ/μ written u (as lab_harmonised.sql does)."""
    return (
        units.str.strip()
        .str.lower()
        .str.replace(" ", "", regex=False)
        .str.replace("µ", "u", regex=False)
        .str.replace("μ", "u", regex=False)
    )


def read_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    """The canonical tables the episode derivation needs, as pandas frames."""
    data_dir = Path(data_dir)
    return {
        "encounters": pd.read_parquet(data_dir / "encounters.parquet"),
        "labs": pd.read_parquet(data_dir / "lab_results.parquet"),
        "meds": pd.read_parquet(data_dir / "medication_administrations.parquet"),
    }


def harmonise_labs(labs: pd.DataFrame, encounters: pd.DataFrame) -> pd.DataFrame:
    """The lab rows lab_harmonised.sql marks ``used``, with ``value_si``.

    Drops unknown analytes, missing values, unknown units, implausible values, rows linked to
    an encounter that is not the subject's, unlinked rows whose time falls in no stay or in
    more than one, and repeated copies of a result.
    """
    conversions = _reference_csv("unit_conversions")[["analyte", "unit", "factor_to_si"]]
    bounds = _reference_csv("analyte_bounds")[
        ["analyte", "plausible_low", "plausible_high", "reporting_decimals"]
    ]

    labs = labs[labs["value"].notna()].copy()
    labs["unit_normalised"] = _normalise_unit(labs["unit"])
    labs = labs.merge(
        conversions.rename(columns={"unit": "unit_normalised"}),
        on=["analyte", "unit_normalised"],
        how="inner",
    )
    labs = labs.merge(bounds, on="analyte", how="inner")
    # reporting precision before any threshold (Mg 1.7 mg/dL is 0.70 mmol/L, not 0.69938)
    labs["value_si"] = _round_reported(
        labs["value"] * labs["factor_to_si"], labs["reporting_decimals"]
    )
    labs = labs[labs["value_si"].between(labs["plausible_low"], labs["plausible_high"])]

    # Linked rows must name an encounter of the same subject.
    linked = labs[labs["encounter_id"].notna()].merge(
        encounters[_ID_KEYS], on=_ID_KEYS, how="inner"
    )
    # Unlinked rows are attached to the one stay of the subject whose [admit, discharge]
    # contains the draw time; none or several stays: not used.
    unlinked = labs[labs["encounter_id"].isna()].drop(columns="encounter_id")
    if len(unlinked):
        unlinked = unlinked.merge(
            encounters[[*_ID_KEYS, "admit_time", "discharge_time"]], on="subject_id"
        )
        unlinked = unlinked[
            (unlinked["time"] >= unlinked["admit_time"])
            & (unlinked["time"] <= unlinked["discharge_time"])
        ]
        n_stays = unlinked.groupby(["subject_id", "time"])["encounter_id"].transform("nunique")
        unlinked = unlinked[n_stays == 1].drop(columns=["admit_time", "discharge_time"])
    else:
        unlinked = linked.iloc[0:0]
    used = pd.concat([linked, unlinked], ignore_index=True)  # linked copies first
    used = used.drop_duplicates(
        subset=["subject_id", "encounter_id", "time", "analyte", "value", "unit_normalised"],
        keep="first",
    )
    return used[["subject_id", "encounter_id", "time", "analyte", "value_si"]]


def correct_calcium(used: pd.DataFrame, study: StudyConfig) -> pd.DataFrame:
    """Every used total Ca with its albumin-corrected value (calcium_corrected.sql).

    Albumin: same stay, the latest drawn at or before the calcium (same time included) and
    at most ``albumin_lookback_hours`` earlier; of several albumins at one time the lower
    value.
    """
    calcium = used.loc[used["analyte"] == "calcium_total", [*_ID_KEYS, "time", "value_si"]]
    calcium = calcium.rename(columns={"value_si": "ca_total_mmol_l"}).sort_values("time")
    albumin = (
        used.loc[used["analyte"] == "albumin", ["encounter_id", "time", "value_si"]]
        .groupby(["encounter_id", "time"])["value_si"]
        .min()
        .reset_index()
        .rename(columns={"value_si": "albumin_g_l"})
        .sort_values("time")
    )
    corrected = pd.merge_asof(
        calcium,
        albumin,
        on="time",
        by="encounter_id",
        direction="backward",
        tolerance=_hours(study.albumin_lookback_hours),
    )
    decimals = (
        _reference_csv("analyte_bounds")
        .set_index("analyte")
        .loc["calcium_total", "reporting_decimals"]
    )
    corrected["ca_corrected_mmol_l"] = _round_reported(
        corrected["ca_total_mmol_l"]
        + study.albumin_correction_slope * (study.albumin_reference_g_l - corrected["albumin_g_l"]),
        int(decimals),
    )
    return corrected


def calcium_readings(
    used: pd.DataFrame, corrected: pd.DataFrame, study: StudyConfig
) -> pd.DataFrame:
    """One calcium reading per stay and draw time of an ionized Ca or a corrected total Ca
    (index_events.sql hierarchy): the latest ionized Ca in [t − ``ionized_window_hours``, t]
    (ties at one time: the lower value), else the lowest corrected Ca drawn at t."""
    ionized = (
        used.loc[used["analyte"] == "calcium_ionized", [*_ID_KEYS, "time", "value_si"]]
        .groupby([*_ID_KEYS, "time"])["value_si"]
        .min()
        .reset_index()
        .rename(columns={"value_si": "ca_ionized_mmol_l"})
    )
    ca = (
        corrected[corrected["ca_corrected_mmol_l"].notna()]
        .sort_values(["encounter_id", "time", "ca_corrected_mmol_l"])
        .drop_duplicates(["encounter_id", "time"], keep="first")
    )
    times = (
        pd.concat([ionized[[*_ID_KEYS, "time"]], ca[[*_ID_KEYS, "time"]]])
        .drop_duplicates()
        .sort_values("time")
    )
    readings = pd.merge_asof(
        times,
        ionized.drop(columns="subject_id")
        .rename(columns={"time": "ionized_time"})
        .sort_values("ionized_time"),
        left_on="time",
        right_on="ionized_time",
        by="encounter_id",
        direction="backward",
        tolerance=_hours(study.ionized_window_hours),
    ).merge(
        ca[["encounter_id", "time", "ca_corrected_mmol_l"]], on=["encounter_id", "time"], how="left"
    )
    is_ionized = readings["ionized_time"].notna()
    readings["ca_draw_time"] = readings["ionized_time"].where(is_ionized, readings["time"])
    readings["is_low"] = np.where(
        is_ionized,
        readings["ca_ionized_mmol_l"] < study.ca_ionized_low_mmol_l,
        readings["ca_corrected_mmol_l"] < study.ca_corrected_low_mmol_l,
    )
    readings["ca_corrected_mmol_l"] = readings["ca_corrected_mmol_l"].where(~is_ionized)
    return readings


def index_events(used: pd.DataFrame, corrected: pd.DataFrame, study: StudyConfig) -> pd.DataFrame:
    """First concurrent hypoMg + hypoCa per stay (index_events.sql).

    Candidate times are the draw times of low Mg results and low calcium readings
    (:func:`calcium_readings`). At each, the last Mg (ties at one time: the lower value) and
    the last calcium reading at or before it must both be low and drawn at most
    ``concurrent_window_hours`` apart; the first such time is the index.
    """
    mg = (
        used.loc[used["analyte"] == "magnesium", [*_ID_KEYS, "time", "value_si"]]
        .groupby([*_ID_KEYS, "time"])["value_si"]
        .min()
        .reset_index()
        .rename(columns={"value_si": "mg_mmol_l"})
    )
    readings = calcium_readings(used, corrected, study)
    candidates = (
        pd.concat(
            [
                mg.loc[mg["mg_mmol_l"] < study.mg_low_mmol_l, [*_ID_KEYS, "time"]],
                readings.loc[readings["is_low"], [*_ID_KEYS, "time"]],
            ]
        )
        .drop_duplicates()
        .sort_values("time")
    )
    last_mg = mg.rename(columns={"time": "mg_draw_time"}).drop(columns="subject_id")
    last_ca = readings[["encounter_id", "time", "ca_draw_time", "is_low", "ca_corrected_mmol_l"]]
    last_ca = last_ca.rename(columns={"time": "reading_time"})
    pairs = pd.merge_asof(
        candidates,
        last_mg.sort_values("mg_draw_time"),
        left_on="time",
        right_on="mg_draw_time",
        by="encounter_id",
        direction="backward",
    )
    pairs = pd.merge_asof(
        pairs,
        last_ca.sort_values("reading_time"),
        left_on="time",
        right_on="reading_time",
        by="encounter_id",
        direction="backward",
    )
    qualifying = pairs[
        (pairs["mg_mmol_l"] < study.mg_low_mmol_l)
        & pairs["is_low"].fillna(False).astype(bool)
        & (
            (pairs["mg_draw_time"] - pairs["ca_draw_time"]).abs()
            <= _hours(study.concurrent_window_hours)
        )
    ]
    first = qualifying.sort_values("time").drop_duplicates("encounter_id", keep="first")
    return first.rename(columns={"time": "index_time"}).reset_index(drop=True)


def exposure(
    events: pd.DataFrame, meds: pd.DataFrame, encounters: pd.DataFrame, study: StudyConfig
) -> pd.DataFrame:
    """Prior Mg (at or before index), Mg in (index, index + grace], and obstetric MgSO4 or
    citrate-CRRT calcium at or before index + grace (index_exposure.sql).

    A stay's doses are given administrations of an ``mg_repletion`` (or
    ``obstetric_magnesium``, ``crrt_citrate``) ingredient linked to the stay, or unlinked and
    given between its admit and discharge times.
    """
    ingredients = _reference_csv("ingredients")[["ingredient", "role"]]
    meds = meds[meds["given"]].copy()
    meds["ingredient"] = meds["ingredient"].str.strip().str.lower()
    doses = meds.merge(ingredients, on="ingredient", how="inner")
    doses = doses.loc[
        doses["role"].isin(["mg_repletion", "obstetric_magnesium", "crrt_citrate"]),
        [*_ID_KEYS, "time", "role"],
    ]

    keys = events[[*_ID_KEYS, "index_time"]]
    linked = keys.merge(doses[doses["encounter_id"].notna()], on=_ID_KEYS, how="inner")
    unlinked = doses[doses["encounter_id"].isna()].drop(columns="encounter_id")
    if len(unlinked):
        stays = keys.merge(encounters[[*_ID_KEYS, "admit_time", "discharge_time"]], on=_ID_KEYS)
        unlinked = stays.merge(unlinked, on="subject_id", how="inner")
        unlinked = unlinked[
            (unlinked["time"] >= unlinked["admit_time"])
            & (unlinked["time"] <= unlinked["discharge_time"])
        ]
        linked = pd.concat([linked, unlinked[linked.columns]], ignore_index=True)
    hours = (linked["time"] - linked["index_time"]).dt.total_seconds() / 3600
    mg = linked["role"] == "mg_repletion"
    linked = linked.assign(
        prior=mg & (linked["time"] <= linked["index_time"]),
        in_grace=mg & (hours > 0) & (hours <= study.grace_hours),
        excluding_drug=~mg & (hours <= study.grace_hours),
        hours_from_index=hours,
    )
    per_stay = linked.groupby("encounter_id").agg(
        prior_mg_repletion=("prior", "any"),
        exposed=("in_grace", "any"),
        excluding_drug=("excluding_drug", "any"),
    )
    first = linked[linked["in_grace"]].groupby("encounter_id")["hours_from_index"].min()
    out = keys.merge(per_stay, on="encounter_id", how="left")
    for column in ("prior_mg_repletion", "exposed", "excluding_drug"):
        out[column] = out[column].fillna(False).astype(bool)
    out["hours_to_first_mg"] = out["encounter_id"].map(first)
    return out[
        ["encounter_id", "prior_mg_repletion", "exposed", "hours_to_first_mg", "excluding_drug"]
    ]


def baseline_creatinine(
    events: pd.DataFrame, used: pd.DataFrame, study: StudyConfig
) -> pd.DataFrame:
    """Last creatinine of the subject (any stay) in [index − lookback, index]
    (index_covariates.sql; ties at one time: the lower value)."""
    creatinine = (
        used.loc[used["analyte"] == "creatinine", ["subject_id", "time", "value_si"]]
        .groupby(["subject_id", "time"])["value_si"]
        .min()
        .reset_index()
        .rename(columns={"time": "creatinine_time", "value_si": "baseline_creatinine_umol_l"})
        .sort_values("creatinine_time")
    )
    found = pd.merge_asof(
        events[[*_ID_KEYS, "index_time"]].sort_values("index_time"),
        creatinine,
        left_on="index_time",
        right_on="creatinine_time",
        by="subject_id",
        direction="backward",
        tolerance=_hours(study.baseline_lookback_hours),
    )
    return found[["encounter_id", "baseline_creatinine_umol_l"]]


def outcome(events: pd.DataFrame, corrected: pd.DataFrame, study: StudyConfig) -> pd.DataFrame:
    """Corrected Ca of the stay nearest to index + horizon within ± tolerance (both ends
    included; tie in distance: the earlier draw, then the lower value) (index_outcome.sql)."""
    ca = (
        corrected.loc[
            corrected["ca_corrected_mmol_l"].notna(),
            ["encounter_id", "time", "ca_corrected_mmol_l"],
        ]
        .groupby(["encounter_id", "time"])["ca_corrected_mmol_l"]
        .min()
        .reset_index()
        .rename(
            columns={"time": "outcome_time", "ca_corrected_mmol_l": "outcome_ca_corrected_mmol_l"}
        )
        .sort_values("outcome_time")
    )
    targets = events[["encounter_id", "index_time"]].assign(
        target_time=events["index_time"] + _hours(study.horizon_hours)
    )
    found = pd.merge_asof(
        targets.sort_values("target_time"),
        ca,
        left_on="target_time",
        right_on="outcome_time",
        by="encounter_id",
        direction="nearest",
        tolerance=_hours(study.outcome_tolerance_hours),
    )
    found["outcome_hours_from_index"] = (
        found["outcome_time"] - found["index_time"]
    ).dt.total_seconds() / 3600
    return found[["encounter_id", "outcome_ca_corrected_mmol_l", "outcome_hours_from_index"]]


def analytic_episodes(
    events: pd.DataFrame,
    encounters: pd.DataFrame,
    exposed: pd.DataFrame,
    creatinine: pd.DataFrame,
    outcomes: pd.DataFrame,
    study: StudyConfig,
) -> pd.DataFrame:
    """Index events that pass every eligibility step of cohort_eligibility.sql: adult (known
    age ≥ ``min_age_years``), no obstetric MgSO4 or citrate-CRRT calcium by the end of the grace
    period, no Mg at or before index, baseline creatinine, outcome measured."""
    cohort = (
        events.merge(encounters[["encounter_id", "age_years"]], on="encounter_id", how="left")
        .merge(exposed, on="encounter_id", how="left")
        .merge(creatinine, on="encounter_id", how="left")
        .merge(outcomes, on="encounter_id", how="left")
    )
    keep = (
        (cohort["age_years"] >= study.min_age_years)
        & ~cohort["excluding_drug"]
        & ~cohort["prior_mg_repletion"]
        & cohort["baseline_creatinine_umol_l"].notna()
        & cohort["outcome_ca_corrected_mmol_l"].notna()
    )
    return (
        cohort[keep]
        .sort_values(["subject_id", "encounter_id", "index_time"])
        .reset_index(drop=True)
    )


def derive_episodes(
    data_dir: Path, study: StudyConfig, on_step: OnStep | None = None
) -> pd.DataFrame:
    """Read the canonical tables of ``data_dir`` and return one row per analysed episode
    (``subject_id``, ``encounter_id``, ``index_time``, ``exposed``, baseline and outcome
    values), following the rules of ``sql/``. ``on_step`` is called with each name of
    :data:`STEPS` before that step runs."""
    step = on_step or (lambda _name: None)
    step("read_parquet")
    tables = read_tables(data_dir)
    encounters = tables["encounters"]
    step("harmonise_labs")
    used = harmonise_labs(tables.pop("labs"), encounters)
    step("correct_calcium")
    corrected = correct_calcium(used, study)
    step("index_events")
    events = index_events(used, corrected, study)
    step("exposure")
    exposed = exposure(events, tables.pop("meds"), encounters, study)
    step("baseline_creatinine")
    creatinine = baseline_creatinine(events, used, study)
    step("outcome")
    outcomes = outcome(events, corrected, study)
    step("analytic_episodes")
    return analytic_episodes(events, encounters, exposed, creatinine, outcomes, study)

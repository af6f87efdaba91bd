"""Properties that hold for any input, checked on generated stories (hypothesis).

The generated stories mix two patients, overlapping and separate stays, labs with and
without a stay, every status a row can get (unknown units, impossible values, NaN, repeated
rows, unknown analytes), values on either side of the thresholds and ties in time.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import timedelta
from typing import Any

from helpers.stories import DAY_ZERO, Story, build
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgca.engine.derive import derive

D1 = DAY_ZERO + timedelta(days=1)
ENCOUNTERS = [
    # p1: two separate stays; p2: two overlapping stays; p3 has no stay at all
    {"encounter_id": "e1", "subject_id": "p1", "start": 0, "end": 96, "age_years": 70.0},
    {"encounter_id": "e2", "subject_id": "p1", "start": 120, "end": 220, "age_years": 70.0},
    {"encounter_id": "e3", "subject_id": "p2", "start": 0, "end": 150, "age_years": 45.0},
    {"encounter_id": "e4", "subject_id": "p2", "start": 100, "end": 220, "age_years": None},
]
STAYS_OF = {
    "p1": ["e1", "e2"],
    "p2": ["e3", "e4"],
    "p3": [],
}
# Repeated entries weight the draw towards usable rows, so that episodes, index events and
# analysed stays are common; the odd rows (unknown unit, NaN, impossible values) still come.
UNITS = {
    "magnesium": ["mmol/L"] * 4 + ["mg/dL", "mEq/L", "xx", None],
    "calcium_total": ["mmol/L"] * 4 + ["mg/dL", None],
    "calcium_ionized": ["mmol/L"] * 3 + ["mg/dL"],
    "albumin": ["g/L"] * 3 + ["g/dL", None],
    "creatinine": ["umol/L", "umol/L", "mg/dL", None],
    "potassium": ["mmol/L", "mEq/L"],
    "pth": ["pg/mL", "pmol/L"],
    "urine_magnesium": ["mmol/L"],
}
ODD_VALUES = [1e6, -1.0, math.nan, None]
VALUES = {
    # values on and beside each threshold at reporting precision (1.7 mg/dL is 0.70 mmol/L,
    # 0.695 mmol/L rounds to 0.70, 3.45 mmol/L K to 3.5)
    "magnesium": [0.3, 0.55, 0.69, 0.695, 0.7, 0.71, 0.9, 1.2, 1.7, *ODD_VALUES],
    "calcium_total": [1.8, 2.0, 2.05, 2.15, 2.3, 8.6, *ODD_VALUES],
    "calcium_ionized": [0.79, 1.0, 1.11, 1.12, 1.2, 4.5],
    "albumin": [3.5, 25, 35, 40],
    "creatinine": [1.1, 90],
    "potassium": [2.4, 3.0, 3.45, 3.5, 4.0],
    "pth": [3.0, 6.9, 65, 120],
    "urine_magnesium": [0.5],
}
ANALYTES = ["magnesium"] * 3 + ["calcium_total"] * 3 + ["albumin"] * 3 + [
    "calcium_ionized", "calcium_ionized", "potassium", "potassium", "pth", "creatinine",
    "urine_magnesium",
]  # fmt: skip
INGREDIENTS = [
    "magnesium_sulfate", "magnesium_oxide", "calcium_gluconate", "calcium_carbonate",
    "hydrochlorothiazide", "gentamicin", "calcitriol", "x",
]  # fmt: skip
STATUSES = {
    "used", "unknown_analyte", "missing_value", "unknown_unit", "implausible_value",
    "unknown_encounter", "no_encounter", "ambiguous_encounter", "duplicate",
}  # fmt: skip
INPUTS = {
    "persons", "encounters", "lab_results", "medication_administrations", "study_config",
    "study_outcome_horizons", "unit_conversions", "analyte_bounds", "ingredients",
    "ctcae_grades",
}  # fmt: skip
EPISODE_TABLES = {
    "hypomagnesaemia_episodes": "magnesium",
    "hypocalcaemia_episodes": "calcium",
    "hypokalaemia_episodes": "potassium",
}
HOUR = timedelta(hours=1)


@st.composite
def hours(draw: st.DrawFn) -> timedelta:
    """Whole hours after d1 00:00, mostly in the first days (ties and windows are common)."""
    return draw(st.one_of(st.integers(0, 60), st.integers(-12, 240))) * HOUR


@st.composite
def lab_rows(draw: st.DrawFn) -> dict[str, Any]:
    subject = draw(st.sampled_from(["p1", "p1", "p2", "p3"]))
    analyte = draw(st.sampled_from(ANALYTES))
    stays = STAYS_OF[subject]
    return {
        "subject_id": subject,
        "encounter_id": draw(st.sampled_from([*stays, *stays, *stays, None, "e_ghost"])),
        "time": D1 + draw(hours()),
        "analyte": analyte,
        "value": draw(st.sampled_from(VALUES[analyte])),
        "unit": draw(st.sampled_from(UNITS[analyte])),
    }


@st.composite
def med_rows(draw: st.DrawFn) -> dict[str, Any]:
    subject = draw(st.sampled_from(sorted(STAYS_OF)))
    return {
        "subject_id": subject,
        "encounter_id": draw(st.sampled_from([*STAYS_OF[subject], None])),
        "time": D1 + draw(hours()),
        "ingredient": draw(st.sampled_from(INGREDIENTS)),
        "dose": draw(st.sampled_from([2.0, 400.0, None])),
        "dose_unit": draw(st.sampled_from(["g", "mg", "mEq", None])),
        "route": draw(st.sampled_from(["iv", "oral", "other", None])),
        "given": draw(st.booleans()),
    }


@st.composite
def episode_rows(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A near-textbook episode in one stay: Mg and Ca (with albumin) drawn hours apart, a
    creatinine before, a follow-up Ca around 48 h and perhaps a Mg dose; values on either side
    of the thresholds, times on either side of every window."""
    stay = draw(st.sampled_from(ENCOUNTERS))
    base = D1 + draw(st.integers(stay["start"], stay["end"])) * HOUR
    subject, encounter = stay["subject_id"], stay["encounter_id"]

    def lab(offset_hours: int, analyte: str, value: float, unit: str) -> dict[str, Any]:
        return {"subject_id": subject, "encounter_id": encounter,
                "time": base + offset_hours * HOUR, "analyte": analyte, "value": value,
                "unit": unit}  # fmt: skip

    follow_up = draw(st.integers(30, 66))
    labs = [
        lab(draw(st.integers(-26, 0)), "creatinine", 90, "umol/L"),
        lab(
            draw(st.integers(-2, 2)), "calcium_ionized", draw(st.sampled_from([1.0, 1.2])), "mmol/L"
        ),
        lab(draw(st.integers(-30, 30)), "pth", draw(st.sampled_from([30, 65, 120])), "pg/mL"),
        lab(follow_up + draw(st.integers(-30, 30)), "calcium_ionized", 1.15, "mmol/L"),
        lab(
            draw(st.integers(-8, 8)),
            "magnesium",
            draw(st.sampled_from(VALUES["magnesium"][:6])),
            "mmol/L",
        ),
        lab(0, "calcium_total", draw(st.sampled_from([1.8, 2.0, 2.05, 2.15, 2.3])), "mmol/L"),
        lab(draw(st.integers(-30, 30)), "albumin", draw(st.sampled_from([25, 35, 40])), "g/L"),
        lab(follow_up, "calcium_total", 2.3, "mmol/L"),
        lab(follow_up, "albumin", 40, "g/L"),
    ]
    labs = [row for row in labs if draw(st.integers(0, 9)) > 0]  # now and then a row is lost
    meds = [
        {"subject_id": subject, "encounter_id": encounter,
         "time": base + draw(st.integers(-2, 10)) * HOUR, "ingredient": "magnesium_sulfate",
         "dose": 2.0, "dose_unit": "g", "given": draw(st.booleans())}
        for _ in range(draw(st.integers(0, 1)))
    ]  # fmt: skip
    return labs, meds


@st.composite
def stories(draw: st.DrawFn) -> tuple[Story, list[dict[str, Any]]]:
    labs = draw(st.lists(lab_rows(), max_size=30))
    meds = draw(st.lists(med_rows(), max_size=6))
    for episode_labs, episode_meds in draw(st.lists(episode_rows(), min_size=1, max_size=4)):
        labs += episode_labs
        meds += episode_meds
    labs += draw(st.lists(st.sampled_from(labs), max_size=8)) if labs else []  # sent twice
    labs = draw(st.permutations(labs))
    encounters = [
        {
            "encounter_id": e["encounter_id"],
            "subject_id": e["subject_id"],
            "admit_time": D1 + e["start"] * HOUR,
            "discharge_time": D1 + e["end"] * HOUR,
            "age_years": e["age_years"],
        }
        for e in ENCOUNTERS
    ]
    study = {
        "infer_missing_units": draw(st.booleans()),
        "episode_gap_hours": draw(st.sampled_from([72, 12])),
        "episode_merge_hours": draw(st.sampled_from([0, 0, 24])),
        "ionized_window_hours": draw(st.sampled_from([1, 0, 3])),
    }
    return build(encounters=encounters, labs=labs, meds=meds, **study), labs


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _key(value: Any) -> Any:
    return "nan" if isinstance(value, float) and math.isnan(value) else value


@SETTINGS
@given(stories())
def test_every_lab_row_lands_in_exactly_one_status(case: tuple[Story, list[dict]]) -> None:
    story, labs = case
    harmonised = story.rows("lab_harmonised")
    assert len(harmonised) == len(labs)
    columns = ("subject_id", "time", "analyte", "unit", "value")
    assert Counter(tuple(_key(r[c]) for c in columns) for r in harmonised) == Counter(
        tuple(_key(r[c]) for c in columns) for r in labs
    )
    assert len({r["lab_row_id"] for r in harmonised}) == len(harmonised)
    assert {r["status"] for r in harmonised} <= STATUSES
    infer = story.value("SELECT infer_missing_units FROM study_config")
    decimals = dict(
        story.con.execute("SELECT analyte, reporting_decimals FROM analyte_bounds").fetchall()
    )
    for row in harmonised:
        if row["status"] == "used":
            assert row["value_si"] is not None and row["unit_si"] is not None, row
            assert row["encounter_id"] is not None, row
            # value_si is the unrounded SI value at the analyte's reporting precision
            step = 10.0 ** -decimals[row["analyte"]]
            assert abs(row["value_si"] - row["value_si_unrounded"]) <= step / 2 + 1e-9, row
            assert round(row["value_si"] / step, 6) == round(row["value_si"] / step), row
        if row["unit_inferred"]:
            # only a missing unit is ever inferred, only when switched on, and never to
            # unknown_unit
            assert infer and row["unit"] in (None, ""), row
            assert row["inferred_unit"] is not None and row["status"] != "unknown_unit", row
    by_status = story.value(
        "SELECT coalesce(sum(n_flagged), 0) FROM data_quality WHERE check_name LIKE 'status:%'"
    )
    assert by_status == len(labs)


@SETTINGS
@given(stories())
def test_episodes_never_overlap_and_index_events_are_concurrent(
    case: tuple[Story, list[dict]],
) -> None:
    story, _ = case
    config = story.con.execute("SELECT * FROM study_config").fetchdf().iloc[0]
    thresholds = {
        "magnesium": config["mg_low_mmol_l"],
        "potassium": config["k_low_mmol_l"],
        "corrected": config["ca_corrected_low_mmol_l"],
        "total_uncorrected": config["ca_corrected_low_mmol_l"],
        "ionized": config["ca_ionized_low_mmol_l"],
    }
    for table, series in EPISODE_TABLES.items():
        episodes = story.rows(table)
        assert len(episodes) == story.value(
            f"SELECT count(*) FROM low_value_episodes WHERE series = '{series}'"
        )
        previous: dict[tuple[str, str], Any] = {}
        for episode in sorted(
            episodes, key=lambda r: (r["subject_id"], r["encounter_id"], r["episode_start"])
        ):
            assert episode["episode_start"] <= episode["nadir_time"] <= episode["episode_end"]
            threshold = thresholds[episode.get("calcium_measure") or series]
            assert episode["nadir_value_mmol_l"] < threshold, episode
            assert episode["n_results"] >= 1 and episode["n_low_runs"] >= 1
            assert episode["ctcae_grade"] in {1, 2, 3, 4}, episode
            key = (episode["subject_id"], episode["encounter_id"])
            before = previous.get(key)
            if before is not None:
                assert episode["episode_start"] > before["episode_end"], (before, episode)
            previous[key] = episode
    # one PTH status per hypocalcaemia episode; one calcium status per calcium draw time
    assert story.value("SELECT count(*) FROM hypocalcaemia_pth_status") == story.value(
        "SELECT count(*) FROM hypocalcaemia_episodes"
    )
    assert story.value("SELECT count(*) FROM calcium_status") == story.value(
        "SELECT count(*) FROM (SELECT DISTINCT subject_id, encounter_id, time FROM lab_harmonised"
        " WHERE status = 'used' AND analyte IN ('calcium_total', 'calcium_ionized'))"
    )

    index_events = story.rows("index_events")
    assert len({r["encounter_id"] for r in index_events}) == len(index_events)
    for event in index_events:
        # no test drawn after time zero decides eligibility: time zero is the later of the
        # two qualifying draws, and the albumin behind a corrected Ca is never later
        assert event["index_time"] == max(event["mg_draw_time"], event["ca_draw_time"])
        if event["albumin_time"] is not None:
            assert event["albumin_time"] <= event["index_time"], event
        assert event["mg_mmol_l"] < config["mg_low_mmol_l"]
        if event["index_calcium_measure"] == "ionized":
            assert event["baseline_ca_ionized_mmol_l"] < config["ca_ionized_low_mmol_l"]
        else:
            assert event["index_calcium_measure"] in {
                "corrected_same_day_albumin",
                "corrected_lookback_albumin",
            }, event
            assert event["baseline_ca_ionized_mmol_l"] is None, event
            assert event["albumin_time"] <= event["ca_draw_time"], event
            assert event["ca_corrected_mmol_l"] < config["ca_corrected_low_mmol_l"]
        gap = abs(event["mg_draw_time"] - event["ca_draw_time"])
        assert gap <= timedelta(hours=int(config["concurrent_window_hours"]))

    attrition = story.rows("attrition")
    assert attrition[0]["n_remaining"] == len(ENCOUNTERS)
    # the eligibility chain (steps with an exclusion count), then the exposed/unexposed split
    chain = [r for r in attrition if r["step_order"] == 1 or r["n_excluded"] is not None]
    split = attrition[len(chain) :]
    assert len(chain) == 10 and len(split) == 2
    for before, step in itertools.pairwise(chain):
        assert step["n_remaining"] == before["n_remaining"] - step["n_excluded"]
    cohort = story.rows("analytic_cohort")
    assert len(cohort) == chain[-1]["n_remaining"]
    assert split[0]["n_remaining"] + split[1]["n_remaining"] == len(cohort)
    # every outcome lies in its horizon's window, after the grace period; the primary
    # corrected one is the cohort's outcome
    cohort_ids = {r["encounter_id"] for r in cohort}
    for outcome in story.rows("cohort_outcomes"):
        assert outcome["encounter_id"] in cohort_ids
        offset = abs(outcome["hours_from_index"] - outcome["horizon_hours"])
        assert offset <= config["outcome_tolerance_hours"]
        assert outcome["hours_from_index"] > config["grace_hours"]
    primary = {
        r["encounter_id"]: r["value_mmol_l"]
        for r in story.rows(
            "cohort_outcomes",
            where=f"calcium_measure = 'corrected' AND horizon_hours = {config['horizon_hours']}",
        )
    }
    assert primary == {r["encounter_id"]: r["outcome_ca_corrected_mmol_l"] for r in cohort}


def _snapshot(story: Story) -> dict[str, list[str]]:
    tables = [
        name
        for (name,) in story.con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name"
        ).fetchall()
        if name not in INPUTS
    ]
    return {name: sorted(repr(tuple(r.values())) for r in story.rows(name)) for name in tables}


@SETTINGS
@given(stories())
def test_deriving_twice_gives_identical_tables(case: tuple[Story, list[dict]]) -> None:
    # Byte-identical reruns: deriving again on the same database, and deriving from the
    # same rows delivered in the opposite order, give the same tables (as multisets of
    # rows, every value compared by its repr, so even the last bit of a float counts).
    story, labs = case
    first = _snapshot(story)
    derive(story.con)
    assert _snapshot(story) == first
    config = story.con.execute("SELECT * FROM study_config").fetchdf().iloc[0]
    study = {
        key: config[key].item()
        for key in ("infer_missing_units", "episode_gap_hours", "episode_merge_hours",
                    "ionized_window_hours")
    }  # fmt: skip
    encounters = story.rows("encounters")
    meds = story.rows("medication_administrations")
    reordered = build(encounters=encounters[::-1], labs=labs[::-1], meds=meds[::-1], **study)
    assert _snapshot(reordered) == first

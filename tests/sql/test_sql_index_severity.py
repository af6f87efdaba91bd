"""Patient stories for sql/index_severity.sql: ICU stay and vasopressor at index (severity
proxies, null when the source does not record them) and dialysis by the end of the grace
period (an eligibility exclusion, attrition step 7).

Every story has one stay e1 (d1 00:00 to d9 00:00) whose index is d1 10:00 (Mg 0.55 mmol/L
at 08:00, corrected Ca 2.10 mmol/L at 10:00) with an outcome at d3 10:00, so it is analysed
unless a rule under test removes it."""

from __future__ import annotations

import pytest
from helpers.stories import QUALIFYING_LABS, build, calcium_at

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""
LABS = QUALIFYING_LABS + calcium_at(("d3 10:00", 2.30))
CARE_HEADER = """
subject_id | encounter_id | start_time | end_time | event
"""
MEDS_HEADER = """
subject_id | encounter_id | time     | ingredient        | dose | dose_unit | route | given
"""
SEVERITY = ["icu_at_index", "vasopressor_at_index", "dialysis_by_grace"]


def test_a_source_without_icu_stays_or_vasopressors_leaves_both_proxies_null() -> None:
    # No care_events file and no vasopressor anywhere: "not recorded by this source", not
    # "not in an ICU"; nobody is excluded for dialysis.
    story = build(encounters=STAY, labs=LABS)
    assert story.rows("index_severity", SEVERITY) == [
        {"icu_at_index": None, "vasopressor_at_index": None, "dialysis_by_grace": False}
    ]
    assert story.excluded_at("e1") is None
    assert story.rows("analytic_cohort", ["icu_at_index", "vasopressor_at_index"]) == [
        {"icu_at_index": None, "vasopressor_at_index": None}
    ]


@pytest.mark.parametrize(
    ("start", "end", "icu"),
    [
        ("d1 02:00", "d2 02:00", True),  # in the ICU at index
        ("d1 10:00", "d2 02:00", True),  # admitted to the ICU at the index draw itself
        ("d1 02:00", "d1 10:00", True),  # left the ICU at the index draw: still there
        ("d1 02:00", "-", True),  # still in the ICU when the extract was made
        ("d1 02:00", "d1 09:59", False),  # left a minute before index
        ("d1 10:01", "d2 02:00", False),  # admitted a minute after index: post-index
    ],
)
def test_icu_at_index_is_an_icu_stay_running_at_the_index_time(
    start: str, end: str, icu: bool
) -> None:
    story = build(
        encounters=STAY,
        labs=LABS,
        care=CARE_HEADER + f"p1 | e1 | {start} | {end} | icu_stay",
    )
    assert story.value("SELECT icu_at_index FROM index_severity") is icu
    assert story.excluded_at("e1") is None


def test_an_icu_stay_of_another_patient_makes_the_proxy_recorded_and_false() -> None:
    # The source records ICU stays (someone was in one), this patient was not in one.
    story = build(
        encounters=STAY,
        labs=LABS,
        care=CARE_HEADER + "p9 | e9 | d1 02:00 | d2 02:00 | icu_stay",
    )
    assert story.value("SELECT icu_at_index FROM analytic_cohort") is False


@pytest.mark.parametrize(
    ("ingredient", "time", "given", "vasopressor"),
    [
        ("norepinephrine", "d1 06:00", "true", True),
        ("vasopressin", "d0 10:00", "true", True),  # exactly 24 h before index
        ("dopamine", "d1 10:00", "true", True),  # at the index draw
        ("phenylephrine", "d0 09:59", "true", False),  # 24 h 1 min before: outside
        ("epinephrine", "d1 10:01", "true", False),  # after index: post-index
        ("norepinephrine", "d1 06:00", "false", None),  # charted, never given: not recorded
    ],
)
def test_vasopressor_at_index_is_a_given_dose_in_the_day_up_to_index(
    ingredient: str, time: str, given: str, vasopressor: bool | None
) -> None:
    story = build(
        encounters=STAY,
        labs=LABS,
        meds=MEDS_HEADER + f"p1 | e1 | {time} | {ingredient} | 0.1 | mg | iv | {given}",
    )
    assert story.value("SELECT vasopressor_at_index FROM index_severity") is vasopressor
    # a vasopressor is neither Mg nor Ca: the stay stays in, unexposed
    assert story.rows("analytic_cohort", ["exposed"]) == [{"exposed": False}]


@pytest.mark.parametrize(
    ("start", "encounter", "excluded"),
    [
        ("d1 03:00", "e1", True),  # dialysed before index
        ("d1 16:00", "e1", True),  # at the last minute of the grace period (6 h)
        ("d1 12:00", "-", True),  # unlinked, but inside the stay
        ("d1 16:01", "e1", False),  # a minute after the grace period: usual care after
        ("d12 12:00", "-", False),  # unlinked and after discharge: another stay's
    ],
)
def test_dialysis_by_the_end_of_grace_excludes_the_stay_at_step_7(
    start: str, encounter: str, excluded: bool
) -> None:
    story = build(
        encounters=STAY,
        labs=LABS,
        care=CARE_HEADER + f"p1 | {encounter} | {start} | - | dialysis",
    )
    assert story.excluded_at("e1") == (7 if excluded else None)
    attrition = story.attrition()
    assert attrition[7] == (0 if excluded else 1, 1 if excluded else 0)
    reason = story.value("SELECT exclusion_reason FROM attrition WHERE step_order = 7")
    assert "dialysis" in reason


def test_care_events_with_an_unknown_event_are_refused() -> None:
    from mgca.engine.database import CanonicalSchemaError

    with pytest.raises(CanonicalSchemaError, match="event"):
        build(encounters=STAY, labs=LABS, care=CARE_HEADER + "p1 | e1 | d1 03:00 | - | ecmo")

"""Magnesium citrate is a bowel-preparation laxative, not Mg repletion: ingredients.csv lists it
with role mg_laxative so it is recognised (never an orphan) and never counted as exposure.
Patient stories on the stay of test_sql_index_exposure.py (qualifying calcium at d1 10:00,
grace period 6 h)."""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect
from test_sql_index_exposure import EXPOSURE, MEDS_HEADER, QUALIFYING_LABS, STAY


def test_magnesium_citrate_in_the_grace_period_is_not_exposure() -> None:
    # 300 mL oral magnesium citrate (bowel prep) given 2 h after the qualifying calcium
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 12:00 | magnesium_citrate | 300  | mL        | oral  | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort", EXPOSURE),
        expect("""
        encounter_id | exposed | hours_to_first_mg | mg_dose_grace_mmol
        e1           | false   | -                 | 0
        """),
    )
    assert story.rows("mg_repletion") == []
    assert story.rows("medication_harmonised", ["ingredient", "role"]) == [
        {"ingredient": "magnesium_citrate", "role": "mg_laxative"}
    ]


def test_magnesium_citrate_beside_magnesium_sulfate_adds_nothing_to_the_dose() -> None:
    # 2 g MgSO4 IV at 12:00 (8.12 mmol) and magnesium citrate at 13:00: the dose is the sulfate's
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv    | true
        p1         | e1           | d1 13:00 | magnesium_citrate | 300  | mL        | oral  | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort", EXPOSURE),
        expect("""
        encounter_id | exposed | hours_to_first_mg | mg_dose_grace_mmol
        e1           | true    | 2.0               | 8.12
        """),
    )

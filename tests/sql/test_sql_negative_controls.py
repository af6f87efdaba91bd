"""negative_control_outcomes and negative_control_exposure: the values the negative controls
put in place of the primary outcome or exposure.

One qualifying stay, as in test_sql_index_exposure.py: Mg 0.55 mmol/L at d1 08:00, total Ca
1.90 with albumin 30 g/L at d1 10:00 (corrected 2.10), so time zero is d1 10:00; the primary
horizon is d3 10:00 (48 h) with a 12-h tolerance, the placebo target d0 10:00 (24 h before).
"""

from __future__ import annotations

import pytest
from helpers.stories import build

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d0 00:00   | d9 00:00       | 70
"""

QUALIFYING_LABS = """
subject_id | encounter_id | time     | analyte       | value | unit
p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
p1         | e1           | d1 10:00 | albumin       | 30    | g/L
p1         | e1           | d3 10:00 | calcium_total | 2.20  | mmol/L
"""

NC = [
    "outcome_sodium_mmol_l",
    "outcome_albumin_g_l",
    "placebo_ca_corrected_mmol_l",
    "placebo_hours_from_index",
]


def test_sodium_and_albumin_are_read_nearest_the_primary_horizon() -> None:
    # Sodium at d3 06:00 (4 h early) and d3 12:00 (2 h late): the later one is nearer.
    # Albumin at d3 10:00 exactly, and one at d4 00:00 (14 h late, outside the window).
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1 | e1 | d3 06:00 | sodium  | 138 | mmol/L
        p1 | e1 | d3 12:00 | sodium  | 141 | mmol/L
        p1 | e1 | d3 10:00 | albumin | 33  | g/L
        p1 | e1 | d4 00:00 | albumin | 20  | g/L
        """,
    )
    (row,) = story.rows("negative_control_outcomes", NC[:2])
    assert row == {"outcome_sodium_mmol_l": 141.0, "outcome_albumin_g_l": 33.0}


def test_nothing_in_the_window_leaves_the_value_null() -> None:
    # Sodium only at d4 12:00, 26 h after the horizon; no placebo calcium at all.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + "p1 | e1 | d4 12:00 | sodium | 140 | mmol/L\n",
    )
    (row,) = story.rows("negative_control_outcomes", NC)
    assert row == dict.fromkeys(NC)


@pytest.mark.parametrize(
    ("placebo_hours", "expected"),
    # Ca (total 2.30, albumin 40: corrected 2.30) at d0 10:00 = index - 24 h, and a normal
    # 2.40 one hour after index. Target 24 h before: the -24 h draw. Target 1 h before
    # (window -13..+11 h): the -24 h draw is out of reach, and the index draw (0 h) and the
    # +1 h draw are not strictly before index: null.
    [(24, (2.30, -24.0)), (1, (None, None))],
)
def test_the_placebo_calcium_is_drawn_before_index(
    placebo_hours: int, expected: tuple[float | None, float | None]
) -> None:
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1 | e1 | d0 10:00 | calcium_total | 2.30 | mmol/L
        p1 | e1 | d0 10:00 | albumin       | 40   | g/L
        p1 | e1 | d1 11:00 | calcium_total | 2.40 | mmol/L
        """,
        placebo_hours_before_index=placebo_hours,
    )
    (row,) = story.rows("negative_control_outcomes", NC[2:])
    assert (row["placebo_ca_corrected_mmol_l"], row["placebo_hours_from_index"]) == expected


@pytest.mark.parametrize(
    ("time", "given", "in_grace", "before"),
    [
        ("d1 12:00", True, True, False),  # 2 h after index
        ("d1 16:00", True, True, False),  # exactly the 6-h grace boundary: included
        ("d1 16:01", True, False, False),  # after the grace period
        ("d1 10:00", True, False, True),  # at index: before, not in grace
        ("d1 12:00", False, False, False),  # ordered, not given
    ],
)
def test_potassium_chloride_in_the_grace_period_is_the_control_exposure(
    time: str, given: bool, in_grace: bool, before: bool
) -> None:
    flag = str(given).lower()
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=f"""
        subject_id | encounter_id | time   | ingredient         | dose | dose_unit | given
        p1         | e1           | {time} | potassium_chloride | 40   | mmol      | {flag}
        """,
    )
    (row,) = story.rows(
        "negative_control_exposure", ["k_repletion_in_grace", "k_repletion_before_index"]
    )
    assert row == {"k_repletion_in_grace": in_grace, "k_repletion_before_index": before}

"""Per-episode tables of the secondary and sensitivity analyses, by patient stories:
time to calcium correction, PTH after the grace period, the trajectory rows of the mixed
model and CKD-EPI 2021 eGFR.

The qualifying stay (as in test_sql_outcome_windows): Mg 0.55 at d1 08:00, total Ca 1.90 +
albumin 30 g/L at d1 10:00 (corrected 2.10): index d1 10:00. Every later calcium has albumin
40 g/L beside it, so its corrected value equals its total. A calcium at d3 10:00 (48 h) gives
the episode its outcome so that it is analysed.
"""

from __future__ import annotations

import pytest
from helpers.stories import QUALIFYING_LABS, assert_rows, build, calcium_at, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d6 00:00       | 70
"""


CORRECTION = [
    "corrected",
    "hours_to_event",
    "end_reason",
    "corrected_within_window",
    "n_calcium_after_index",
]


def test_correction_is_the_first_calcium_at_or_above_the_threshold() -> None:
    # 24 h: 2.05 (still low); 48 h: 2.15 (= threshold: corrected); 72 h: 2.30
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(("d2 10:00", 2.05), ("d3 10:00", 2.15), ("d4 10:00", 2.30)),
    )
    assert_rows(
        story.rows("index_calcium_correction", CORRECTION),
        expect("""
        corrected | hours_to_event | end_reason | corrected_within_window | n_calcium_after_index
        true      | 48.0           | corrected  | true                    | 3
        """),
    )


def test_never_corrected_is_censored_at_the_last_calcium_not_at_discharge() -> None:
    # low at 24, 48 and 80 h; discharged at d6 (110 h): censored at 80 h, and no correction
    # within 72 h (calcium was drawn in the window)
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(("d2 10:00", 2.00), ("d3 10:00", 2.05), ("d4 18:00", 2.10)),
    )
    assert_rows(
        story.rows("index_calcium_correction", CORRECTION),
        expect("""
        corrected | hours_to_event | end_reason             | corrected_within_window
        false     | 80.0           | censored_last_calcium  | false
        """),
    )
    assert story.value("SELECT n_calcium_after_index FROM index_calcium_correction") == 3


@pytest.mark.parametrize(
    ("recheck_at", "expected"),
    [
        # a normal post-dose re-check at 3 h, or at exactly 6 h, is inside the grace period:
        # follow-up starts after it, so the event is the normal draw at 48 h
        ("d1 13:00", "true | 48.0 | corrected | true | 3"),
        ("d1 16:00", "true | 48.0 | corrected | true | 3"),
        # one minute after the grace period it is follow-up: corrected at 6 h 1 min
        ("d1 16:01", "true | 6.016666666666667 | corrected | true | 3"),
    ],
)
def test_follow_up_for_correction_starts_when_the_grace_period_ends(
    recheck_at: str, expected: str
) -> None:
    # normal re-check, then low at 24 h, normal at 48 h
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at((recheck_at, 2.20), ("d2 10:00", 2.05), ("d3 10:00", 2.20)),
    )
    assert_rows(
        story.rows("index_calcium_correction", CORRECTION),
        expect(
            "corrected | hours_to_event | end_reason | corrected_within_window "
            "| n_calcium_after_index\n" + expected
        ),
    )


def test_correction_after_the_window_is_not_within_it() -> None:
    # low at 48 h, normal at 80 h: corrected (event at 80 h) but not within 72 h
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.05), ("d4 18:00", 2.20)),
    )
    assert_rows(
        story.rows("index_calcium_correction", CORRECTION),
        expect("""
        corrected | hours_to_event | end_reason | corrected_within_window | n_calcium_after_index
        true      | 80.0           | corrected  | false                   | 2
        """),
    )


def test_draws_in_the_window_exclude_the_grace_period_and_after_the_window() -> None:
    # corrected Ca at 3 h (inside the 6 h grace period), 24 h, 48 h, exactly 72 h (the window
    # is closed on the right) and 80 h (after it): 24, 48 and 72 h are in the window
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(
            ("d1 13:00", 2.05),
            ("d2 10:00", 2.05),
            ("d3 10:00", 2.05),
            ("d4 10:00", 2.05),
            ("d4 18:00", 2.05),
        ),
    )
    assert story.value("SELECT n_calcium_in_window FROM index_calcium_correction") == 3
    assert story.value("SELECT n_calcium_after_index FROM index_calcium_correction") == 5


def test_the_outcome_draw_alone_is_one_draw_in_the_window() -> None:
    # only the 48 h outcome draw after index: one draw in (6 h, 72 h]
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.05)),
    )
    assert story.value("SELECT n_calcium_in_window FROM index_calcium_correction") == 1


def test_calcium_after_discharge_is_not_follow_up() -> None:
    # discharged d3 12:00 (50 h); a normal calcium at d4 in a readmission does not count
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d3 12:00       | 70
        e2           | p1         | d4 00:00   | d6 00:00       | 70
        """,
        labs=QUALIFYING_LABS
        + calcium_at(("d3 10:00", 2.05))
        + "\np1 | e2 | d4 10:00 | calcium_total | 2.30 | mmol/L"
        + "\np1 | e2 | d4 10:00 | albumin       | 40   | g/L",
    )
    assert_rows(
        story.rows("index_calcium_correction", CORRECTION, where="encounter_id = 'e1'"),
        expect("""
        corrected | hours_to_event | end_reason            | corrected_within_window
        false     | 48.0           | censored_last_calcium | false
        """),
    )
    assert (
        story.value(
            "SELECT n_calcium_after_index FROM index_calcium_correction WHERE encounter_id = 'e1'"
        )
        == 1
    )


def test_pth_before_index_and_first_after_the_grace_period() -> None:
    # PTH 3.0 pmol/L 2 h before index (baseline), 4.0 at 3 h (inside the 6 h grace period:
    # not follow-up), 9.0 at 30 h and 12.0 at 50 h: follow-up is the first after grace, 9.0
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(("d3 10:00", 2.20))
        + """
        p1 | e1 | d1 08:00 | pth | 3.0  | pmol/L
        p1 | e1 | d1 13:00 | pth | 4.0  | pmol/L
        p1 | e1 | d2 16:00 | pth | 9.0  | pmol/L
        p1 | e1 | d3 12:00 | pth | 12.0 | pmol/L
        """,
    )
    assert_rows(
        story.rows(
            "index_pth_response",
            ["baseline_pth_pmol_l", "followup_pth_pmol_l", "followup_pth_hours_from_index"],
        ),
        expect("""
        baseline_pth_pmol_l | followup_pth_pmol_l | followup_pth_hours_from_index
        3.0                 | 9.0                 | 30.0
        """),
    )


def test_pth_after_the_response_window_is_not_follow_up() -> None:
    # only a PTH at 80 h (> pth_response_hours 72): no follow-up PTH, no baseline either
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(("d3 10:00", 2.20))
        + "\np1 | e1 | d4 18:00 | pth | 9.0 | pmol/L",
    )
    assert story.rows("index_pth_response", ["baseline_pth_pmol_l", "followup_pth_pmol_l"]) == [
        {"baseline_pth_pmol_l": None, "followup_pth_pmol_l": None}
    ]


def test_trajectory_points_are_the_draws_after_grace_up_to_96_hours() -> None:
    # draws at 4 h (in grace: left out), 24 h, 48 h, 96 h (kept: end included), 100 h (out)
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(
            ("d1 14:00", 2.00),
            ("d2 10:00", 2.05),
            ("d3 10:00", 2.15),
            ("d5 10:00", 2.30),
            ("d5 14:00", 2.35),
        ),
    )
    assert_rows(
        story.rows("calcium_trajectory_points", ["hours_from_index", "ca_corrected_mmol_l"]),
        expect("""
        hours_from_index | ca_corrected_mmol_l
        24.0             | 2.05
        48.0             | 2.15
        96.0             | 2.30
        """),
    )


@pytest.mark.parametrize(
    ("sex", "age", "creatinine_umol_l", "egfr", "advanced"),
    [
        # woman, 70 y, creatinine 90 umol/L = 1.0181 mg/dL (> k 0.7):
        # 142 x (1.0181/0.7)^-1.200 x 0.9938^70 x 1.012 = 59.3
        ("F", 70, 90, 59.32, False),
        # man, 70 y, creatinine 300 umol/L = 3.3937 mg/dL: 142 x (3.3937/0.9)^-1.2 x
        # 0.9938^70 = 18.7 (< 30: advanced)
        ("M", 70, 300, 18.69, True),
        # man, 40 y, creatinine 60 umol/L = 0.6787 mg/dL (< k 0.9):
        # 142 x (0.7541)^-0.302 x 0.9938^40 = 120.6
        ("M", 40, 60, 120.57, False),
        # unknown sex: no coefficients, no eGFR, not classified
        ("U", 70, 90, None, None),
    ],
)
def test_egfr_ckd_epi_2021(
    sex: str, age: float, creatinine_umol_l: float, egfr: float | None, advanced: bool | None
) -> None:
    story = build(
        encounters=f"""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d6 00:00       | {age}
        """,
        persons=f"""
        subject_id | sex
        p1         | {sex}
        """,
        labs=QUALIFYING_LABS.replace("| 90    |", f"| {creatinine_umol_l} |")
        + calcium_at(("d3 10:00", 2.20)),
    )
    (row,) = story.rows("index_kidney_function", ["egfr_ml_min_1_73m2", "advanced_ckd"])
    if egfr is None:
        assert row == {"egfr_ml_min_1_73m2": None, "advanced_ckd": None}
    else:
        assert row["egfr_ml_min_1_73m2"] == pytest.approx(egfr, abs=0.05)
        assert row["advanced_ckd"] is advanced

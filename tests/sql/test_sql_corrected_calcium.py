"""calcium_corrected: Payne-type correction with the latest albumin of the same stay drawn at or
before the calcium, within the look-back."""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""


def test_each_calcium_takes_the_latest_albumin_at_or_before_it_within_72_hours() -> None:
    # corrected = total + 0.02 x (40 - albumin g/L); the albumin must be drawn at or before
    # the calcium (no look-ahead) and at most 72 h earlier; same-day = at most 24 h earlier.
    # d1 10:00: albumins 3 h before (30 g/L) and 3 h after (34 g/L): only the one before
    #           counts -> 2.00 + 0.02 x 10 = 2.20; 3 h old, same-day.
    # d2 10:00: albumin 32 g/L drawn 2 h AFTER it is not used; the latest before it is 25 g/L
    #           at d2 06:00 (4 h) -> 2.00 + 0.02 x 15 = 2.30, same-day.
    # d4 10:00: albumins at d4 10:00 (same minute: 28 and 3.6 g/dL = 36 g/L): the same
    #           minute counts and the lower value wins -> 2.00 + 0.02 x 12 = 2.24; 0 h.
    # e2 (p2): albumin 40 at d1 12:00; calcium at d2 12:00 (exactly 24 h: still same-day),
    #           d4 10:00 (70 h: look-back, not same-day) -> 1.90 + 0 = 1.90 both; d4 13:00
    #           (73 h: beyond 72 h) -> no albumin, not corrected.
    # e3 (p3): calcium at d1 10:00, only albumin at d1 12:00 (2 h after): not corrected.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        e2           | p2         | d1 00:00   | d9 00:00
        e3           | p3         | d1 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 07:00 | albumin       | 30    | g/L
        p1         | e1           | d1 10:00 | calcium_total | 2.00  | mmol/L
        p1         | e1           | d1 13:00 | albumin       | 34    | g/L
        p1         | e1           | d2 06:00 | albumin       | 25    | g/L
        p1         | e1           | d2 10:00 | calcium_total | 2.00  | mmol/L
        p1         | e1           | d2 12:00 | albumin       | 3.2   | g/dL
        p1         | e1           | d4 10:00 | albumin       | 28    | g/L
        p1         | e1           | d4 10:00 | albumin       | 3.6   | g/dL
        p1         | e1           | d4 10:00 | calcium_total | 2.00  | mmol/L
        p2         | e2           | d1 12:00 | albumin       | 40    | g/L
        p2         | e2           | d2 12:00 | calcium_total | 1.90  | mmol/L
        p2         | e2           | d4 10:00 | calcium_total | 1.90  | mmol/L
        p2         | e2           | d4 13:00 | calcium_total | 1.90  | mmol/L
        p3         | e3           | d1 10:00 | calcium_total | 2.00  | mmol/L
        p3         | e3           | d1 12:00 | albumin       | 30    | g/L
        """,
    )
    assert_rows(
        story.rows(
            "calcium_corrected",
            [
                "subject_id",
                "time",
                "albumin_time",
                "albumin_g_l",
                "ca_corrected_mmol_l",
                "albumin_hours_before_ca",
                "albumin_same_day",
            ],
        ),
        expect("""
        subject_id | time     | albumin_time | albumin_g_l | ca_corrected_mmol_l | albumin_hours_before_ca | albumin_same_day
        p1         | d1 10:00 | d1 07:00     | 30          | 2.20                | 3.0                     | true
        p1         | d2 10:00 | d2 06:00     | 25          | 2.30                | 4.0                     | true
        p1         | d4 10:00 | d4 10:00     | 28          | 2.24                | 0.0                     | true
        p2         | d2 12:00 | d1 12:00     | 40          | 1.90                | 24.0                    | true
        p2         | d4 10:00 | d1 12:00     | 40          | 1.90                | 70.0                    | false
        p2         | d4 13:00 | -            | -           | -                   | -                       | -
        p3         | d1 10:00 | -            | -           | -                   | -                       | -
        """),  # noqa: E501
    )
    missing = story.rows(
        "data_quality", ["n_rows", "n_flagged"], where="check_name = 'no_albumin_in_lookback'"
    )
    assert missing == [{"n_rows": 7, "n_flagged": 2}]


def test_albumin_look_back_and_same_day_windows_are_configurable() -> None:
    # Albumin 40 at d1 12:00; calcium 1.90 at d2 00:00 (12 h) and d2 12:00 (24 h).
    # albumin_lookback_hours 12, albumin_same_day_hours 6: the 12 h one is corrected (the
    # end is included) but not same-day; the 24 h one is beyond the look-back.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 12:00 | albumin       | 40    | g/L
        p1         | e1           | d2 00:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d2 12:00 | calcium_total | 1.90  | mmol/L
        """,
        albumin_lookback_hours=12,
        albumin_same_day_hours=6,
    )
    assert_rows(
        story.rows("calcium_corrected", ["time", "ca_corrected_mmol_l", "albumin_same_day"]),
        expect("""
        time     | ca_corrected_mmol_l | albumin_same_day
        d2 00:00 | 1.90                | false
        d2 12:00 | -                   | -
        """),
    )


def test_corrected_calcium_of_exactly_2_15_is_not_low() -> None:
    # 2.05 + 0.02 x (40 - 35) is 2.15 mmol/L, the lower limit itself: not hypocalcaemia, even
    # though binary floating point makes it 2.1499999999999995 before rounding. Same for a
    # total of 2.15 at albumin 40. With a low Mg beside it there is still no index event.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | magnesium     | 0.50  | mmol/L
        p1         | e1           | d1 10:00 | calcium_total | 2.05  | mmol/L
        p1         | e1           | d1 10:00 | albumin       | 35    | g/L
        p1         | e1           | d2 10:00 | calcium_total | 2.15  | mmol/L
        p1         | e1           | d2 10:00 | albumin       | 40    | g/L
        """,
    )
    assert [r["ca_corrected_mmol_l"] for r in story.rows("calcium_corrected")] == [2.15, 2.15]
    assert story.rows("hypocalcaemia_episodes") == []
    assert story.rows("index_events") == []
    assert story.excluded_at("e1") == 3


def test_calcium_without_albumin_is_not_corrected_and_never_makes_an_index() -> None:
    # Mg 0.50 and a total Ca of 1.80 look like the textbook case, but its only albumin is
    # drawn 3 days later (never used: no look-ahead), so the calcium cannot be corrected: no
    # index event, and the stay leaves the cohort at step 2 (no classifiable Ca at all).
    # calcium_status still reads it as the best it has, an uncorrected total, so the
    # hypocalcaemia episode exists, flagged.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | magnesium     | 0.50  | mmol/L
        p1         | e1           | d1 09:00 | calcium_total | 1.80  | mmol/L
        p1         | e1           | d4 09:00 | albumin       | 30    | g/L
        """,
    )
    assert_rows(
        story.rows("calcium_corrected", ["ca_total_mmol_l", "albumin_g_l", "ca_corrected_mmol_l"]),
        expect("""
        ca_total_mmol_l | albumin_g_l | ca_corrected_mmol_l
        1.80            | -           | -
        """),
    )
    assert_rows(
        story.rows(
            "hypocalcaemia_episodes", ["episode_start", "calcium_measure", "any_uncorrected"]
        ),
        expect("""
        episode_start | calcium_measure   | any_uncorrected
        d1 09:00      | total_uncorrected | true
        """),
    )
    assert story.rows("index_events") == []
    assert story.excluded_at("e1") == 2


def test_quarantined_albumin_is_never_used_for_correction() -> None:
    # An albumin with an unknown unit sits right beside the calcium; the usable one was drawn
    # 20 h earlier. Only the usable one corrects: 1.90 + 0.02 x (40 - 30) = 2.10.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 10:00 | albumin       | 30    | g/L
        p1         | e1           | d2 06:00 | albumin       | 20    | g%
        p1         | e1           | d2 06:00 | calcium_total | 1.90  | mmol/L
        """,
    )
    assert_rows(
        story.rows("calcium_corrected", ["albumin_time", "albumin_g_l", "ca_corrected_mmol_l"]),
        expect("""
        albumin_time | albumin_g_l | ca_corrected_mmol_l
        d1 10:00     | 30          | 2.10
        """),
    )

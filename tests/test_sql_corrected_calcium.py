"""calcium_corrected: Payne-type correction with the nearest albumin of the same stay."""

from __future__ import annotations

from stories import assert_rows, build, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""


def test_each_calcium_takes_the_nearest_albumin_of_its_stay_within_24_hours() -> None:
    # corrected = total + 0.02 x (40 - albumin g/L).
    # d1 10:00: albumins 3 h before (30 g/L) and 3 h after (34 g/L): a tie, the earlier one
    #           wins -> 2.00 + 0.02 x 10 = 2.20.
    # d2 10:00: albumin 3.2 g/dL (= 32 g/L) 2 h after beats 25 g/L 4 h before
    #           -> 2.00 + 0.02 x 8 = 2.16.
    # d4 10:00: the only albumin near it is 25 h later: no correction, no corrected value.
    # d7 10:00: albumin exactly 24 h before still counts -> 2.00 + 0 = 2.00.
    # p2's calcium never borrows p1's albumin.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        e2           | p2         | d1 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 07:00 | albumin       | 30    | g/L
        p1         | e1           | d1 10:00 | calcium_total | 2.00  | mmol/L
        p1         | e1           | d1 13:00 | albumin       | 34    | g/L
        p1         | e1           | d2 06:00 | albumin       | 25    | g/L
        p1         | e1           | d2 10:00 | calcium_total | 2.00  | mmol/L
        p1         | e1           | d2 12:00 | albumin       | 3.2   | g/dL
        p1         | e1           | d4 10:00 | calcium_total | 2.00  | mmol/L
        p1         | e1           | d5 11:00 | albumin       | 25    | g/L
        p1         | e1           | d6 10:00 | albumin       | 40    | g/L
        p1         | e1           | d7 10:00 | calcium_total | 2.00  | mmol/L
        p2         | e2           | d1 10:00 | calcium_total | 2.00  | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "calcium_corrected",
            [
                "subject_id",
                "time",
                "ca_total_mmol_l",
                "albumin_time",
                "albumin_g_l",
                "ca_corrected_mmol_l",
            ],
        ),
        expect("""
        subject_id | time     | ca_total_mmol_l | albumin_time | albumin_g_l | ca_corrected_mmol_l
        p1         | d1 10:00 | 2.00            | d1 07:00     | 30          | 2.20
        p1         | d2 10:00 | 2.00            | d2 12:00     | 32          | 2.16
        p1         | d4 10:00 | 2.00            | -            | -           | -
        p1         | d7 10:00 | 2.00            | d6 10:00     | 40          | 2.00
        p2         | d1 10:00 | 2.00            | -            | -           | -
        """),
    )
    missing = story.rows(
        "data_quality", ["n_rows", "n_flagged"], where="check_name = 'missing_albumin'"
    )
    assert missing == [{"n_rows": 5, "n_flagged": 2}]


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
    # Mg 0.50 and a total Ca of 1.80 look like the textbook case, but without an albumin
    # within 24 h the calcium cannot be corrected: no index event, and the stay leaves the
    # cohort at step 2 (no corrected Ca at all). calcium_status still reads it as the best
    # it has, an uncorrected total, so the hypocalcaemia episode exists, flagged.
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
    # An albumin with an unknown unit sits right beside the calcium; the usable one is 20 h
    # away. Only the usable one corrects: 1.90 + 0.02 x (40 - 30) = 2.10.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 10:00 | albumin       | 20    | g%
        p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d2 06:00 | albumin       | 30    | g/L
        """,
    )
    assert_rows(
        story.rows("calcium_corrected", ["albumin_time", "albumin_g_l", "ca_corrected_mmol_l"]),
        expect("""
        albumin_time | albumin_g_l | ca_corrected_mmol_l
        d2 06:00     | 30          | 2.10
        """),
    )

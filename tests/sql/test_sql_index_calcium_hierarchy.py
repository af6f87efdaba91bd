"""index_events' calcium hierarchy (ionized, else albumin-corrected with a look-back albumin,
else unclassifiable) and its rule that no test drawn after time zero decides eligibility;
which measure defined the index and the outcome, per episode and counted.

Defaults: Mg low < 0.70, ionized Ca low < 1.12, corrected Ca low < 2.15 mmol/L; ionized
window 1 h; albumin look-back 72 h, same-day 24 h; concurrent window 6 h.
corrected = total + 0.02 x (40 - albumin g/L): total 1.90 with albumin 30 is 2.10 (low),
with albumin 20 is 2.30 (normal).
"""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

INDEX = [
    "encounter_id",
    "index_time",
    "mg_draw_time",
    "ca_draw_time",
    "index_calcium_measure",
    "baseline_ca_ionized_mmol_l",
    "ca_corrected_mmol_l",
    "ca_total_mmol_l",
    "albumin_g_l",
]


def stays(*encounter_ids: str) -> str:
    rows = "encounter_id | subject_id | admit_time | discharge_time | age_years\n"
    for n, encounter_id in enumerate(encounter_ids, start=1):
        rows += f"{encounter_id} | p{n} | d1 00:00 | d9 00:00 | 70\n"
    return rows


def test_an_albumin_drawn_after_the_calcium_never_decides_eligibility() -> None:
    # e1: Mg 0.55 at 08:00, total Ca 1.90 at 10:00, its only albumin (30 g/L) 2 h AFTER it:
    #     not used, so the calcium is unclassifiable: no index; the stay has no classifiable
    #     calcium at all and leaves at step 2.
    # e2: the same, plus an albumin of 30 g/L at 06:00 (4 h before the Ca) and the later one
    #     20 g/L. A nearest-albumin rule (+/- 24 h) would take the 12:00 albumin (2 h away)
    #     -> 2.30, normal; the look-back takes 06:00 -> 2.10, low: index at 10:00, same-day.
    story = build(
        encounters=stays("e1", "e2"),
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d1 12:00 | albumin       | 30    | g/L
        p2         | e2           | d1 06:00 | albumin       | 30    | g/L
        p2         | e2           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p2         | e2           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p2         | e2           | d1 12:00 | albumin       | 20    | g/L
        """,
    )
    assert_rows(
        story.rows("index_events", INDEX),
        expect("""
        encounter_id | index_time | mg_draw_time | ca_draw_time | index_calcium_measure      | baseline_ca_ionized_mmol_l | ca_corrected_mmol_l | ca_total_mmol_l | albumin_g_l
        e2           | d1 10:00   | d1 08:00     | d1 10:00     | corrected_same_day_albumin | -                          | 2.10                | 1.90            | 30
        """),  # noqa: E501
    )
    assert story.excluded_at("e1") == 2


def test_look_back_albumin_70_hours_old_qualifies_73_hours_old_does_not() -> None:
    # Albumin 30 g/L at d1 08:00 in each stay; Mg 0.55 an hour before each calcium 1.90.
    # e1: calcium at d4 06:00, 70 h after the albumin: corrected 2.10 with a look-back
    #     (not same-day) albumin -> index at d4 06:00, 'corrected_lookback_albumin'.
    # e2: calcium at d4 09:00, 73 h after: beyond 72 h, unclassifiable: no index.
    # e3: calcium at d2 08:00, exactly 24 h after: same-day (the end is included).
    # e4: calcium at d2 08:01, 24 h 1 min after: look-back, not same-day.
    story = build(
        encounters=stays("e1", "e2", "e3", "e4"),
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 08:00 | albumin       | 30    | g/L
        p1         | e1           | d4 05:00 | magnesium     | 0.55  | mmol/L
        p1         | e1           | d4 06:00 | calcium_total | 1.90  | mmol/L
        p2         | e2           | d1 08:00 | albumin       | 30    | g/L
        p2         | e2           | d4 08:00 | magnesium     | 0.55  | mmol/L
        p2         | e2           | d4 09:00 | calcium_total | 1.90  | mmol/L
        p3         | e3           | d1 08:00 | albumin       | 30    | g/L
        p3         | e3           | d2 07:00 | magnesium     | 0.55  | mmol/L
        p3         | e3           | d2 08:00 | calcium_total | 1.90  | mmol/L
        p4         | e4           | d1 08:00 | albumin       | 30    | g/L
        p4         | e4           | d2 07:01 | magnesium     | 0.55  | mmol/L
        p4         | e4           | d2 08:01 | calcium_total | 1.90  | mmol/L
        """,
    )
    assert_rows(
        story.rows("index_events", ["encounter_id", "index_time", "index_calcium_measure"]),
        expect("""
        encounter_id | index_time | index_calcium_measure
        e1           | d4 06:00   | corrected_lookback_albumin
        e3           | d2 08:00   | corrected_same_day_albumin
        e4           | d2 08:01   | corrected_lookback_albumin
        """),
    )
    assert story.excluded_at("e2") == 2


def test_a_low_ionized_calcium_indexes_without_any_albumin_at_the_later_draw() -> None:
    # e1: ionized 1.05 (low) at 09:00 beside a total Ca 1.90 with no albumin anywhere; Mg
    #     0.55 at 11:00. The ionized tier classifies the calcium: index at 11:00, the later
    #     of the two draws (the Mg); no corrected value exists (ca_corrected null).
    # e2: ionized 1.05 at 09:00 drawn with a total 1.90 and albumin 30 (corrected 2.10), Mg
    #     at 08:00: ionized wins at 09:00 (index 09:00), and the corrected Ca of the total
    #     drawn with it is kept as the baseline corrected Ca.
    # e3: ionized 1.20 (normal) at 08:30, then total 1.90 + albumin 30 (corrected 2.10, low)
    #     at 09:00, Mg low at 09:00: within the hour after an ionized the ionized stands for
    #     the total, so the calcium at 09:00 is normal: no index.
    # e4: total 1.90 + albumin 30 (corrected 2.10, low) and Mg low at 08:00, normal ionized
    #     1.20 at 08:30: at 08:00 the later ionized does not exist yet, so the corrected Ca
    #     indexes at 08:00 (never look ahead, even to a better measure).
    story = build(
        encounters=stays("e1", "e2", "e3", "e4"),
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 09:00 | calcium_ionized | 1.05  | mmol/L
        p1         | e1           | d1 09:00 | calcium_total   | 1.90  | mmol/L
        p1         | e1           | d1 11:00 | magnesium       | 0.55  | mmol/L
        p2         | e2           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p2         | e2           | d1 09:00 | calcium_ionized | 1.05  | mmol/L
        p2         | e2           | d1 09:00 | calcium_total   | 1.90  | mmol/L
        p2         | e2           | d1 09:00 | albumin         | 30    | g/L
        p3         | e3           | d1 08:30 | calcium_ionized | 1.20  | mmol/L
        p3         | e3           | d1 09:00 | calcium_total   | 1.90  | mmol/L
        p3         | e3           | d1 09:00 | albumin         | 30    | g/L
        p3         | e3           | d1 09:00 | magnesium       | 0.55  | mmol/L
        p4         | e4           | d1 08:00 | calcium_total   | 1.90  | mmol/L
        p4         | e4           | d1 08:00 | albumin         | 30    | g/L
        p4         | e4           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p4         | e4           | d1 08:30 | calcium_ionized | 1.20  | mmol/L
        """,
    )
    assert_rows(
        story.rows("index_events", INDEX),
        expect("""
        encounter_id | index_time | mg_draw_time | ca_draw_time | index_calcium_measure      | baseline_ca_ionized_mmol_l | ca_corrected_mmol_l | ca_total_mmol_l | albumin_g_l
        e1           | d1 11:00   | d1 11:00     | d1 09:00     | ionized                    | 1.05                       | -                   | -               | -
        e2           | d1 09:00   | d1 08:00     | d1 09:00     | ionized                    | 1.05                       | 2.10                | 1.90            | 30
        e4           | d1 08:00   | d1 08:00     | d1 08:00     | corrected_same_day_albumin | -                          | 2.10                | 1.90            | 30
        """),  # noqa: E501
    )
    assert story.excluded_at("e3") == 3


def test_which_measure_defined_the_index_and_the_outcome_per_episode_and_counted() -> None:
    # Every stay: creatinine 90 at d1 06:00 (baseline), Mg 0.55 at d1 08:00.
    # e1: ionized 1.05 at d1 09:00 -> index d1 09:00 'ionized'; outcome: total 2.20 at d3
    #     09:00 (48 h) with albumin 40 drawn with it -> 2.20, 'corrected_same_day_albumin'.
    # e2: total 1.90 + albumin 30 at d1 09:00 -> index 'corrected_same_day_albumin' (2.10);
    #     outcome total 2.20 at d3 09:00 whose latest albumin is d1 09:00 (48 h old):
    #     2.20 + 0.2 = 2.40, 'corrected_lookback_albumin'.
    # e3: as e2 but the only later calcium is at d4 09:00 (72 h, outside 48 +/- 12): an
    #     eligible index event without an outcome (not analysed).
    story = build(
        encounters=stays("e1", "e2", "e3"),
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 06:00 | creatinine      | 90    | umol/L
        p1         | e1           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p1         | e1           | d1 09:00 | calcium_ionized | 1.05  | mmol/L
        p1         | e1           | d3 09:00 | calcium_total   | 2.20  | mmol/L
        p1         | e1           | d3 09:00 | albumin         | 40    | g/L
        p2         | e2           | d1 06:00 | creatinine      | 90    | umol/L
        p2         | e2           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p2         | e2           | d1 09:00 | calcium_total   | 1.90  | mmol/L
        p2         | e2           | d1 09:00 | albumin         | 30    | g/L
        p2         | e2           | d3 09:00 | calcium_total   | 2.20  | mmol/L
        p3         | e3           | d1 06:00 | creatinine      | 90    | umol/L
        p3         | e3           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p3         | e3           | d1 09:00 | calcium_total   | 1.90  | mmol/L
        p3         | e3           | d1 09:00 | albumin         | 30    | g/L
        p3         | e3           | d4 09:00 | calcium_total   | 2.20  | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "encounter_id",
                "index_calcium_measure",
                "baseline_ca_ionized_mmol_l",
                "baseline_ca_corrected_mmol_l",
                "outcome_ca_corrected_mmol_l",
                "outcome_calcium_measure",
            ],
        ),
        expect("""
        encounter_id | index_calcium_measure      | baseline_ca_ionized_mmol_l | baseline_ca_corrected_mmol_l | outcome_ca_corrected_mmol_l | outcome_calcium_measure
        e1           | ionized                    | 1.05                       | -                            | 2.20                        | corrected_same_day_albumin
        e2           | corrected_same_day_albumin | -                          | 2.10                         | 2.40                        | corrected_lookback_albumin
        """),  # noqa: E501
    )
    assert story.excluded_at("e3") == 10
    assert_rows(
        story.rows("episode_calcium_measures"),
        expect("""
        role    | calcium_measure            | n_eligible_index_events | n_analysed
        index   | corrected_lookback_albumin | 0                       | 0
        index   | corrected_same_day_albumin | 2                       | 1
        index   | ionized                    | 1                       | 1
        outcome | corrected_lookback_albumin | 1                       | 1
        outcome | corrected_same_day_albumin | 1                       | 1
        outcome | not_measured               | 1                       | 0
        """),
    )


def test_the_last_result_before_a_time_is_the_latest_draw_and_the_lower_value_of_a_tie() -> None:
    # e1: two Mg drawn together at 08:00, 0.80 (normal) and 0.60 (low), with an ionized Ca
    #     1.05 (low) at 08:00: the last Mg at 08:00 is the lower of the two: index at 08:00
    #     with Mg 0.60.
    # e2: Mg 0.55 at 08:00 and two ionized Ca drawn together at 09:00, 1.20 (normal) and
    #     1.05 (low): the lower one is the reading: index at 09:00 on ionized 1.05.
    # e3: Mg 0.55 at 08:00, Mg 0.80 at 09:00, ionized 1.05 at 10:00: the last Mg at 10:00 is
    #     the 09:00 one (latest, not lowest), normal: no index.
    story = build(
        encounters=stays("e1", "e2", "e3"),
        labs="""
        subject_id | encounter_id | time     | analyte         | value | unit
        p1         | e1           | d1 08:00 | magnesium       | 0.80  | mmol/L
        p1         | e1           | d1 08:00 | magnesium       | 0.60  | mmol/L
        p1         | e1           | d1 08:00 | calcium_ionized | 1.05  | mmol/L
        p2         | e2           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p2         | e2           | d1 09:00 | calcium_ionized | 1.20  | mmol/L
        p2         | e2           | d1 09:00 | calcium_ionized | 1.05  | mmol/L
        p3         | e3           | d1 08:00 | magnesium       | 0.55  | mmol/L
        p3         | e3           | d1 09:00 | magnesium       | 0.80  | mmol/L
        p3         | e3           | d1 10:00 | calcium_ionized | 1.05  | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "index_events",
            [
                "encounter_id",
                "index_time",
                "mg_draw_time",
                "mg_mmol_l",
                "ca_draw_time",
                "index_calcium_measure",
                "baseline_ca_ionized_mmol_l",
            ],
        ),
        expect("""
        encounter_id | index_time | mg_draw_time | mg_mmol_l | ca_draw_time | index_calcium_measure | baseline_ca_ionized_mmol_l
        e1           | d1 08:00   | d1 08:00     | 0.60      | d1 08:00     | ionized               | 1.05
        e2           | d1 09:00   | d1 08:00     | 0.55      | d1 09:00     | ionized               | 1.05
        """),  # noqa: E501
    )

"""attrition, data_quality and calcium_trajectory_summary."""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

from mgca.engine.derive import derive

# Twelve stays, each written to fail exactly one step (or none). Qualifying labs: Mg 0.55 at
# d1 08:00, total Ca 1.90 + albumin 30 at d1 10:00 (corrected 2.10; index 10:00), creatinine
# at 06:00, outcome Ca at d3 10:00 (48 h).
#   e1  no labs at all                                  -> step 2
#   e2  Mg and corrected Ca both normal                 -> step 3
#   e3  16 years old                                    -> step 4
#   e4  age unknown                                     -> step 4
#   e10 obstetric MgSO4 at 09:00, before index          -> step 5
#   e11 citrate-CRRT calcium at 14:00 (index + 4 h)     -> step 6
#   e5  MgSO4 given at 09:00, before index              -> step 8
#   e6  no creatinine                                   -> step 9
#   e7  discharged on day 2, no outcome                 -> step 10
#   e8  analysed, MgSO4 at 12:00                        -> exposed
#   e9  analysed, no Mg                                 -> unexposed
#   e12 analysed, citrate-CRRT calcium at 17:00 (index + 7 h, after the grace period)
#                                                       -> unexposed
QUALIFYING_STAYS = [
    ("p3", "e3"), ("p4", "e4"), ("p5", "e5"), ("p8", "e8"), ("p9", "e9"),
    ("p10", "e10"), ("p11", "e11"), ("p12", "e12"),
]  # fmt: skip
POPULATION = {
    "encounters": """
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d9 00:00       | 70
        e2           | p2         | d1 00:00   | d9 00:00       | 70
        e3           | p3         | d1 00:00   | d9 00:00       | 16
        e4           | p4         | d1 00:00   | d9 00:00       | -
        e5           | p5         | d1 00:00   | d9 00:00       | 70
        e6           | p6         | d1 00:00   | d9 00:00       | 70
        e7           | p7         | d1 00:00   | d2 12:00       | 70
        e8           | p8         | d1 00:00   | d9 00:00       | 70
        e9           | p9         | d1 00:00   | d9 00:00       | 70
        e10          | p10        | d1 00:00   | d9 00:00       | 70
        e11          | p11        | d1 00:00   | d9 00:00       | 70
        e12          | p12        | d1 00:00   | d9 00:00       | 70
    """,
    "labs": """
        subject_id | encounter_id | time     | analyte       | value | unit
        p2         | e2           | d1 08:00 | magnesium     | 0.85  | mmol/L
        p2         | e2           | d1 10:00 | calcium_total | 2.30  | mmol/L
        p2         | e2           | d1 10:00 | albumin       | 40    | g/L
    """
    + "".join(
        f"""
        {p}         | {e}           | d1 06:00 | creatinine    | 90    | umol/L
        {p}         | {e}           | d1 08:00 | magnesium     | 0.55  | mmol/L
        {p}         | {e}           | d1 10:00 | calcium_total | 1.90  | mmol/L
        {p}         | {e}           | d1 10:00 | albumin       | 30    | g/L
        {p}         | {e}           | d3 10:00 | calcium_total | 2.20  | mmol/L
        {p}         | {e}           | d3 10:00 | albumin       | 30    | g/L
        """
        for p, e in QUALIFYING_STAYS
    )
    + """
        p6         | e6           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p6         | e6           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p6         | e6           | d1 10:00 | albumin       | 30    | g/L
        p6         | e6           | d3 10:00 | calcium_total | 2.20  | mmol/L
        p6         | e6           | d3 10:00 | albumin       | 30    | g/L
        p7         | e7           | d1 06:00 | creatinine    | 90    | umol/L
        p7         | e7           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p7         | e7           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p7         | e7           | d1 10:00 | albumin       | 30    | g/L
    """,
    "meds": """
        subject_id | encounter_id | time     | ingredient        | dose | dose_unit
        p5         | e5           | d1 09:00 | magnesium_sulfate | 2    | g
        p8         | e8           | d1 12:00 | magnesium_sulfate | 2    | g
        p10        | e10          | d1 09:00 | magnesium_sulfate_obstetric | 4 | g
        p11        | e11          | d1 14:00 | citrate_crrt      | 1    | g
        p12        | e12          | d1 17:00 | citrate_crrt      | 1    | g
    """,
}


def test_attrition_counts_every_excluded_stay_once_at_its_first_failed_step() -> None:
    story = build(**POPULATION)
    assert_rows(
        story.rows("attrition", ["step_order", "n_remaining", "n_excluded"]),
        expect("""
        step_order | n_remaining | n_excluded
        1          | 12          | 0
        2          | 11          | 1
        3          | 10          | 1
        4          | 8           | 2
        5          | 7           | 1
        6          | 6           | 1
        7          | 6           | 0
        8          | 5           | 1
        9          | 4           | 1
        10         | 3           | 1
        11         | 1           | -
        12         | 2           | -
        """),
    )
    first_failed = {
        r["encounter_id"]: r["first_failed_step"] for r in story.rows("cohort_eligibility")
    }
    assert first_failed == {
        "e1": 2, "e2": 3, "e3": 4, "e4": 4, "e10": 5, "e11": 6, "e5": 8, "e6": 9, "e7": 10,
        "e8": None, "e9": None, "e12": None,
    }  # fmt: skip
    assert [r["encounter_id"] for r in story.rows("analytic_cohort", ["encounter_id"])] == [
        "e12",
        "e8",
        "e9",
    ]
    steps = story.rows("attrition")
    assert all(r["exclusion_reason"] for r in steps if r["step_order"] in range(2, 11))
    assert story.value("SELECT step FROM attrition WHERE step_order = 10").startswith("analysed")
    # neither drug is Mg or Ca repletion: CRRT calcium after the grace period is not exposure
    assert story.value("SELECT count(*) FROM mg_repletion WHERE encounter_id = 'e10'") == 0
    assert story.value("SELECT count(*) FROM calcium_supplementation") == 0


def test_attrition_of_an_empty_source_is_all_zeros() -> None:
    story = build(encounters=None)
    assert [(r["n_remaining"], r["n_excluded"]) for r in story.rows("attrition")] == [
        (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0),
        (0, None), (0, None),
    ]  # fmt: skip


def test_data_quality_accounts_for_every_lab_and_medication_row() -> None:
    # Six lab rows: 3 used (one Mg in mg/dL, one in mmol/L, one calcium without albumin),
    # 1 duplicate, 1 unknown unit ("mmol" is not a concentration: not_accepted), 1 with no
    # stay. Of the 4 Mg rows with an SI value only 1.5 mg/dL (0.6171 -> 0.62 mmol/L) changed
    # when rounded to the reporting precision. Medications: a given MgSO4, a MgSO4 that
    # was not given, an ingredient nobody listed, and a PPI with no dose unit.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time      | analyte       | value | unit
        p1         | e1           | d1 08:00  | magnesium     | 1.5   | mg/dL
        p1         | e1           | d1 09:00  | magnesium     | 0.6   | mmol/L
        p1         | e1           | d1 09:00  | magnesium     | 0.6   | mmol/L
        p1         | e1           | d1 10:00  | magnesium     | 0.6   | mmol
        p1         | -            | d12 10:00 | magnesium     | 0.6   | mmol/L
        p1         | e1           | d1 10:00  | calcium_total | 2.0   | mmol/L
        """,
        meds="""
        subject_id | encounter_id | time     | ingredient        | dose | dose_unit | given
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | true
        p1         | e1           | d1 13:00 | magnesium_sulfate | 2    | g         | false
        p1         | e1           | d1 14:00 | unobtainium       | 1    | g         | true
        p1         | e1           | d1 15:00 | Pantoprazole      | 40   | -         | true
        """,
    )
    assert_rows(
        story.rows(
            "data_quality",
            ["table_name", "check_name", "analyte", "n_rows", "n_flagged"],
            where="table_name IN ('lab_results', 'calcium_corrected')",
        ),
        expect("""
        table_name        | check_name                 | analyte       | n_rows | n_flagged
        calcium_corrected | no_albumin_in_lookback     | calcium_total | 1      | 1
        lab_results       | encounter_assigned_by_time | calcium_total | 1      | 0
        lab_results       | encounter_assigned_by_time | magnesium     | 5      | 0
        lab_results       | reporting_precision_rounding | calcium_total | 1    | 0
        lab_results       | reporting_precision_rounding | magnesium     | 4    | 1
        lab_results       | rows_read                  | -             | 6      | 0
        lab_results       | status:duplicate           | magnesium     | 5      | 1
        lab_results       | status:no_encounter        | magnesium     | 5      | 1
        lab_results       | status:unknown_unit        | magnesium     | 5      | 1
        lab_results       | status:used                | calcium_total | 1      | 1
        lab_results       | status:used                | magnesium     | 5      | 2
        lab_results       | unit_check:not_accepted    | magnesium     | 5      | 1
        lab_results       | unit_conversion:mg/dl      | magnesium     | 5      | 1
        lab_results       | unit_conversion:mmol/l     | calcium_total | 1      | 1
        lab_results       | unit_conversion:mmol/l     | magnesium     | 5      | 3
        """),
    )
    assert_rows(
        story.rows(
            "data_quality",
            ["table_name", "check_name", "analyte", "n_rows", "n_flagged"],
            where="table_name IN ('medication_administrations', 'mg_repletion')",
        ),
        expect("""
        table_name                 | check_name             | analyte           | n_rows | n_flagged
        medication_administrations | not_given              | magnesium_sulfate | 2      | 1
        medication_administrations | not_given              | pantoprazole      | 1      | 0
        medication_administrations | not_given              | unobtainium       | 1      | 0
        medication_administrations | rows_read              | -                 | 4      | 0
        medication_administrations | unknown_dose_unit      | magnesium_sulfate | 2      | 0
        medication_administrations | unknown_dose_unit      | pantoprazole      | 1      | 1
        medication_administrations | unknown_ingredient     | unobtainium       | 1      | 1
        mg_repletion               | elemental_dose_unknown | magnesium_sulfate | 1      | 0
        """),
    )
    # the status rows add up to every lab row read
    assert story.value(
        "SELECT sum(n_flagged) FROM data_quality WHERE check_name LIKE 'status:%'"
    ) == story.value("SELECT count(*) FROM lab_results")


def test_trajectory_summary_bins_corrected_calcium_around_index() -> None:
    # Two analysed stays, index d1 10:00 in both; p1 exposed (MgSO4 at 12:00), p2 not.
    # p1 corrected Ca: 2.30 at -25 h (bin -36), 2.10 at 0 h and 2.20 at +6 h (bin 0: mean
    # 2.15, sd 0.0707), 2.40 at +48 h (bin 48), 2.50 at +120 h (after +96 h: left out).
    # p2: 2.00 at 0 h (bin 0), 2.10 at +48 h (bin 48).
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d9 00:00       | 70
        e2           | p2         | d1 00:00   | d9 00:00       | 70
        """,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d0 09:00 | calcium_total | 2.30  | mmol/L
        p1         | e1           | d0 09:00 | albumin       | 40    | g/L
        p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
        p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p1         | e1           | d1 10:00 | calcium_total | 2.10  | mmol/L
        p1         | e1           | d1 10:00 | albumin       | 40    | g/L
        p1         | e1           | d1 16:00 | calcium_total | 2.20  | mmol/L
        p1         | e1           | d1 16:00 | albumin       | 40    | g/L
        p1         | e1           | d3 10:00 | calcium_total | 2.40  | mmol/L
        p1         | e1           | d3 10:00 | albumin       | 40    | g/L
        p1         | e1           | d6 10:00 | calcium_total | 2.50  | mmol/L
        p1         | e1           | d6 10:00 | albumin       | 40    | g/L
        p2         | e2           | d1 06:00 | creatinine    | 90    | umol/L
        p2         | e2           | d1 08:00 | magnesium     | 0.55  | mmol/L
        p2         | e2           | d1 10:00 | calcium_total | 2.00  | mmol/L
        p2         | e2           | d1 10:00 | albumin       | 40    | g/L
        p2         | e2           | d3 10:00 | calcium_total | 2.10  | mmol/L
        p2         | e2           | d3 10:00 | albumin       | 40    | g/L
        """,
        meds="""
        subject_id | encounter_id | time     | ingredient        | dose | dose_unit
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g
        """,
    )
    assert_rows(
        story.rows("calcium_trajectory_summary"),
        expect("""
        exposed | hours_bin_start | n_results | n_episodes | mean_ca_corrected_mmol_l
        false   | 0               | 1         | 1          | 2.00
        false   | 48              | 1         | 1          | 2.10
        true    | -36             | 1         | 1          | 2.30
        true    | 0               | 2         | 1          | 2.15
        true    | 48              | 1         | 1          | 2.40
        """),
    )
    sd = [r["sd_ca_corrected_mmol_l"] for r in story.rows("calcium_trajectory_summary")]
    assert sd == [None, None, None, 0.070711, None]  # sd of 2.10 and 2.20; one result: none


STAY_FOR_TRAJECTORY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""


def test_trajectory_mean_is_the_same_bits_whatever_the_row_order() -> None:
    # A mean that floating-point sums make order-dependent: 32 corrected Ca in bin [0, 12) of one
    # analysed stay, every 20 min from the index draw (1.80 mmol/L, with albumin 40 g/L
    # beside it) on, and an outcome at 48 h. Their sum is 63.57 mmol/L, so the mean,
    # 63.57 / 32 = 1.9865625, lies exactly on a 6th-decimal rounding boundary: a
    # floating-point AVG gives 1.986562 or 1.986563 depending on the order the rows are
    # summed in (which changes with the source file's row order and between re-runs).
    # Exact decimal sums give one answer every time (rounded half away from zero).
    values = [round(1.80 + 0.01 * ((i * 7) % 40), 2) for i in range(31)] + [2.02]
    assert round(sum(values), 2) == 63.57
    draws = [
        f"p1 | e1 | d1 {10 + (20 * i) // 60:02d}:{(20 * i) % 60:02d} | calcium_total | {v} | mmol/L"
        for i, v in enumerate(values)
    ]
    header = "subject_id | encounter_id | time | analyte | value | unit"
    fixed = [
        "p1 | e1 | d1 06:00 | creatinine    | 90   | umol/L",
        "p1 | e1 | d1 08:00 | magnesium     | 0.55 | mmol/L",
        "p1 | e1 | d1 10:00 | albumin       | 40   | g/L",
        "p1 | e1 | d3 10:00 | calcium_total | 2.30 | mmol/L",
        "p1 | e1 | d3 10:00 | albumin       | 40   | g/L",
    ]
    means = set()
    for rows in (fixed + draws, list(reversed(draws)) + fixed):
        story = build(encounters=STAY_FOR_TRAJECTORY, labs="\n".join([header, *rows]))
        for _ in range(3):
            means.add(
                story.value(
                    "SELECT mean_ca_corrected_mmol_l FROM calcium_trajectory_summary "
                    "WHERE hours_bin_start = 0"
                )
            )
            derive(story.con)
    assert means == {1.986563}

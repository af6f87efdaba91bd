"""index_events, index_exposure and the exposure/eligibility columns of analytic_cohort.

Most stories share one qualifying stay: Mg 0.55 mmol/L at d1 08:00 and total Ca 1.90 with
albumin 30 g/L at d1 10:00 (corrected 1.90 + 0.02 x 10 = 2.10 mmol/L), so time zero is
d1 10:00 (the later draw). Creatinine 90 at d1 06:00 is the baseline; the outcome is the
corrected Ca 2.20 + 0.2 = 2.40 drawn at d3 10:00, exactly 48 h later. Grace period 6 h.
"""

from __future__ import annotations

import pytest
from helpers.stories import assert_rows, at, build, expect, expect_one

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""

QUALIFYING_LABS = """
subject_id | encounter_id | time     | analyte       | value | unit
p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
p1         | e1           | d1 10:00 | albumin       | 30    | g/L
p1         | e1           | d3 10:00 | calcium_total | 2.20  | mmol/L
p1         | e1           | d3 10:00 | albumin       | 30    | g/L
"""

MEDS_HEADER = """
subject_id | encounter_id | time     | ingredient        | dose | dose_unit | route | given
"""

EXPOSURE = ["encounter_id", "exposed", "hours_to_first_mg", "mg_dose_grace_mmol"]


def test_mg_given_two_hours_after_index_is_exposure() -> None:
    # 2 g MgSO4 hung at 12:00, 2 h after the qualifying calcium: exposed, 2 x 4.06 = 8.12
    # mmol elemental Mg. The whole analytic row, as the model will read it:
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort"),
        expect_one("""
        subject_id                   | p1
        encounter_id                 | e1
        index_time                   | d1 10:00
        exposed                      | true
        hours_to_first_mg            | 2.0
        mg_dose_grace_mmol           | 8.12
        age_years                    | 70
        sex                          | F
        baseline_mg_mmol_l           | 0.55
        baseline_ca_corrected_mmol_l | 2.10
        baseline_ca_total_mmol_l     | 1.90
        baseline_albumin_g_l         | 30
        baseline_creatinine_umol_l   | 90
        baseline_potassium_mmol_l    | -
        baseline_phosphate_mmol_l    | -
        ppi_before_index             | false
        loop_diuretic_before_index   | false
        calcium_before_index         | false
        calcium_in_grace             | false
        outcome_ca_corrected_mmol_l  | 2.40
        outcome_hours_from_index     | 48.0
        thiazide_before_index           | false
        nephrotoxic_drug_before_index   | false
        vitamin_d_analogue_before_index | false
        calcium_dose_grace_mmol         | 0
        mg_route_grace                  | iv
        baseline_ca_ionized_mmol_l      | -
        outcome_ca_ionized_mmol_l       | -
        index_calcium_measure           | corrected_same_day_albumin
        outcome_calcium_measure         | corrected_same_day_albumin
        icu_at_index                    | -
        vasopressor_at_index            | -
        """),
    )
    cohort_columns = [row[0] for row in story.con.execute("DESCRIBE analytic_cohort").fetchall()]
    assert len(cohort_columns) == 32  # exactly the cohort.parquet columns of ARCHITECTURE.md


def test_mg_ordered_but_not_given_is_not_exposure() -> None:
    # The eMAR shows the 2 g MgSO4 as ordered but not administered: the patient is unexposed,
    # the row never reaches mg_repletion, and data_quality counts it.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv    | false
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
    assert story.rows(
        "data_quality",
        ["analyte", "n_rows", "n_flagged"],
        where="check_name = 'not_given'",
    ) == [{"analyte": "magnesium_sulfate", "n_rows": 1, "n_flagged": 1}]


@pytest.mark.parametrize("given_at", ["d1 09:00", "d1 10:00"])
def test_mg_given_before_or_exactly_at_index_excludes_the_stay(given_at: str) -> None:
    # Mg already running when the calcium comes back low (or hung at the very minute of the
    # qualifying draw) makes this a prevalent user: excluded at step 8, and that dose is
    # never counted as exposure.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + f"""
        p1         | e1           | {given_at} | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows("index_exposure", ["index_time", "prior_mg_repletion", "exposed"]),
        expect("""
        index_time | prior_mg_repletion | exposed
        d1 10:00   | true               | false
        """),
    )
    assert story.excluded_at("e1") == 8
    assert story.rows("analytic_cohort") == []


@pytest.mark.parametrize(("given_at", "excluded_at"), [("d1 09:00", 8), ("d16 09:00", None)])
def test_mg_dose_without_encounter_id_belongs_to_the_stay_it_was_given_in(
    given_at: str, excluded_at: int | None
) -> None:
    # The eMAR row of a MgSO4 dose lost its stay link. Given at 09:00 during the stay, an hour
    # before index, it still makes a prevalent user (step 8); given a week after discharge it
    # belongs to no stay and the episode is analysed as usual.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + f"""
        p1         | -            | {given_at} | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert story.excluded_at("e1") == excluded_at


@pytest.mark.parametrize(
    ("given_at", "expected"),
    [
        # index + 6 h exactly: inside the grace period
        ("d1 16:00", "e1 | true  | 6.0 | 8.12"),
        # index + 6 h 1 min: after the grace period, unexposed (and still eligible)
        ("d1 16:01", "e1 | false | -   | 0"),
    ],
)
def test_grace_period_includes_its_last_minute_and_nothing_after(
    given_at: str, expected: str
) -> None:
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + f"""
        p1         | e1           | {given_at} | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort", EXPOSURE),
        expect("encounter_id | exposed | hours_to_first_mg | mg_dose_grace_mmol\n" + expected),
    )


def test_elemental_mg_from_grams_milligrams_mmol_and_meq() -> None:
    # In the grace period: MgO 400 mg by mouth (0.4 g x 24.8 = 9.92 mmol), MgSO4 16 mEq
    # (16 / 2 = 8 mmol), MgSO4 10 mmol (kept) and MgSO4 1000 mg (1 g x 4.06 = 4.06 mmol):
    # 31.98 mmol, first dose 1 h after index, by mouth and IV.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 11:00 | magnesium_oxide   | 400  | mg        | oral  | true
        p1         | e1           | d1 12:00 | magnesium_sulfate | 16   | mEq       | iv    | true
        p1         | e1           | d1 13:00 | magnesium_sulfate | 10   | mmol      | iv    | true
        p1         | e1           | d1 14:00 | magnesium_sulfate | 1000 | mg        | iv    | true
        """,
    )
    assert_rows(
        story.rows("mg_repletion", ["time", "ingredient", "elemental_mg_mmol"]),
        expect("""
        time     | ingredient        | elemental_mg_mmol
        d1 11:00 | magnesium_oxide   | 9.92
        d1 12:00 | magnesium_sulfate | 8
        d1 13:00 | magnesium_sulfate | 10
        d1 14:00 | magnesium_sulfate | 4.06
        """),
    )
    assert_rows(
        story.rows("analytic_cohort", [*EXPOSURE, "mg_route_grace"]),
        expect("""
        encounter_id | exposed | hours_to_first_mg | mg_dose_grace_mmol | mg_route_grace
        e1           | true    | 1.0               | 31.98              | both
        """),
    )


def test_given_mg_with_unknown_dose_unit_is_exposure_of_unknown_amount() -> None:
    # "1 tablet" of MgO was given: the patient is exposed, but the amount is unknown, so the
    # grace-period dose is null rather than a wrong number, and data_quality says why.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 11:00 | magnesium_oxide   | 1    | tablet    | oral  | true
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort", EXPOSURE),
        expect("""
        encounter_id | exposed | hours_to_first_mg | mg_dose_grace_mmol
        e1           | true    | 1.0               | -
        """),
    )
    flagged = story.rows(
        "data_quality",
        ["check_name", "analyte", "n_rows", "n_flagged"],
        where="check_name IN ('unknown_dose_unit', 'elemental_dose_unknown')",
    )
    assert_rows(
        flagged,
        expect("""
        check_name             | analyte           | n_rows | n_flagged
        elemental_dose_unknown | magnesium_oxide   | 1      | 1
        elemental_dose_unknown | magnesium_sulfate | 1      | 0
        unknown_dose_unit      | magnesium_oxide   | 1      | 1
        unknown_dose_unit      | magnesium_sulfate | 1      | 0
        """),
    )


@pytest.mark.parametrize(
    ("mg_row", "index_time"),
    [
        # low Mg 6 h before the low Ca: concurrent (the window's edge is included)
        ("p1 | e1 | d1 04:00 | magnesium | 0.55 | mmol/L", "d1 10:00"),
        # 6 h 1 min before: not concurrent, no index
        ("p1 | e1 | d1 03:59 | magnesium | 0.55 | mmol/L", None),
        # low Mg drawn 6 h after the low Ca: index at the later draw, the Mg
        ("p1 | e1 | d1 16:00 | magnesium | 0.55 | mmol/L", "d1 16:00"),
    ],
)
def test_concurrent_means_both_low_draws_within_6_hours(
    mg_row: str, index_time: str | None
) -> None:
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte       | value | unit
        p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
        p1         | e1           | d1 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d1 10:00 | albumin       | 30    | g/L
        """
        + mg_row,
    )
    found = [r["index_time"] for r in story.rows("index_events")]
    assert found == ([] if index_time is None else [at(index_time)])
    if index_time is None:
        assert story.excluded_at("e1") == 3


def test_magnesium_already_back_to_normal_does_not_qualify() -> None:
    # Mg 0.55 at 08:00 was re-checked 0.80 at 09:00; when the calcium comes back low at 10:00
    # the patient is no longer hypomagnesaemic: no index event, although the 08:00 value was
    # low and within 6 h of the calcium.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1         | e1           | d1 09:00 | magnesium     | 0.80  | mmol/L
        """,
    )
    assert story.rows("index_events") == []
    assert story.excluded_at("e1") == 3


@pytest.mark.parametrize(
    ("mg", "ca_total", "albumin"),
    [
        (0.70, 1.90, 30),  # Mg at the threshold, corrected Ca 2.10 low
        (0.55, 2.05, 35),  # Mg low, corrected Ca exactly 2.15
    ],
)
def test_values_at_thresholds_are_not_low(mg: float, ca_total: float, albumin: float) -> None:
    story = build(
        encounters=STAY,
        labs=f"""
        subject_id | encounter_id | time     | analyte       | value      | unit
        p1         | e1           | d1 08:00 | magnesium     | {mg}       | mmol/L
        p1         | e1           | d1 10:00 | calcium_total | {ca_total} | mmol/L
        p1         | e1           | d1 10:00 | albumin       | {albumin}  | g/L
        """,
    )
    assert story.rows("index_events") == []


@pytest.mark.parametrize(("age", "excluded_at"), [("16", 4), ("-", 4), ("17.9", 4), ("18", None)])
def test_children_and_unknown_ages_are_excluded(age: str, excluded_at: int | None) -> None:
    # A 16-year-old (or a stay whose age nobody recorded) is not in the adult cohort; an
    # 18-year-old is.
    story = build(
        encounters=f"""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d9 00:00       | {age}
        """,
        labs=QUALIFYING_LABS,
    )
    assert story.excluded_at("e1") == excluded_at


def test_a_patient_with_two_stays_has_one_episode_per_stay() -> None:
    # p1 is admitted twice. Stay 1: Mg given 2 h after index (exposed). Stay 2, three weeks
    # later: no Mg (unexposed). The stay-1 dose is not "Mg before index" for stay 2.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d9 00:00       | 70
        e2           | p1         | d20 00:00  | d29 00:00      | 70
        """,
        labs=QUALIFYING_LABS
        + """
        p1         | e2           | d21 06:00 | creatinine    | 110   | umol/L
        p1         | e2           | d21 08:00 | magnesium     | 0.60  | mmol/L
        p1         | e2           | d21 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e2           | d21 10:00 | albumin       | 30    | g/L
        p1         | e2           | d23 10:00 | calcium_total | 2.10  | mmol/L
        p1         | e2           | d23 10:00 | albumin       | 30    | g/L
        """,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows(
            "analytic_cohort", ["encounter_id", "index_time", "exposed", "mg_dose_grace_mmol"]
        ),
        expect("""
        encounter_id | index_time | exposed | mg_dose_grace_mmol
        e1           | d1 10:00   | true    | 8.12
        e2           | d21 10:00  | false   | 0
        """),
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "encounter_id",
                "baseline_mg_mmol_l",
                "baseline_creatinine_umol_l",
                "outcome_ca_corrected_mmol_l",
            ],
        ),
        expect("""
        encounter_id | baseline_mg_mmol_l | baseline_creatinine_umol_l | outcome_ca_corrected_mmol_l
        e1           | 0.55               | 90                         | 2.40
        e2           | 0.60               | 110                        | 2.30
        """),
    )


def test_mg_route_in_the_grace_period_iv_oral_or_both() -> None:
    # Three stays with the same qualifying labs (index d1 10:00).
    # e1: MgO 400 mg by mouth at 11:00 (9.92 mmol) and MgSO4 2 g IV at 12:00 (8.12): 'both',
    #     18.04 mmol. e2: only MgO 800 mg, route written "Oral" (lower cased): 'oral',
    #     19.84 mmol. e3: no Mg: unexposed, route null.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d9 00:00       | 70
        e2           | p2         | d1 00:00   | d9 00:00       | 70
        e3           | p3         | d1 00:00   | d9 00:00       | 70
        """,
        labs=QUALIFYING_LABS
        + QUALIFYING_LABS.split("\n", 2)[2].replace("p1 ", "p2 ").replace("e1 ", "e2 ")
        + QUALIFYING_LABS.split("\n", 2)[2].replace("p1 ", "p3 ").replace("e1 ", "e3 "),
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 11:00 | magnesium_oxide   | 400  | mg        | oral   | true
        p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv     | true
        p2         | e2           | d1 11:00 | magnesium_oxide   | 800  | mg        | Oral   | true
        """,
    )
    assert_rows(
        story.rows(
            "analytic_cohort", ["encounter_id", "exposed", "mg_route_grace", "mg_dose_grace_mmol"]
        ),
        expect("""
        encounter_id | exposed | mg_route_grace | mg_dose_grace_mmol
        e1           | true    | both           | 18.04
        e2           | true    | oral           | 19.84
        e3           | false   | -              | 0
        """),
    )


def test_calcium_given_in_the_grace_period_in_mmol_of_elemental_calcium() -> None:
    # After index (d1 10:00), within the 6 h grace period: calcium gluconate 1 g IV
    # (2.23 mmol), calcium chloride 1000 mg (6.8 mmol), calcium carbonate 1250 mg by mouth
    # (1.25 g x 9.99 = 12.4875 mmol) and calcium gluconate 10 mEq (10 / 2 = 5 mmol): 26.5175
    # mmol. A calcium gluconate ordered at 13:00 but not given and one at 16:01 (after the
    # grace period) do not count. Post-index: descriptive only, never adjusted for.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 11:00 | calcium_gluconate | 1    | g         | iv    | true
        p1         | e1           | d1 12:00 | calcium_chloride  | 1000 | mg        | iv    | true
        p1         | e1           | d1 13:00 | calcium_carbonate | 1250 | mg        | oral  | true
        p1         | e1           | d1 13:00 | calcium_gluconate | 1    | g         | iv    | false
        p1         | e1           | d1 14:00 | calcium_gluconate | 10   | mEq       | iv    | true
        p1         | e1           | d1 16:01 | calcium_gluconate | 1    | g         | iv    | true
        """,
    )
    assert_rows(
        story.rows("calcium_supplementation", ["time", "ingredient", "elemental_ca_mmol"]),
        expect("""
        time     | ingredient        | elemental_ca_mmol
        d1 11:00 | calcium_gluconate | 2.23
        d1 12:00 | calcium_chloride  | 6.8
        d1 13:00 | calcium_carbonate | 12.4875
        d1 14:00 | calcium_gluconate | 5
        d1 16:01 | calcium_gluconate | 2.23
        """),
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            ["calcium_in_grace", "calcium_dose_grace_mmol", "calcium_before_index", "exposed"],
        ),
        expect("""
        calcium_in_grace | calcium_dose_grace_mmol | calcium_before_index | exposed
        true             | 26.5175                 | false                | false
        """),
    )


def test_calcium_of_unknown_amount_in_grace_gives_an_unknown_dose() -> None:
    # Calcium gluconate "1 ampoule": given, so calcium_in_grace, but of unknown amount.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + """
        p1         | e1           | d1 11:00 | calcium_gluconate | 1    | ampoule   | iv    | true
        """,
    )
    assert_rows(
        story.rows("analytic_cohort", ["calcium_in_grace", "calcium_dose_grace_mmol"]),
        expect("""
        calcium_in_grace | calcium_dose_grace_mmol
        true             | -
        """),
    )
    assert story.rows(
        "data_quality",
        ["table_name", "analyte", "n_rows", "n_flagged"],
        where="check_name = 'elemental_dose_unknown'",
    ) == [
        {"table_name": "calcium_supplementation", "analyte": "calcium_gluconate",
         "n_rows": 1, "n_flagged": 1},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ingredient", "time", "given", "encounter", "failed_step"),
    [
        # obstetric MgSO4 the day before, at the last minute of the grace period, unlinked
        # but inside the stay: excluded at step 5; one minute after the grace period, or
        # charted but not given: the stay stays in (unexposed: it is not Mg repletion)
        ("magnesium_sulfate_obstetric", "d1 01:00", "true", "e1", 5),
        ("magnesium_sulfate_obstetric", "d1 16:00", "true", "e1", 5),
        ("magnesium_sulfate_obstetric", "d1 12:00", "true", "-", 5),
        ("magnesium_sulfate_obstetric", "d1 16:01", "true", "e1", None),
        ("magnesium_sulfate_obstetric", "d1 12:00", "false", "e1", None),
        # citrate-CRRT calcium: the same window, step 6
        ("citrate_crrt", "d1 09:00", "true", "e1", 6),
        ("citrate_crrt", "d1 16:00", "true", "e1", 6),
        ("citrate_crrt", "d1 16:01", "true", "e1", None),
    ],
)
def test_obstetric_mg_and_crrt_citrate_by_the_end_of_grace_exclude_the_stay(
    ingredient: str, time: str, given: str, encounter: str, failed_step: int | None
) -> None:
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS,
        meds=MEDS_HEADER
        + f"""
        p1 | {encounter} | {time} | {ingredient} | 4 | g | iv | {given}
        """,
    )
    assert story.excluded_at("e1") == failed_step
    if failed_step is None:
        assert story.rows("analytic_cohort", ["exposed", "calcium_in_grace"]) == [
            {"exposed": False, "calcium_in_grace": False}
        ]

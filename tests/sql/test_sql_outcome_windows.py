"""Windows around time zero: the outcome (48 h +/- 12 h), baseline labs (24 h before) and
drugs before index (7 days; calcium 24 h).

The qualifying stay: Mg 0.55 at d1 08:00, total Ca 1.90 + albumin 30 g/L at d1 10:00
(corrected 2.10): index d1 10:00. Every later calcium has albumin 40 g/L beside it, so its
corrected value equals its total.
"""

from __future__ import annotations

import pytest
from helpers.stories import QUALIFYING_LABS, assert_rows, build, calcium_at, expect, expect_one
from pydantic import ValidationError

from mgca.config import StudyConfig

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""



@pytest.mark.parametrize(
    ("draws", "outcome", "hours"),
    [
        # 46 h (2 h early) and 49 h (1 h late): the nearer one, 49 h
        ([("d3 08:00", 2.30), ("d3 11:00", 2.35)], 2.35, 49.0),
        # 44 h and 52 h are both 4 h from the horizon: the tie goes to the earlier draw
        ([("d3 06:00", 2.30), ("d3 14:00", 2.35)], 2.30, 44.0),
        # exactly 36 h and exactly 60 h are inside the +/- 12 h window: 36 h is a tie, earlier
        ([("d2 22:00", 2.25), ("d3 22:00", 2.45)], 2.25, 36.0),
        # 35 h 59 min and 60 h 1 min are both outside: no outcome
        ([("d2 21:59", 2.25), ("d3 22:01", 2.45)], None, None),
        # a draw at 24 h is far from the horizon: no outcome either
        ([("d2 10:00", 2.25)], None, None),
    ],
)
def test_outcome_is_the_calcium_nearest_48_hours_within_12(
    draws: list[tuple[str, float]], outcome: float | None, hours: float | None
) -> None:
    story = build(encounters=STAY, labs=QUALIFYING_LABS + calcium_at(*draws))
    assert story.rows(
        "index_outcome", ["outcome_ca_corrected_mmol_l", "outcome_hours_from_index"]
    ) == [{"outcome_ca_corrected_mmol_l": outcome, "outcome_hours_from_index": hours}]
    # without an outcome the episode is not analysed: excluded at the last step
    assert story.excluded_at("e1") == (None if outcome is not None else 10)


def test_outcome_after_discharge_in_another_stay_does_not_count() -> None:
    # Discharged on day 2; the calcium 48 h after index was drawn at a readmission: the
    # episode has no outcome (discharged before the horizon) and leaves at step 10.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d2 12:00       | 70
        e2           | p1         | d3 00:00   | d5 00:00       | 70
        """,
        labs=QUALIFYING_LABS
        + """
        p1 | e2 | d3 10:00 | calcium_total | 2.30 | mmol/L
        p1 | e2 | d3 10:00 | albumin       | 40   | g/L
        """,
    )
    assert story.excluded_at("e1") == 10


@pytest.mark.parametrize(
    ("creatinine_at", "excluded_at"),
    [("d0 10:00", None), ("d0 09:59", 9), ("d1 11:00", 9)],
)
def test_baseline_creatinine_is_looked_for_in_the_24_hours_up_to_index(
    creatinine_at: str, excluded_at: int | None
) -> None:
    # Exactly 24 h before index counts; 24 h 1 min before does not; a creatinine drawn after
    # index is no baseline. Without one the stay leaves at step 9.
    story = build(
        encounters=STAY,
        labs=f"""
        subject_id | encounter_id | time            | analyte       | value | unit
        p1         | e1           | {creatinine_at} | creatinine    | 90    | umol/L
        p1         | e1           | d1 08:00        | magnesium     | 0.55  | mmol/L
        p1         | e1           | d1 10:00        | calcium_total | 1.90  | mmol/L
        p1         | e1           | d1 10:00        | albumin       | 30    | g/L
        """
        + calcium_at(("d3 10:00", 2.30)),
    )
    assert story.excluded_at("e1") == excluded_at


def test_baseline_labs_are_the_last_value_in_the_lookback() -> None:
    # Creatinine 90 at 06:00 and 120 at 09:00: the baseline is the later, 120. Potassium
    # 3.2 mEq/L (= 3.2 mmol/L) drawn at the index minute itself still counts. Phosphate was
    # last drawn 25 h before index (before admission, linked to the stay by the source):
    # outside the lookback, no baseline phosphate.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1 | e1 | d1 09:00 | creatinine | 120 | umol/L
        p1 | e1 | d1 10:00 | potassium  | 3.2 | mEq/L
        p1 | e1 | d0 09:00 | phosphate  | 1.1 | mmol/L
        """
        + calcium_at(("d3 10:00", 2.30)),
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "baseline_creatinine_umol_l",
                "baseline_potassium_mmol_l",
                "baseline_phosphate_mmol_l",
            ],
        ),
        expect("""
        baseline_creatinine_umol_l | baseline_potassium_mmol_l | baseline_phosphate_mmol_l
        120                        | 3.2                       | -
        """),
    )


def test_drugs_before_index_and_calcium_in_the_grace_period() -> None:
    # Index d10 10:00 in a long stay.
    # - omeprazole 6 days before (144 h, inside 7 days): PPI before index.
    # - furosemide 7 days and 1 min before: outside the 168 h lookback; a furosemide dose
    #   the day before was never given: no loop diuretic before index.
    # - calcium gluconate 23 h before: calcium before index (24 h window).
    # - calcium chloride 2 h after index: calcium in the grace period (descriptive only).
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d20 00:00      | 70
        """,
        labs="""
        subject_id | encounter_id | time      | analyte       | value | unit
        p1         | e1           | d10 06:00 | creatinine    | 90    | umol/L
        p1         | e1           | d10 08:00 | magnesium     | 0.55  | mmol/L
        p1         | e1           | d10 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d10 10:00 | albumin       | 30    | g/L
        p1         | e1           | d12 10:00 | calcium_total | 2.30  | mmol/L
        p1         | e1           | d12 10:00 | albumin       | 40    | g/L
        """,
        meds="""
        subject_id | encounter_id | time      | ingredient        | dose | dose_unit | given
        p1         | e1           | d4 10:00  | omeprazole        | 40   | mg        | true
        p1         | e1           | d3 09:59  | furosemide        | 40   | mg        | true
        p1         | e1           | d9 10:00  | furosemide        | 40   | mg        | false
        p1         | e1           | d9 11:00  | calcium_gluconate | 1    | g         | true
        p1         | e1           | d10 12:00 | calcium_chloride  | 1    | g         | true
        """,
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "ppi_before_index",
                "loop_diuretic_before_index",
                "calcium_before_index",
                "calcium_in_grace",
                "exposed",
            ],
        ),
        expect_one("""
        ppi_before_index           | true
        loop_diuretic_before_index | false
        calcium_before_index       | true
        calcium_in_grace           | true
        exposed                    | false
        """),
    )


def test_hypomagnesaemia_causing_drugs_and_vitamin_d_before_index() -> None:
    # Index d10 10:00. Given in the 7 days before index:
    # - hydrochlorothiazide 3 days before: thiazide before index.
    # - gentamicin (an aminoglycoside) 5 days before: nephrotoxic drug before index.
    # - calcitriol 0.25 mcg 2 days before: vitamin D analogue before index.
    # Not counted: ciclosporin given 8 days before (outside 168 h), tacrolimus ordered but
    # not given, amphotericin B 2 h after index (post-index, never a covariate).
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time | age_years
        e1           | p1         | d1 00:00   | d20 00:00      | 70
        """,
        labs="""
        subject_id | encounter_id | time      | analyte       | value | unit
        p1         | e1           | d10 06:00 | creatinine    | 90    | umol/L
        p1         | e1           | d10 08:00 | magnesium     | 0.55  | mmol/L
        p1         | e1           | d10 10:00 | calcium_total | 1.90  | mmol/L
        p1         | e1           | d10 10:00 | albumin       | 30    | g/L
        p1         | e1           | d12 10:00 | calcium_total | 2.30  | mmol/L
        p1         | e1           | d12 10:00 | albumin       | 40    | g/L
        """,
        meds="""
        subject_id | encounter_id | time      | ingredient          | dose | dose_unit | given
        p1         | e1           | d7 10:00  | hydrochlorothiazide | 25   | mg        | true
        p1         | e1           | d5 10:00  | gentamicin          | 320  | mg        | true
        p1         | e1           | d8 10:00  | calcitriol          | 0.25 | mcg       | true
        p1         | e1           | d2 09:00  | ciclosporin         | 100  | mg        | true
        p1         | e1           | d9 10:00  | tacrolimus          | 2    | mg        | false
        p1         | e1           | d10 12:00 | amphotericin_b      | 50   | mg        | true
        """,
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "thiazide_before_index",
                "nephrotoxic_drug_before_index",
                "vitamin_d_analogue_before_index",
                "ppi_before_index",
                "loop_diuretic_before_index",
            ],
        ),
        expect_one("""
        thiazide_before_index           | true
        nephrotoxic_drug_before_index   | true
        vitamin_d_analogue_before_index | true
        ppi_before_index                | false
        loop_diuretic_before_index      | false
        """),
    )


@pytest.mark.parametrize(
    ("drug", "expected"),
    [
        ("cisplatin", True),
        ("tobramycin", True),
        ("amikacin", True),
        ("amphotericin_b", True),
        ("cyclosporine", True),
        ("Ciclosporin", True),
        ("tacrolimus", True),
        ("omeprazole", False),  # a PPI: its own covariate, not a nephrotoxin
    ],
)
def test_every_renal_magnesium_wasting_drug_is_a_nephrotoxic_drug(
    drug: str, expected: bool
) -> None:
    # One dose the day before index (d1 10:00): the ingredient list decides, whatever its
    # spelling (INN ciclosporin or US cyclosporine, any case).
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.30)),
        meds=f"""
        subject_id | encounter_id | time     | ingredient | dose | dose_unit
        p1         | e1           | d0 10:00 | {drug}     | 1    | mg
        """,
    )
    assert story.value("SELECT nephrotoxic_drug_before_index FROM analytic_cohort") is expected


@pytest.mark.parametrize(("lookback", "expected"), [(24, False), (36, True)])
def test_calcium_before_index_uses_its_own_lookback(lookback: int, expected: bool) -> None:
    # Calcium gluconate 30 h before index: outside the default 24 h calcium lookback, inside
    # a 36 h one; baseline labs keep their own 24 h lookback (creatinine still found).
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.30)),
        meds="""
        subject_id | encounter_id | time     | ingredient        | dose | dose_unit
        p1         | e1           | d0 04:00 | calcium_gluconate | 1    | g
        """,
        calcium_lookback_hours=lookback,
    )
    assert_rows(
        story.rows("analytic_cohort", ["calcium_before_index", "baseline_creatinine_umol_l"]),
        expect(f"""
        calcium_before_index | baseline_creatinine_umol_l
        {str(expected).lower()} | 90
        """),
    )


def test_outcomes_at_every_horizon_within_tolerance_corrected_and_ionized() -> None:
    # Index d1 10:00 (the corrected 2.10 with Mg 0.55 at 08:00); horizons 24, 48 and 72 h
    # (+/- 12 h). Later calcium:
    # - corrected 2.25 at d2 09:00 (23 h): the 24 h outcome;
    # - corrected 2.30 at d3 10:00 (48 h): the 48 h outcome (and the primary one), with an
    #   albumin drawn beside it: 'corrected_same_day_albumin';
    # - ionized 1.18 at d3 11:00 (49 h): the 48 h ionized outcome;
    # - corrected 2.40 at d4 23:00 (85 h): 13 h from 72 h, outside the tolerance: no 72 h
    #   outcome at all.
    # An ionized value before index would be the reference measure of that calcium draw
    # (index_events.sql hierarchy) and could move time zero, so the only one here is 1.30
    # (normal) at d1 07:00, more than an hour before the 10:00 calcium: the corrected Ca
    # still decides, and no ionized Ca stands beside it (baseline ionized null).
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1 | e1 | d1 07:00 | calcium_ionized | 1.30 | mmol/L
        p1 | e1 | d3 11:00 | calcium_ionized | 1.18 | mmol/L
        """
        + calcium_at(("d2 09:00", 2.25), ("d3 10:00", 2.30), ("d4 23:00", 2.40)),
    )
    assert_rows(
        story.rows(
            "cohort_outcomes",
            ["index_time", "horizon_hours", "calcium_measure", "value_mmol_l", "hours_from_index"],
        ),
        expect("""
        index_time | horizon_hours | calcium_measure | value_mmol_l | hours_from_index
        d1 10:00   | 24            | corrected       | 2.25         | 23.0
        d1 10:00   | 48            | corrected       | 2.30         | 48.0
        d1 10:00   | 48            | ionized         | 1.18         | 49.0
        """),
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "outcome_ca_corrected_mmol_l",
                "outcome_hours_from_index",
                "outcome_ca_ionized_mmol_l",
                "baseline_ca_ionized_mmol_l",
                "index_calcium_measure",
                "outcome_calcium_measure",
            ],
        ),
        expect_one("""
        outcome_ca_corrected_mmol_l | 2.30
        outcome_hours_from_index    | 48.0
        outcome_ca_ionized_mmol_l   | 1.18
        baseline_ca_ionized_mmol_l  | -
        index_calcium_measure       | corrected_same_day_albumin
        outcome_calcium_measure     | corrected_same_day_albumin
        """),
    )


def test_baseline_ionized_is_the_qualifying_ionized_when_it_defined_the_index() -> None:
    # Mg 0.55 at 08:00 and ionized 1.02 (low) at 09:30: the ionized tier indexes at 09:30,
    # 30 min before the corrected 2.10 at 10:00 would have. The qualifying ionized is the
    # baseline ionized Ca; the 10:00 total is after time zero, so no baseline corrected Ca.
    # Outcomes are measured from 09:30: corrected 2.30 at d3 10:00 is 48.5 h.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + """
        p1 | e1 | d1 09:30 | calcium_ionized | 1.02 | mmol/L
        """
        + calcium_at(("d3 10:00", 2.30)),
    )
    assert_rows(
        story.rows(
            "analytic_cohort",
            [
                "index_time",
                "index_calcium_measure",
                "baseline_ca_ionized_mmol_l",
                "baseline_ca_corrected_mmol_l",
                "outcome_ca_corrected_mmol_l",
                "outcome_hours_from_index",
            ],
        ),
        expect_one("""
        index_time                   | d1 09:30
        index_calcium_measure        | ionized
        baseline_ca_ionized_mmol_l   | 1.02
        baseline_ca_corrected_mmol_l | -
        outcome_ca_corrected_mmol_l  | 2.30
        outcome_hours_from_index     | 48.5
        """),
    )


def test_horizons_come_from_the_config_list_plus_the_primary_one() -> None:
    # outcome_horizons_hours = [72] with the primary horizon_hours 48: both are read, the
    # 48 h flagged primary; a draw at 60 h is exactly 12 h from both and serves both.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d3 22:00", 2.30)),
        outcome_horizons_hours=[72],
    )
    assert story.rows("study_outcome_horizons") == [
        {"horizon_hours": 48, "is_primary": True},
        {"horizon_hours": 72, "is_primary": False},
    ]
    assert_rows(
        story.rows("cohort_outcomes", ["horizon_hours", "value_mmol_l", "hours_from_index"]),
        expect("""
        horizon_hours | value_mmol_l | hours_from_index
        48            | 2.30         | 60.0
        72            | 2.30         | 60.0
        """),
    )


@pytest.mark.parametrize("horizons", [(12, 48), (18,)])
def test_every_outcome_horizon_must_open_after_the_grace_period(horizons: tuple[int, ...]) -> None:
    # grace 6 h, tolerance 12 h: a 12 h horizon would read outcomes from 0 h, an 18 h one
    # from 6 h, the grace period's last minute: both could be measured before exposure is
    # decided, so the config is refused.
    with pytest.raises(ValidationError, match="grace"):
        StudyConfig(outcome_horizons_hours=horizons)
    assert StudyConfig(outcome_horizons_hours=(19, 48)).outcome_horizons_hours == (19, 48)

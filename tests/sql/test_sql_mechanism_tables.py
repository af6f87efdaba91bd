"""Fixed-look calcium correction and the effect modifiers, by patient stories.

The qualifying stay (as in test_sql_secondary_tables): Mg 0.55 at d1 08:00, total Ca 1.90 +
albumin 30 g/L at d1 10:00 (corrected 2.10): index d1 10:00. Every later calcium has albumin
40 g/L beside it, so its corrected value equals its total. The looks are at 24, 48 and 72 h
(d2, d3, d4 10:00), each taking the draw nearest to it within ± 12 h.
"""

from __future__ import annotations

from helpers.stories import QUALIFYING_LABS, assert_rows, build, calcium_at, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d6 00:00       | 70
"""

LOOKS = ["n_looks", "n_looks_observed", "n_looks_normal", "corrected_at_fixed_looks"]


def test_each_look_takes_the_nearest_draw_so_extra_rechecks_add_no_chance() -> None:
    # 24 h look: 2.05 at exactly 24 h; a normal re-check at 30 h is farther from it (and
    # from the 48 h look than the 2.10 at 47 h); 72 h look: 2.12. Never normal at a look,
    # although a normal draw (30 h) is inside the 72-h window.
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(
            ("d2 10:00", 2.05), ("d2 16:00", 2.20), ("d3 09:00", 2.10), ("d4 10:00", 2.12)
        ),
    )
    assert_rows(
        story.rows("index_calcium_fixed_looks", LOOKS),
        expect("""
        n_looks | n_looks_observed | n_looks_normal | corrected_at_fixed_looks
        3       | 3                | 0              | false
        """),
    )
    assert story.value("SELECT corrected_within_window FROM index_calcium_correction") is True


def test_a_normal_look_corrects_and_a_missing_look_leaves_the_outcome_unknown() -> None:
    # normal at 48 h, every look observed: corrected
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS
        + calcium_at(("d2 12:00", 2.05), ("d3 10:00", 2.15), ("d4 08:00", 2.10)),
    )
    assert story.value("SELECT corrected_at_fixed_looks FROM index_calcium_fixed_looks") is True
    # no draw within 12 h of the 72-h look (the last one at 48 h): unknown, though normal
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d2 10:00", 2.05), ("d3 10:00", 2.20)),
    )
    assert_rows(
        story.rows("index_calcium_fixed_looks", LOOKS),
        expect("""
        n_looks | n_looks_observed | n_looks_normal | corrected_at_fixed_looks
        3       | 2                | 1              | -
        """),
    )


def test_an_eligible_episode_without_the_primary_outcome_still_has_its_looks() -> None:
    # draws at 24 h and 72 h only: no corrected Ca within 48 h ± 12 h, so the episode is
    # eligible but not analysed; its looks are still read (two of three), so the analysis can
    # weight it back (inverse probability of every look being read) instead of losing it
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d2 10:00", 2.20), ("d4 10:00", 2.25)),
    )
    assert story.value("SELECT COUNT(*) FROM analytic_cohort") == 0
    assert story.value("SELECT outcome_observed FROM eligible_episodes") is False
    assert_rows(
        story.rows("index_calcium_fixed_looks", LOOKS),
        expect("""
        n_looks | n_looks_observed | n_looks_normal | corrected_at_fixed_looks
        3       | 2                | 2              | -
        """),
    )


def test_a_draw_inside_the_grace_period_is_never_a_look() -> None:
    # correction_window_hours 24: one look (24 h, window 12-36 h); the only draw near it is
    # at 5 h, inside the 6-h grace period, so the look is unobserved
    story = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + calcium_at(("d1 15:00", 2.30), ("d3 10:00", 2.20)),
        correction_window_hours=24,
    )
    assert_rows(
        story.rows("index_calcium_fixed_looks", LOOKS),
        expect("""
        n_looks | n_looks_observed | n_looks_normal | corrected_at_fixed_looks
        1       | 0                | 0              | -
        """),
    )


MODIFIERS = ["baseline_mg_class", "mg_route_class", "pth_status_before_index", "egfr_class"]


def test_modifiers_of_an_unexposed_episode_with_normal_kidneys_and_no_pth() -> None:
    # Mg 0.55 (>= 0.5), creatinine 90 umol/L at 70 y, female: eGFR ~ 58 (< 60)
    story = build(encounters=STAY, labs=QUALIFYING_LABS + calcium_at(("d3 10:00", 2.20)))
    assert_rows(
        story.rows("index_effect_modifiers", MODIFIERS),
        expect("""
        baseline_mg_class | mg_route_class | pth_status_before_index   | egfr_class
        grade_1       | none           | not_measured_before_index | reduced
        """),
    )


def test_modifiers_of_an_iv_treated_episode_with_very_low_mg_and_a_low_pth_at_index() -> None:
    # Mg 0.45 (< the CTCAE grade-2 bound 0.5), creatinine 60 umol/L (eGFR >= 60), PTH 3.0
    # pmol/L (<= 6.9, the 65 ng/L limit) drawn with the index calcium, IV Mg at 12:00
    labs = QUALIFYING_LABS.replace("0.55", "0.45").replace("| 90 ", "| 60 ") + (
        "\np1 | e1 | d1 10:00 | pth | 3.0 | pmol/L" + calcium_at(("d3 10:00", 2.20))
    )
    meds = """
    subject_id | encounter_id | time     | ingredient        | dose | dose_unit | route
    p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g         | iv
    """
    story = build(encounters=STAY, labs=labs, meds=meds)
    assert_rows(
        story.rows("index_effect_modifiers", MODIFIERS),
        expect("""
        baseline_mg_class | mg_route_class | pth_status_before_index       | egfr_class
        grade_2_or_worse | iv             | inappropriately_normal_or_low | preserved
        """),
    )


def test_a_pth_drawn_after_index_is_not_a_baseline_modifier() -> None:
    # PTH 12 pmol/L (raised) at d1 11:00, after index but before any Mg: the hypocalcaemia
    # status table uses it, the modifier does not (not known at time zero)
    labs = (
        QUALIFYING_LABS
        + "\np1 | e1 | d1 11:00 | pth | 12.0 | pmol/L"
        + calcium_at(("d3 10:00", 2.20))
    )
    story = build(encounters=STAY, labs=labs)
    assert (
        story.value("SELECT pth_status_before_index FROM index_effect_modifiers")
        == "not_measured_before_index"
    )


IONIZED_LATER = """
p1 | e1 | d1 14:00 | calcium_ionized | 1.00 | mmol/L
"""


def test_ionized_only_cohort_indexes_on_ionized_ca_and_needs_an_ionized_outcome() -> None:
    # corrected Ca 2.10 at d1 10:00 (the default index), ionized 1.00 at d1 14:00 (6 h after
    # the Mg 0.55, still concurrent), corrected and ionized outcomes 48 h after each
    labs = (
        QUALIFYING_LABS
        + IONIZED_LATER
        + "\np1 | e1 | d3 14:00 | calcium_ionized | 1.15 | mmol/L"
        + calcium_at(("d3 10:00", 2.20))
    )
    default = build(encounters=STAY, labs=labs)
    assert default.value("SELECT index_calcium_measure FROM index_events") != "ionized"
    assert default.value("SELECT strftime(index_time, '%H:%M') FROM analytic_cohort") == "10:00"
    ionized = build(encounters=STAY, labs=labs, index_on_ionized_calcium_only=True)
    assert_rows(
        ionized.rows(
            "analytic_cohort",
            ["baseline_ca_ionized_mmol_l", "outcome_ca_ionized_mmol_l"],
        ),
        expect("""
        baseline_ca_ionized_mmol_l | outcome_ca_ionized_mmol_l
        1.00                       | 1.15
        """),
    )
    assert ionized.value("SELECT strftime(index_time, '%H:%M') FROM analytic_cohort") == "14:00"
    # without an ionized Ca at the horizon the ionized-only cohort leaves the stay out at
    # the outcome step, though its corrected outcome is there
    no_outcome = build(
        encounters=STAY,
        labs=QUALIFYING_LABS + IONIZED_LATER + calcium_at(("d3 14:00", 2.20)),
        index_on_ionized_calcium_only=True,
    )
    assert no_outcome.excluded_at("e1") == 10

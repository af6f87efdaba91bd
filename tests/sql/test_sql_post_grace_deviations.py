"""post_grace_deviations: Mg given after the grace period and before the outcome draw.

Six stays share the qualifying labs of the exposure stories: Mg 0.55 at d1 08:00, total Ca
1.90 + albumin 30 at d1 10:00 (index d1 10:00), creatinine at 06:00, outcome corrected Ca at
d3 10:00 (48 h). Grace period 6 h, so "after grace, before outcome" is (d1 16:00, d3 10:00).
  e1  MgSO4 at d1 12:00 (grace) and again at d2 10:00 (24 h)  -> exposed, Mg after grace 24 h
  e2  MgSO4 at d1 16:30 (6.5 h)                               -> unexposed, Mg after grace
  e3  MgSO4 at d3 10:00, the minute of the outcome draw       -> unexposed, not counted
  e4  MgSO4 at d1 16:00 (the grace period's last minute)      -> exposed, none after
  e5  no Mg                                                    -> unexposed, none
  e6  MgSO4 at d2 08:00 (22 h) without a stay link             -> unexposed, Mg after grace
"""

from __future__ import annotations

from helpers.stories import assert_rows, build, expect

EPISODE_COLUMNS = [
    "encounter_id",
    "exposed",
    "mg_after_grace",
    "n_mg_doses_after_grace",
    "hours_to_first_mg_after_grace",
]
STAYS = ["e1", "e2", "e3", "e4", "e5", "e6"]

ENCOUNTERS = "encounter_id | subject_id | admit_time | discharge_time | age_years\n" + "".join(
    f"{e} | p{e[1:]} | d1 00:00 | d9 00:00 | 70\n" for e in STAYS
)
LABS = "subject_id | encounter_id | time | analyte | value | unit\n" + "".join(
    f"""
    p{e[1:]} | {e} | d1 06:00 | creatinine    | 90   | umol/L
    p{e[1:]} | {e} | d1 08:00 | magnesium     | 0.55 | mmol/L
    p{e[1:]} | {e} | d1 10:00 | calcium_total | 1.90 | mmol/L
    p{e[1:]} | {e} | d1 10:00 | albumin       | 30   | g/L
    p{e[1:]} | {e} | d3 10:00 | calcium_total | 2.20 | mmol/L
    p{e[1:]} | {e} | d3 10:00 | albumin       | 30   | g/L
    """
    for e in STAYS
)
MEDS = """
subject_id | encounter_id | time     | ingredient        | dose | dose_unit
p1         | e1           | d1 12:00 | magnesium_sulfate | 2    | g
p1         | e1           | d2 10:00 | magnesium_sulfate | 2    | g
p2         | e2           | d1 16:30 | magnesium_sulfate | 2    | g
p3         | e3           | d3 10:00 | magnesium_sulfate | 2    | g
p4         | e4           | d1 16:00 | magnesium_sulfate | 2    | g
p6         | -            | d2 08:00 | magnesium_sulfate | 2    | g
"""


def test_mg_after_the_grace_period_and_before_the_outcome_is_counted_per_arm() -> None:
    story = build(encounters=ENCOUNTERS, labs=LABS, meds=MEDS)
    assert_rows(
        story.rows("index_post_grace_mg", EPISODE_COLUMNS),
        expect("""
        encounter_id | exposed | mg_after_grace | n_mg_doses_after_grace | hours_to_first_mg_after_grace
        e1           | true    | true           | 1                      | 24.0
        e2           | false   | true           | 1                      | 6.5
        e3           | false   | false          | 0                      | -
        e4           | true    | false          | 0                      | -
        e5           | false   | false          | 0                      | -
        e6           | false   | true           | 1                      | 22.0
        """),  # noqa: E501
    )
    assert_rows(
        story.rows("post_grace_deviations"),
        expect("""
        exposed | n_analysed | n_mg_after_grace | n_no_mg_after_grace
        false   | 4          | 2                | 2
        true    | 2          | 1                | 1
        """),
    )


def test_no_analysed_episode_gives_two_zero_rows() -> None:
    story = build(encounters=None)
    assert story.rows("post_grace_deviations") == [
        {"exposed": False, "n_analysed": 0, "n_mg_after_grace": 0, "n_no_mg_after_grace": 0},
        {"exposed": True, "n_analysed": 0, "n_mg_after_grace": 0, "n_no_mg_after_grace": 0},
    ]

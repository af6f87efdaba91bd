"""hypomagnesaemia_episodes and hypocalcaemia_episodes: gaps and islands within a stay."""

from __future__ import annotations

import pytest
from stories import assert_rows, build, expect

STAY = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
"""

# Albumin 40 g/L beside every calcium, so corrected Ca = total Ca.
TWO_LOW_PERIODS = """
subject_id | encounter_id | time     | analyte       | value | unit
p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
p1         | e1           | d1 10:00 | calcium_total | 2.00  | mmol/L
p1         | e1           | d1 10:00 | albumin       | 40    | g/L
p1         | e1           | d1 20:00 | magnesium     | 0.62  | mmol/L
p1         | e1           | d2 08:00 | magnesium     | 0.80  | mmol/L
p1         | e1           | d2 10:00 | calcium_total | 2.30  | mmol/L
p1         | e1           | d2 10:00 | albumin       | 40    | g/L
p1         | e1           | d3 08:00 | magnesium     | 0.60  | mmol/L
p1         | e1           | d3 10:00 | calcium_total | 2.05  | mmol/L
p1         | e1           | d3 10:00 | albumin       | 40    | g/L
p1         | e1           | d3 20:00 | calcium_total | 2.20  | mmol/L
p1         | e1           | d3 20:00 | albumin       | 40    | g/L
p1         | e1           | d4 08:00 | magnesium     | 0.65  | mmol/L
"""

# The same results as the file of a source that writes rows in no particular order.
TWO_LOW_PERIODS_SHUFFLED = """
subject_id | encounter_id | time     | analyte       | value | unit
p1         | e1           | d3 20:00 | albumin       | 40    | g/L
p1         | e1           | d4 08:00 | magnesium     | 0.65  | mmol/L
p1         | e1           | d2 08:00 | magnesium     | 0.80  | mmol/L
p1         | e1           | d1 10:00 | albumin       | 40    | g/L
p1         | e1           | d3 10:00 | calcium_total | 2.05  | mmol/L
p1         | e1           | d1 08:00 | magnesium     | 0.55  | mmol/L
p1         | e1           | d3 20:00 | calcium_total | 2.20  | mmol/L
p1         | e1           | d2 10:00 | albumin       | 40    | g/L
p1         | e1           | d1 06:00 | creatinine    | 90    | umol/L
p1         | e1           | d3 08:00 | magnesium     | 0.60  | mmol/L
p1         | e1           | d1 20:00 | magnesium     | 0.62  | mmol/L
p1         | e1           | d2 10:00 | calcium_total | 2.30  | mmol/L
p1         | e1           | d1 10:00 | calcium_total | 2.00  | mmol/L
p1         | e1           | d3 10:00 | albumin       | 40    | g/L
"""


@pytest.mark.parametrize("labs", [TWO_LOW_PERIODS, TWO_LOW_PERIODS_SHUFFLED])
def test_two_low_periods_in_one_stay_are_two_episodes_and_one_index(labs: str) -> None:
    # Mg is low on day 1 (0.55, 0.62), normal on day 2 (0.80), low again on days 3-4 (0.60,
    # 0.65, never re-checked normal). The first episode ends when Mg is first seen normal
    # (d2 08:00); the second ends at its last low value (d4 08:00).
    # Corrected Ca: low d1 10:00, normal d2 10:00, low d3 10:00, normal d3 20:00.
    # The stay has one index: the first time both are low together, d1 10:00 (Ca drawn 2 h
    # after the low Mg). Row order in the source file changes nothing.
    story = build(encounters=STAY, labs=labs)
    assert_rows(
        story.rows("hypomagnesaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d1 08:00      | d2 08:00    | 0.55               | 2
        p1         | e1           | d3 08:00      | d4 08:00    | 0.60               | 2
        """),
    )
    assert_rows(
        story.rows("hypocalcaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d1 10:00      | d2 10:00    | 2.00               | 1
        p1         | e1           | d3 10:00      | d3 20:00    | 2.05               | 1
        """),
    )
    assert_rows(
        story.rows("index_events", ["encounter_id", "index_time", "mg_draw_time", "ca_draw_time"]),
        expect("""
        encounter_id | index_time | mg_draw_time | ca_draw_time
        e1           | d1 10:00   | d1 08:00     | d1 10:00
        """),
    )


def test_magnesium_of_exactly_0_70_is_not_low_and_closes_an_episode() -> None:
    # 0.70 mmol/L is the lower reference limit, not below it: it ends the episode that began
    # at 0.60; the next 0.69 starts a new one. p2's only result, 0.70, is no episode at all.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        e2           | p2         | d1 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d1 08:00 | magnesium | 0.60  | mmol/L
        p1         | e1           | d1 12:00 | magnesium | 0.70  | mmol/L
        p1         | e1           | d1 16:00 | magnesium | 0.69  | mmol/L
        p2         | e2           | d1 08:00 | magnesium | 0.70  | mmol/L
        """,
    )
    assert_rows(
        story.rows("hypomagnesaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d1 08:00      | d1 12:00    | 0.60               | 1
        p1         | e1           | d1 16:00      | d1 16:00    | 0.69               | 1
        """),
    )


def test_episodes_never_run_across_two_stays() -> None:
    # Low on the last day of one stay and on the first day of the next: two stays, two
    # episodes, each ending at its own last low value.
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d3 00:00
        e2           | p1         | d4 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d2 08:00 | magnesium | 0.60  | mmol/L
        p1         | e2           | d4 08:00 | magnesium | 0.50  | mmol/L
        p1         | e2           | d5 08:00 | magnesium | 0.55  | mmol/L
        """,
    )
    assert_rows(
        story.rows("hypomagnesaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d2 08:00      | d2 08:00    | 0.60               | 1
        p1         | e2           | d4 08:00      | d5 08:00    | 0.50               | 2
        """),
    )

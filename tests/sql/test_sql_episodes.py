"""hypomagnesaemia_episodes and hypocalcaemia_episodes: gaps and islands within a stay."""

from __future__ import annotations

import pytest
from helpers.stories import assert_rows, build, expect

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


def test_episodes_of_every_series_never_run_across_two_stays() -> None:
    # Low Mg, low corrected Ca and low K on the last day of stay 1 and again on the first day
    # of stay 2 (one day apart, well within the 72 h gap): two stays, two episodes each.
    labs = "subject_id | encounter_id | time | analyte | value | unit\n"
    for stay, day in [("e1", "d2"), ("e2", "d4")]:
        labs += f"p1 | {stay} | {day} 08:00 | magnesium     | 0.60 | mmol/L\n"
        labs += f"p1 | {stay} | {day} 08:00 | potassium     | 3.1  | mmol/L\n"
        labs += f"p1 | {stay} | {day} 08:00 | calcium_total | 2.00 | mmol/L\n"
        labs += f"p1 | {stay} | {day} 08:00 | albumin       | 40   | g/L\n"
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d3 00:00
        e2           | p1         | d3 12:00   | d9 00:00
        """,
        labs=labs,
    )
    for table in ("hypomagnesaemia_episodes", "hypocalcaemia_episodes", "hypokalaemia_episodes"):
        assert_rows(
            story.rows(table, ["encounter_id", "episode_start", "episode_end", "end_reason"]),
            expect("""
            encounter_id | episode_start | episode_end | end_reason
            e1           | d2 08:00      | d2 08:00    | last_result
            e2           | d4 08:00      | d4 08:00    | last_result
            """),
        )


def test_a_silence_longer_than_the_gap_ends_the_episode_at_its_last_low_value() -> None:
    # episode_gap_hours = 72 (default).
    # e1: Mg 0.60 at d1 08:00, next result 0.55 four days later (96 h): nothing is known in
    #     between, so two episodes, the first ending at its own last low value ('gap').
    # e2: Mg 0.60 at d1 08:00, re-checked normal 0.80 80 h later: the episode still ends at
    #     d1 08:00 ('gap'), not at the late normal result.
    # e3: the normal result exactly 72 h later does close the episode ('normal_result').
    story = build(
        encounters="""
        encounter_id | subject_id | admit_time | discharge_time
        e1           | p1         | d1 00:00   | d9 00:00
        e2           | p2         | d1 00:00   | d9 00:00
        e3           | p3         | d1 00:00   | d9 00:00
        """,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d1 08:00 | magnesium | 0.60  | mmol/L
        p1         | e1           | d5 08:00 | magnesium | 0.55  | mmol/L
        p2         | e2           | d1 08:00 | magnesium | 0.60  | mmol/L
        p2         | e2           | d4 16:00 | magnesium | 0.80  | mmol/L
        p3         | e3           | d1 08:00 | magnesium | 0.60  | mmol/L
        p3         | e3           | d4 08:00 | magnesium | 0.80  | mmol/L
        """,
    )
    assert_rows(
        story.rows(
            "hypomagnesaemia_episodes",
            ["encounter_id", "episode_start", "episode_end", "nadir_value_mmol_l", "end_reason"],
        ),
        expect("""
        encounter_id | episode_start | episode_end | nadir_value_mmol_l | end_reason
        e1           | d1 08:00      | d1 08:00    | 0.60               | gap
        e1           | d5 08:00      | d5 08:00    | 0.55               | last_result
        e2           | d1 08:00      | d1 08:00    | 0.60               | gap
        e3           | d1 08:00      | d4 08:00    | 0.60               | normal_result
        """),
    )


MERGE_LABS = """
subject_id | encounter_id | time     | analyte   | value | unit
p1         | e1           | d1 08:00 | magnesium | 0.60  | mmol/L
p1         | e1           | d1 20:00 | magnesium | 0.80  | mmol/L
p1         | e1           | d2 06:00 | magnesium | 0.45  | mmol/L
p1         | e1           | d3 08:00 | magnesium | 0.80  | mmol/L
p1         | e1           | d4 10:00 | magnesium | 0.62  | mmol/L
"""


@pytest.mark.parametrize(
    ("merge_hours", "expected"),
    [
        # default 0: every normal result ends an episode: three episodes
        (
            0,
            """
            episode_start | episode_end | nadir_value_mmol_l | n_results | n_low_runs
            d1 08:00      | d1 20:00    | 0.60               | 1         | 1
            d2 06:00      | d3 08:00    | 0.45               | 1         | 1
            d4 10:00      | d4 10:00    | 0.62               | 1         | 1
            """,
        ),
        # 24 h: the normal blip at d1 20:00 lasted 10 h before Mg was low again (< 24 h):
        # one episode d1 08:00 - d3 08:00 with 2 low results, nadir 0.45 (grade 2: < 0.5).
        # The d3 08:00 normal held 26 h (>= 24 h) before the next low: a new episode.
        (
            24,
            """
            episode_start | episode_end | nadir_value_mmol_l | n_results | n_low_runs
            d1 08:00      | d3 08:00    | 0.45               | 2         | 2
            d4 10:00      | d4 10:00    | 0.62               | 1         | 1
            """,
        ),
    ],
)
def test_low_runs_separated_by_a_short_normal_blip_merge_only_when_configured(
    merge_hours: int, expected: str
) -> None:
    story = build(encounters=STAY, labs=MERGE_LABS, episode_merge_hours=merge_hours)
    assert_rows(
        story.rows(
            "hypomagnesaemia_episodes",
            ["episode_start", "episode_end", "nadir_value_mmol_l", "n_results", "n_low_runs"],
        ),
        expect(expected),
    )


def test_ctcae_hypomagnesaemia_and_hypokalaemia_grades_of_the_nadir_at_cut_points() -> None:
    # One stay per value, each with a single low result, so each episode's nadir is that
    # value. Mg: G1 < 0.70-0.5, G2 < 0.5-0.4, G3 < 0.4-0.3, G4 < 0.3 mmol/L; a value at a
    # cut-point takes the milder grade; 0.70 is no episode at all. K: G1 < 3.5-3.0 (G2 is
    # the same range with symptoms, not derivable from a lab value), G3 < 3.0-2.5, G4 < 2.5.
    mg = {"0.70": None, "0.69": 1, "0.50": 1, "0.49": 2, "0.40": 2, "0.39": 3, "0.30": 3,
          "0.29": 4}  # fmt: skip
    k = {"3.5": None, "3.4": 1, "3.0": 1, "2.9": 3, "2.5": 3, "2.4": 4}
    stays = [("magnesium", v) for v in mg] + [("potassium", v) for v in k]
    story = build(
        encounters="encounter_id | subject_id | admit_time | discharge_time\n"
        + "".join(f"e{n} | p{n} | d1 00:00 | d9 00:00\n" for n in range(len(stays))),
        labs="subject_id | encounter_id | time | analyte | value | unit\n"
        + "".join(
            f"p{n} | e{n} | d1 08:00 | {analyte} | {value} | mmol/L\n"
            for n, (analyte, value) in enumerate(stays)
        ),
    )
    grades = {
        (r["series"], r["nadir_value_mmol_l"]): r["ctcae_grade"]
        for r in story.rows("low_value_episodes")
    }
    expected = {("magnesium", float(v)): g for v, g in mg.items() if g is not None} | {
        ("potassium", float(v)): g for v, g in k.items() if g is not None
    }
    assert grades == expected


def test_hypokalaemia_episode_with_its_worst_grade() -> None:
    # K 3.4 (grade 1) at 08:00, 2.9 (grade 3) at 14:00, 3.6 (normal) the next morning. A K
    # of 3.45 reported by a 2-dp analyser is 3.5 at K's 1-dp reporting precision: not low.
    story = build(
        encounters=STAY,
        labs="""
        subject_id | encounter_id | time     | analyte   | value | unit
        p1         | e1           | d1 08:00 | potassium | 3.4   | mEq/L
        p1         | e1           | d1 14:00 | potassium | 2.9   | mmol/L
        p1         | e1           | d2 06:00 | potassium | 3.6   | mmol/L
        p1         | e1           | d3 06:00 | potassium | 3.45  | mmol/L
        """,
    )
    assert_rows(
        story.rows("hypokalaemia_episodes"),
        expect("""
        subject_id | encounter_id | episode_start | episode_end | nadir_value_mmol_l | n_results
        p1         | e1           | d1 08:00      | d2 06:00    | 2.9                | 2
        """),
    )
    assert_rows(
        story.rows("hypokalaemia_episodes", ["nadir_time", "ctcae_grade", "end_reason"]),
        expect("""
        nadir_time | ctcae_grade | end_reason
        d1 14:00   | 3           | normal_result
        """),
    )

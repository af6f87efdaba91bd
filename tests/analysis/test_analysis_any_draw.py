"""The any-draw correction outcomes per arm (``mgca.analysis.estimation.any_draw``), on
hand-written episodes whose counts are worked out by hand, and their place in the report."""

from __future__ import annotations

import pandas as pd
import pytest

from mgca.analysis.estimation.any_draw import ANY_DRAW_DESCRIPTIVE, any_draw_entries
from mgca.analysis.estimation.secondary import SECONDARY_COUNT_KEYS, SECONDARY_GROUP_KEYS
from mgca.analysis.privacy import CountRule, suppress_estimate
from mgca.analysis.report.any_draw_section import descriptive_view
from mgca.config import StudyConfig

STUDY = StudyConfig()  # grace 6 h, window 72 h


def _episodes(
    exposed: list[bool],
    within: list[bool | None],
    draws: list[int],
    corrected: list[bool],
    hours: list[float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"e{i}" for i in range(len(exposed))]
    cohort = pd.DataFrame(
        {"encounter_id": ids, "subject_id": [f"p{i}" for i in range(len(ids))], "exposed": exposed}
    )
    correction = pd.DataFrame(
        {
            "encounter_id": ids,
            "corrected_within_window": pd.array(within, dtype="boolean"),
            "n_calcium_in_window": draws,
            "corrected": corrected,
            "hours_to_event": hours,
        }
    )
    return cohort, correction


def test_per_arm_counts_shares_and_rates_worked_by_hand() -> None:
    # given Mg: 3 episodes, 2 corrected in the window (one at 30 h, one at 54 h), 1 not
    # corrected (censored at 70 h); draws in the window 3, 2, 4 -> 3.0 per episode.
    # Days followed from 6 h: (30-6 + 54-6 + 70-6) / 24 = 136 / 24; rate 2 / (136/24).
    # not given Mg: 2 episodes, one never re-tested in the window (null, censored at 6 h, 0
    # draws), one corrected at 18 h (1 draw): share 1/1, draws 0.5, days (0 + 12) / 24.
    cohort, correction = _episodes(
        exposed=[True, True, True, False, False],
        within=[True, True, False, None, True],
        draws=[3, 2, 4, 0, 1],
        corrected=[True, True, False, False, True],
        hours=[30.0, 54.0, 70.0, 6.0, 18.0],
    )
    entries = any_draw_entries(cohort, correction, STUDY, threshold=0)
    assert [e["name"] for e in entries] == list(ANY_DRAW_DESCRIPTIVE)
    rd, odds, hr = entries
    for e in entries:
        assert e["estimate"] is None and e["ci_low"] is None and e["p_value"] is None
        assert e["withheld_by_design"] == "detection_bias" and "detection bias" in e["withheld"]
        assert e["n"] == 5 and e["n_exposed"] == 3 and e["n_unexposed"] == 2
    given, not_given = rd["by_arm"]
    assert given == {
        "arm": "given Mg within the grace period",
        "n": 3,
        "n_with_calcium_in_window": 3,
        "n_corrected_within_window": 2,
        "n_not_corrected_within_window": 1,
        "calcium_draws_in_window_per_episode": 3.0,
        "share_corrected_within_window": pytest.approx(2 / 3),
    }
    assert not_given["n_with_calcium_in_window"] == 1
    assert not_given["share_corrected_within_window"] == 1.0
    assert not_given["calcium_draws_in_window_per_episode"] == 0.5
    assert odds["by_arm"] == rd["by_arm"]
    t_given, t_not = hr["by_arm"]
    assert (t_given["n_corrected"], t_given["n_not_corrected"]) == (2, 1)
    assert t_given["episode_days_followed"] == pytest.approx(136 / 24)
    assert t_given["corrections_per_episode_day"] == pytest.approx(2 / (136 / 24))
    assert t_not["episode_days_followed"] == pytest.approx(0.5)
    assert t_not["corrections_per_episode_day"] == pytest.approx(2.0)


def test_small_cells_hide_their_complement_and_every_share_over_them() -> None:
    # given Mg: 20 episodes, 17 corrected, 3 not -> 3 is small (threshold 11): both hidden,
    # and the share with them; not given Mg: 4 episodes -> the whole arm hidden
    n1, n0 = 20, 4
    cohort, correction = _episodes(
        exposed=[True] * n1 + [False] * n0,
        within=[True] * 17 + [False] * 3 + [True] * n0,
        draws=[2] * (n1 + n0),
        corrected=[True] * 17 + [False] * 3 + [True] * n0,
        hours=[30.0] * (n1 + n0),
    )
    rule = CountRule(11, "none")
    rd = any_draw_entries(cohort, correction, STUDY, threshold=rule)[0]
    given, not_given = rd["by_arm"]
    # the hidden arm of 4 would come back as the entry's n (24) minus the other arm: so
    # every arm's figures are hidden
    assert rd["n"] == 24
    for arm in (given, not_given):
        assert all(arm[k] is None for k in arm if k.startswith(("n", "share", "calcium")))
    assert given["suppressed_why"]["n"] == "complementary"
    assert given["suppressed_why"]["n_not_corrected_within_window"] == "small"
    assert not_given["suppressed_why"]["n"] == "small"
    # the entry keeps its by-design reason when the run's suppression hides an arm, and the
    # other arm is hidden with it (n - n_exposed would give n_unexposed back)
    shown = suppress_estimate(rd, SECONDARY_COUNT_KEYS, SECONDARY_GROUP_KEYS, rule)
    assert shown["n"] == 24 and shown["n_unexposed"] is None and shown["n_exposed"] is None
    assert shown["suppressed_why"]["n_exposed"] == "complementary"
    assert shown["withheld_by_design"] == "detection_bias"
    assert "detection bias" in shown["withheld"]


def test_small_events_in_one_arm_leave_the_other_arm_shown() -> None:
    # both arms large; 3 non-corrected in the given arm: that arm's events hidden, the
    # other arm's figures all shown (nothing adds up across arms but n)
    cohort, correction = _episodes(
        exposed=[True] * 20 + [False] * 15,
        within=[True] * 17 + [False] * 3 + [True] * 15,
        draws=[2] * 35,
        corrected=[True] * 17 + [False] * 3 + [True] * 15,
        hours=[30.0] * 35,
    )
    given, not_given = any_draw_entries(cohort, correction, STUDY, threshold=11)[0]["by_arm"]
    assert given["n"] == 20 and given["n_corrected_within_window"] is None
    assert given["suppressed_why"] == {
        "n_not_corrected_within_window": "small",
        "n_corrected_within_window": "complementary",
    }
    assert given["share_corrected_within_window"] is None
    assert not_given["n_corrected_within_window"] == 15
    assert not_given["share_corrected_within_window"] == 1.0


def test_a_small_number_without_a_draw_in_the_window_hides_what_gives_it_back() -> None:
    # 15 episodes given Mg, 3 without a corrected Ca in the window: n - n_with = 3 is small
    cohort, correction = _episodes(
        exposed=[True] * 15,
        within=[True] * 12 + [None] * 3,
        draws=[2] * 12 + [0] * 3,
        corrected=[True] * 12 + [False] * 3,
        hours=[30.0] * 12 + [6.0] * 3,
    )
    given = any_draw_entries(cohort, correction, STUDY, threshold=11)[0]["by_arm"][0]
    assert given["n"] == 15
    assert given["n_with_calcium_in_window"] is None
    assert given["share_corrected_within_window"] is None
    # recorded as hidden, so the report reads "suppressed" rather than "not applicable"
    assert given["suppressed_why"]["n_with_calcium_in_window"] == "complementary"


def test_rounding_rule_rounds_the_counts_the_shares_are_computed_from() -> None:
    cohort, correction = _episodes(
        exposed=[True] * 33,
        within=[True] * 21 + [False] * 12,
        draws=[1] * 33,
        corrected=[True] * 21 + [False] * 12,
        hours=[30.0] * 33,
    )
    given = any_draw_entries(cohort, correction, STUDY, threshold=CountRule(11, "nearest_5"))[0][
        "by_arm"
    ][0]
    assert (given["n"], given["n_corrected_within_window"]) == (35, 20)
    # 12 is at or above the threshold of 11: shown, and never rounded below it
    assert given["n_not_corrected_within_window"] == 15
    assert given["share_corrected_within_window"] == pytest.approx(20 / 35)


def test_report_view_shows_one_table_per_measure() -> None:
    cohort, correction = _episodes(
        exposed=[True] * 12 + [False] * 12,
        within=[True] * 24,
        draws=[3] * 12 + [2] * 12,
        corrected=[True] * 24,
        hours=[30.0] * 24,
    )
    entries = any_draw_entries(cohort, correction, STUDY, threshold=11)
    tables = descriptive_view([*entries, {"name": "mg_dose_response", "estimate": 0.1}], 11)
    assert len(tables) == 2
    window, time = tables
    assert window["names"] == ["calcium corrected risk difference", "calcium corrected odds ratio"]
    assert window["rows"][0] == [
        "given Mg within the grace period",
        "12",
        "12",
        "12",
        "100.0 %",
        "3.0",
    ]
    assert window["rows"][1][-1] == "2.0"
    assert time["names"] == ["time to calcium correction hazard ratio"]
    assert time["rows"][0][:3] == ["given Mg within the grace period", "12", "12"]

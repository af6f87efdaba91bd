"""results.json post_grace_deviations: per-arm counts hidden with their arm."""

from __future__ import annotations

import pandas as pd

from mgca.run.results import deviation_records


def _table(exposed: tuple[int, int], unexposed: tuple[int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exposed": [True, False],
            "n_analysed": [sum(exposed), sum(unexposed)],
            "n_mg_after_grace": [exposed[0], unexposed[0]],
            "n_no_mg_after_grace": [exposed[1], unexposed[1]],
        }
    )


ATTRITION = [
    {"step": "analysed episodes (outcome measured)", "n": 140, "n_excluded": 30},
    {"step": "analysed episodes: exposed (Mg given within grace_hours of index)", "n": 80},
    {"step": "analysed episodes: unexposed", "n": 60},
]


def test_counts_at_or_above_the_threshold_are_published_and_zero_is_not_small() -> None:
    records = deviation_records(_table((0, 80), (25, 35)), ATTRITION, 11)
    assert records == [
        {"exposed": True, "n_mg_after_grace": 0, "n_no_mg_after_grace": 80},
        {"exposed": False, "n_mg_after_grace": 25, "n_no_mg_after_grace": 35},
    ]


def test_a_small_part_hides_both_parts_of_its_arm_only() -> None:
    # 3 + 57 = 60 is the published unexposed count: hiding only the 3 would not hide it
    records = deviation_records(_table((40, 40), (3, 57)), ATTRITION, 11)
    assert records[0] == {"exposed": True, "n_mg_after_grace": 40, "n_no_mg_after_grace": 40}
    assert records[1] == {
        "exposed": False,
        "n_mg_after_grace": None,
        "n_no_mg_after_grace": None,
        "suppressed": "<11",
        # the 57 is hidden only because 60 - 57 would give the 3 back
        "suppressed_why": {"n_mg_after_grace": "small", "n_no_mg_after_grace": "complementary"},
    }


def test_an_arm_the_attrition_hides_is_hidden_here_too() -> None:
    # the attrition hid the exposed arm (complementary suppression of a 5-episode unexposed
    # arm): its parts, 20 + 30, would give it back
    attrition = [
        {"step": "analysed episodes (outcome measured)", "n": 55, "n_excluded": 30},
        {"step": "analysed episodes: exposed (Mg …)", "n": None, "suppressed": "<11"},
        {"step": "analysed episodes: unexposed", "n": None, "suppressed": "<11"},
    ]
    records = deviation_records(_table((20, 30), (0, 5)), attrition, 11)
    assert [r["n_mg_after_grace"] for r in records] == [None, None]
    # 20 and 30 are hidden with their arm, not for being small: they read "suppressed"
    assert [r["suppressed"] for r in records] == ["suppressed", "<11"]

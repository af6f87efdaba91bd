"""results.json ``calcium_measures``: small counts hidden, and a second cell of the same role
and column hidden whenever one hidden cell could be recovered from a published total."""

from __future__ import annotations

import pandas as pd

from mgca.run.results import calcium_measure_records as _calcium_measure_records

MEASURES = ["ionized", "corrected_same_day_albumin", "corrected_lookback_albumin"]


def _table(eligible: list[int], analysed: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "role": ["index"] * 3 + ["outcome"] * 3,
            "calcium_measure": [*MEASURES[:1], *MEASURES[1:], *MEASURES[1:], "not_measured"],
            "n_eligible_index_events": eligible,
            "n_analysed": analysed,
        }
    )


def test_a_lone_small_count_takes_the_smallest_other_nonzero_cell_of_its_column_with_it() -> None:
    # index n_analysed: 155, 287, 10. 10 is small; the column adds up to the analysed total
    # (452, published), so the smallest other nonzero cell, 155, is hidden too. The eligible
    # column (197, 318, 16) has nothing small. Outcome rows: 0 stays 0, nothing hidden.
    records = _calcium_measure_records(
        _table([197, 318, 16, 341, 111, 79], [155, 287, 10, 341, 111, 0]), threshold=11
    )
    assert [(r["n_eligible_index_events"], r["n_analysed"]) for r in records] == [
        (197, None),
        (318, 287),
        (16, None),
        (341, 341),
        (111, 111),
        (79, 0),
    ]
    # 155 is hidden only to protect the 10: it reads "suppressed", never "<11"
    assert [r.get("suppressed") for r in records] == [
        "suppressed", None, "<11", None, None, None
    ]


def test_zero_is_never_small_and_two_small_counts_in_a_column_protect_each_other() -> None:
    # index n_analysed 5, 280, 0: 5 is small and 0 is shown, so 280 is hidden with it.
    # outcome eligible 200, 5, 3: two small cells already protect each other.
    # outcome n_analysed 200, 5, 0: 5 is small; 200 is the only other nonzero cell: hidden.
    records = _calcium_measure_records(
        _table([20, 300, 0, 200, 5, 3], [5, 280, 0, 200, 5, 0]), threshold=11
    )
    assert [(r["n_eligible_index_events"], r["n_analysed"]) for r in records] == [
        (20, None),
        (300, None),
        (0, 0),
        (200, None),
        (None, None),
        (None, 0),
    ]

"""Disclosure control: counts 1..threshold-1 never appear as numbers; 0 and threshold do."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import (
    display_count,
    display_counts,
    display_frame,
    display_record_count,
    scrub_dates,
    suppress_count,
    suppress_estimate,
    suppress_frame,
    suppress_record,
)
from mgca.analysis.report.format import format_ci, format_number, format_p_value


@pytest.mark.parametrize("n", range(1, 11))
def test_counts_one_to_ten_are_hidden(n: int) -> None:
    assert suppress_count(n, 11) is None
    assert display_count(n, 11) == "<11"


def test_zero_and_threshold_are_shown() -> None:
    assert suppress_count(0, 11) == 0
    assert display_count(0, 11) == "0"
    assert suppress_count(11, 11) == 11
    assert display_count(11, 11) == "11"
    assert display_count(12_345, 11) == "12,345"


def test_none_means_already_hidden_and_negative_is_an_error() -> None:
    assert suppress_count(None, 11) is None
    assert display_count(None, 11) == "suppressed"
    with pytest.raises(ValueError, match="negative"):
        suppress_count(-1, 11)


@given(n=st.integers(0, 10**7), threshold=st.integers(1, 1000))
def test_rule_holds_for_any_count_and_threshold(n: int, threshold: int) -> None:
    hidden = 1 <= n < threshold
    assert (suppress_count(n, threshold) is None) is hidden
    assert display_count(n, threshold) == (f"<{threshold}" if hidden else f"{n:,}")


def test_labels_for_figures() -> None:
    assert display_counts([0, 3, 11, 250], 11) == ["0", "<11", "11", "250"]


def test_record_gets_null_and_suppressed_marker() -> None:
    record = {"step": "adults", "n": 4995, "n_excluded": 5, "exclusion_reason": "age < 18"}
    out = suppress_record(record, ["n", "n_excluded"], 11)
    assert out == {
        "step": "adults",
        "n": 4995,
        "n_excluded": None,
        "exclusion_reason": "age < 18",
        "suppressed": "<11",
        "suppressed_why": {"n_excluded": "small"},
    }
    assert record["n_excluded"] == 5  # input untouched
    assert "suppressed" not in suppress_record({"n": 0}, ["n"], 11)


def test_frame_to_json_shape_of_architecture() -> None:
    df = pd.DataFrame({"step": ["a", "b", "c"], "n": [100, 7, 0], "n_excluded": [0, 93, 7]})
    out = suppress_frame(df, ["n", "n_excluded"], 11)
    records = json.loads(out.to_json(orient="records"))
    assert records == [
        {"step": "a", "n": 100, "n_excluded": 0, "suppressed": None},
        {"step": "b", "n": None, "n_excluded": 93, "suppressed": "<11"},
        {"step": "c", "n": 0, "n_excluded": None, "suppressed": "<11"},
    ]
    shown = display_frame(df, ["n", "n_excluded"], 11)
    assert shown["n"].tolist() == ["100", "<11", "0"]
    assert shown["n_excluded"].tolist() == ["0", "93", "<11"]


def test_estimate_over_a_small_group_is_withheld() -> None:
    entry = {"name": "x", "estimate": 0.2, "ci_low": 0.1, "ci_high": 0.3, "p_value": 0.01}
    small = suppress_estimate(
        {**entry, "n": 40, "n_exposed": 4, "n_unexposed": 36}, ["n", "n_exposed"], ["n_exposed"], 11
    )
    assert small["n_exposed"] is None and small["suppressed"] == "<11"
    assert small["estimate"] is small["ci_low"] is small["p_value"] is None
    assert "fewer than 11" in small["withheld"]
    large = suppress_estimate({**entry, "n_exposed": 0}, ["n_exposed"], ["n_exposed"], 11)
    assert large["estimate"] == 0.2 and "withheld" not in large


def test_one_hidden_arm_hides_the_other_arm_that_would_give_it_back() -> None:
    # n 22 published, exposed 17 and unexposed 5: 22 - 17 would reveal the 5
    entry = {"name": "x", "estimate": 0.2, "n": 22, "n_exposed": 17, "n_unexposed": 5}
    keys = ("n", "n_exposed", "n_unexposed")
    for groups in (keys, keys[1:]):
        shown = suppress_estimate(entry, keys, groups, 11)
        assert shown["n"] == 22 and shown["n_exposed"] is None and shown["n_unexposed"] is None
        assert shown["suppressed_why"] == {"n_unexposed": "small", "n_exposed": "complementary"}
        assert shown["estimate"] is None and shown["withheld"]
    # both arms large: nothing hidden
    large = suppress_estimate({**entry, "n": 40, "n_unexposed": 23}, keys, keys, 11)
    assert large["n_exposed"] == 17 and "suppressed" not in large


def test_withheld_estimate_hides_its_delta_method_interval_too() -> None:
    from mgca.analysis.privacy import suppress_estimate

    keys = ("estimate", "se", "ci_low", "ci_high", "p_value")
    base = dict.fromkeys(keys, 0.1) | {"n": 40, "n_exposed": 35, "n_unexposed": 5}
    primary = base | {"delta_method": {"se": 0.02, "ci_low": 0.06, "ci_high": 0.14}}
    other = base | {"delta_method": None}
    count_keys = ("n", "n_exposed", "n_unexposed")
    arms = ("n_exposed", "n_unexposed")
    shown = suppress_estimate(primary, count_keys, arms, 11)
    assert shown["withheld"] and shown["estimate"] is None
    assert shown["delta_method"] == {"se": None, "ci_low": None, "ci_high": None}
    assert suppress_estimate(other, count_keys, arms, 11)["delta_method"] is None
    # an entry that could not be made is not "withheld": it says its own reason
    reason = dict.fromkeys(keys) | {"n": None, "n_exposed": None, "n_unexposed": None}
    assert "withheld" not in suppress_estimate(reason | {"reason": "no arm"}, count_keys, arms, 11)


def test_an_unknown_count_is_never_printed_as_a_number() -> None:
    # NaN (a missing pandas value) reads like a hidden count of unknown size, in a record too,
    # and never crashes; "<11" only where the record says the count was small.
    assert display_count(float("nan"), 11) == "suppressed"
    assert display_count(pd.NA, 11) == "suppressed"
    assert display_record_count({"n": float("nan"), "suppressed": "<11"}, "n", 11) == "suppressed"
    small = {"n": float("nan"), "suppressed": "<11", "suppressed_why": {"n": "small"}}
    assert display_record_count(small, "n", 11) == "<11"
    # Without a suppression marker a missing count does not apply to the row.
    assert display_record_count({"n": float("nan")}, "n", 11) == "—"
    assert display_record_count({"n": None}, "n", 11) == "—"
    assert display_record_count({"n": 5}, "n", 11) == "<11"
    assert display_record_count({"n": 1234}, "n", 11) == "1,234"


def test_dates_and_times_are_scrubbed_from_free_text() -> None:
    text = "drawn 2150-03-02 08:00:00 and 2150-03-03T09:15, then 2150-03-04"
    assert scrub_dates(text) == "drawn [date] and [date], then [date]"
    assert scrub_dates(None) == ""
    assert scrub_dates("48 h ± 12 h") == "48 h ± 12 h"


def test_numbers_read_the_same_wherever_the_report_shows_them() -> None:
    assert format_number(-0.001, signed=True) == "0.00"
    assert format_number(-0.001) == "0.00"
    assert format_number(0.25, signed=True) == "+0.25"
    assert format_number(None) == "—"
    assert format_p_value(0.0004) == "<0.001" and format_p_value(0.04) == "0.040"
    assert format_ci({"ci_low": -0.1, "ci_high": 0.2}) == "-0.10 to +0.20"
    assert format_ci({"ci_low": -0.1, "ci_high": 0.2}, signed=False) == "-0.10 to 0.20"
    assert format_ci({"ci_low": None, "ci_high": 0.2}) == "—"


def test_non_finite_numbers_become_null() -> None:
    import numpy as np

    cleaned = finite_or_none(
        {"se": float("nan"), "ci": (1.5, float("inf")), "n": np.int64(3), "p": np.array(0.5)}
    )
    assert cleaned == {"se": None, "ci": [1.5, None], "n": 3, "p": 0.5}
    assert type(cleaned["n"]) is int and type(cleaned["p"]) is float
    assert json.dumps(cleaned, allow_nan=False)


# --- complementary suppression: what a hidden cell says, and what subtraction recovers ----------

from mgca.analysis.privacy import (  # noqa: E402
    CountRule,
    attrition_identities,
    recoverable_cells,
    round_count,
    rule_words,
    suppress_attrition,
)


def _attrition(first: int, excluded: list[int], split: int | None) -> list[dict]:
    rows = [{"step": "stays in source", "n": first, "n_excluded": None}]
    n = first
    for k, e in enumerate(excluded):
        n -= e
        rows.append({"step": f"step {k}", "n": n, "n_excluded": e, "exclusion_reason": "r"})
    rows[-1]["step"] = "analysed episodes"
    if split is not None:
        rows.append({"step": "analysed episodes: exposed", "n": split, "n_excluded": None})
        rows.append({"step": "analysed episodes: unexposed", "n": n - split, "n_excluded": None})
    return rows


@st.composite
def attrition_tables(draw: st.DrawFn) -> list[dict]:
    excluded = draw(
        st.lists(
            st.one_of(st.integers(0, 12), st.integers(0, 600)), min_size=1, max_size=7
        )
    )
    first = sum(excluded) + draw(st.one_of(st.integers(0, 12), st.integers(0, 800)))
    last = first - sum(excluded)
    split = draw(st.one_of(st.none(), st.integers(0, last)))
    return _attrition(first, excluded, split)


@given(
    table=attrition_tables(),
    threshold=st.sampled_from([5, 11]),
    rounding=st.sampled_from(["none", "nearest_5"]),
)
def test_attrition_hides_nothing_recoverable_and_never_labels_a_large_count_small(
    table: list[dict], threshold: int, rounding: str
) -> None:
    rule = CountRule(threshold, rounding)
    out = suppress_attrition(table, rule)
    _, _, equations = attrition_identities(table)
    hidden = {
        (i, key) for i, r in enumerate(out) for key in ("n", "n_excluded") if
        table[i].get(key) is not None and r[key] is None
    }
    # every small count is hidden, and no hidden cell can be worked out by subtraction
    for i, row in enumerate(table):
        for key in ("n", "n_excluded"):
            value = row.get(key)
            if value is not None and 1 <= value < threshold:
                assert (i, key) in hidden
    assert recoverable_cells(equations, hidden) == set()
    # the display text: "<N" only for a count really below N, a number only when shown exactly
    for i, (raw, shown) in enumerate(zip(table, out, strict=True)):
        for key in ("n", "n_excluded"):
            if raw.get(key) is None:
                continue
            text = display_record_count(shown, key, rule)
            if text == f"<{threshold}":
                assert 1 <= raw[key] < threshold
            elif (i, key) in hidden:
                assert text == "suppressed"
            elif rounding == "none":
                assert text == f"{raw[key]:,}"
            else:  # rounded to a multiple of 5, never below the threshold, and only near
                assert text == f"{round_count(raw[key], rounding, threshold):,}"
                value = int(text.replace(",", ""))
                assert value % 5 == 0 and abs(value - raw[key]) <= 4
                assert value == 0 or value >= threshold


def test_the_issue_example_reads_suppressed_not_small() -> None:
    """Adults ~575 remain but the exclusion was small: the remaining count was hidden only to
    protect it, so it must not read "<11"."""
    table = [
        {"step": "stays", "n": 580, "n_excluded": None},
        {"step": "adults", "n": 575, "n_excluded": 5, "exclusion_reason": "age < 18"},
        {"step": "baseline creatinine available", "n": 499, "n_excluded": 76,
         "exclusion_reason": "no creatinine"},
        {"step": "analysed episodes", "n": 300, "n_excluded": 199, "exclusion_reason": "x"},
    ]
    out = suppress_attrition(table, 11)
    texts = [display_record_count(r, "n", 11) for r in out]
    excluded = [display_record_count(r, "n_excluded", 11) for r in out]
    assert excluded[1] == "<11"
    assert "<11" not in texts
    assert out[1]["suppressed_why"]["n_excluded"] == "small"
    assert all(t in ("suppressed",) or t.replace(",", "").isdigit() for t in texts)


@given(table=attrition_tables())
def test_rounding_nearest_5_rounds_every_shown_count(table: list[dict]) -> None:
    out = suppress_attrition(table, 11, "nearest_5")
    for raw, shown in zip(table, out, strict=True):
        for key in ("n", "n_excluded"):
            if raw.get(key) is not None and shown[key] is not None:
                assert shown[key] % 5 == 0
                # 11 to 14 read 15: a rounded figure never falls below the threshold
                assert abs(shown[key] - raw[key]) <= (2 if raw[key] > 12 else 4)
                assert shown[key] == round_count(raw[key], "nearest_5", 11)


def test_rounding_and_the_rule_in_words() -> None:
    assert [round_count(n, "nearest_5") for n in (11, 12, 13, 575, 577, 578)] == [
        10, 10, 15, 575, 575, 580
    ]
    assert suppress_count(13, 11, "nearest_5") == 15
    assert suppress_count(7, 11, "nearest_5") is None
    assert display_count(1234, 11, "nearest_5") == "1,235"
    assert "nearest 5" in rule_words(11, "nearest_5")
    assert "nearest" not in rule_words(11, "none") and "<11" in rule_words(11)
    with pytest.raises(ValueError, match=r"privacy\.rounding"):
        round_count(3, "nearest_7")


def test_record_says_why_each_count_was_hidden() -> None:
    out = suppress_record({"n": 3, "n_exposed": 40}, ["n", "n_exposed"], 11)
    assert out["suppressed_why"] == {"n": "small"}
    assert display_record_count(out, "n", 11) == "<11"
    legacy = {"n": None, "suppressed": "<11"}  # a results.json from before the reasons
    assert display_record_count(legacy, "n", 11) == "suppressed"


def test_calcium_measures_do_not_publish_a_total_the_attrition_hid() -> None:
    """The default run's case: the eligible count before the outcome step was hidden in the
    attrition (to protect a small exclusion), but the calcium-measure counts of eligible index
    events add up to it; their column must be hidden too, as complementary, not "<11"."""
    from mgca.run.results import attrition_records, attrition_totals_hidden, calcium_measure_records

    attrition = attrition_records(
        pd.DataFrame(
            {
                # no step between the source and the eligible count: one of those two
                # headline counts must go to protect the exclusion of 1
                "step": ["stays", "baseline creatinine available",
                         "analysed episodes (outcome measured)", "analysed episodes: exposed",
                         "analysed episodes: unexposed"],
                "n_remaining": [532, 531, 452, 260, 192],
                "n_excluded": [0, 1, 79, None, None],
                "exclusion_reason": [None, "no creatinine", "no outcome", None, None],
            }
        ),
        11,
    )
    assert attrition[1]["n"] is None  # eligible hidden to protect the exclusion of 1
    hidden = attrition_totals_hidden(attrition)
    assert hidden == ("n_eligible_index_events",)
    measures = pd.DataFrame(
        {
            "role": ["outcome"] * 3,
            "calcium_measure": ["corrected_same_day_albumin", "corrected_lookback_albumin",
                                "not_measured"],
            "n_eligible_index_events": [341, 111, 79],
            "n_analysed": [341, 111, 0],
        }
    )
    out = calcium_measure_records(measures, 11, "none", hidden)
    assert all(r["n_eligible_index_events"] is None for r in out)
    assert [display_record_count(r, "n_eligible_index_events", 11) for r in out] == [
        "suppressed"
    ] * 3
    assert [r["n_analysed"] for r in out] == [341, 111, 0]


def test_rounding_reaches_every_count_block_and_the_run_index() -> None:
    from mgca.ops.history import n_analysed_text, run_summary
    from mgca.run.results import rounded_counts

    block = {"analyses": [{"name": "x", "n": 123, "n_exposed": 61, "estimate": 0.123,
                           "n_unexposed": None, "horizon_hours": 48}]}
    out = rounded_counts(block, "nearest_5")["analyses"][0]
    assert (out["n"], out["n_exposed"], out["n_unexposed"]) == (125, 60, None)
    assert out["estimate"] == 0.123 and out["horizon_hours"] == 48  # not counts
    assert rounded_counts(block, "none") is block
    results = {
        "attrition": [
            {"step": "analysed episodes (outcome measured)", "n": None, "n_excluded": 3,
             "suppressed": "suppressed", "suppressed_why": {"n": "complementary"}},
        ],
        "config": {"privacy": {"small_cell_threshold": 11, "rounding": "nearest_5"}},
        "provenance": {},
    }
    assert n_analysed_text(results) == "suppressed"
    from pathlib import Path

    entry = run_summary(Path("run-1"), results)
    assert entry["n_analysed_text"] == "suppressed" and "nearest 5" in entry["count_rule"]

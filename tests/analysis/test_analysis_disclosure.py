"""Disclosure control: counts 1..threshold-1 never appear as numbers; 0 and threshold do."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mgca.analysis.privacy import (
    display_count,
    display_counts,
    display_frame,
    suppress_count,
    suppress_estimate,
    suppress_frame,
    suppress_record,
)


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
    assert display_count(None, 11) == "<11"
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

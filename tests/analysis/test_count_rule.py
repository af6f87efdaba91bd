"""The count rule as one object, and complementary suppression that keeps the headline steps.

Tables are hand-written from the default synthetic run's shapes (4,000 stays)."""

from __future__ import annotations

import pickle

import pandas as pd

from mgca.analysis.privacy import (
    CountRule,
    attrition_identities,
    count_rule,
    display_count,
    display_record_count,
    recoverable_cells,
    suppress_attrition,
)
from mgca.analysis.report.table_one import count_cell, table_one
from mgca.config import MgcaConfig

DEFAULT_RUN_ATTRITION = [
    {"step": "encounters in source", "n": 4000, "n_excluded": 0},
    {"step": "with Mg and Ca", "n": 3973, "n_excluded": 27, "exclusion_reason": "r"},
    {"step": "index event", "n": 658, "n_excluded": 3315, "exclusion_reason": "r"},
    {"step": "adults", "n": 652, "n_excluded": 6, "exclusion_reason": "r"},
    {"step": "no obstetric MgSO4", "n": 651, "n_excluded": 1, "exclusion_reason": "r"},
    {"step": "no citrate-CRRT", "n": 651, "n_excluded": 0, "exclusion_reason": "r"},
    {"step": "no Mg before index", "n": 532, "n_excluded": 119, "exclusion_reason": "r"},
    {"step": "baseline creatinine available", "n": 527, "n_excluded": 5, "exclusion_reason": "r"},
    {"step": "analysed episodes", "n": 452, "n_excluded": 75, "exclusion_reason": "r"},
    {"step": "analysed episodes: exposed", "n": 260, "n_excluded": None},
    {"step": "analysed episodes: unexposed", "n": 192, "n_excluded": None},
]


def test_the_rule_is_the_threshold_and_carries_its_rounding() -> None:
    rule = count_rule(MgcaConfig.model_validate({"privacy": {"rounding": "nearest_5"}}))
    assert rule == 11 and f"<{rule}" == "<11" and rule.rounding == "nearest_5"
    assert pickle.loads(pickle.dumps(rule)).rounding == "nearest_5"
    assert count_rule(MgcaConfig()).rounding == "none"
    # a rounded figure never falls below the threshold: 11 to 14 read 15, not 10
    assert [display_count(n, rule) for n in (0, 5, 10, 11, 12, 14, 16, 18, 573)] == [
        "0", "<11", "<11", "15", "15", "15", "15", "20", "575"
    ]
    assert display_count(12, CountRule(11)) == "12"


def test_headline_steps_stay_shown_when_an_exclusion_can_be_hidden_instead() -> None:
    out = suppress_attrition(DEFAULT_RUN_ATTRITION, 11)
    texts = {r["step"]: display_record_count(r, "n", 11) for r in out}
    assert texts["encounters in source"] == "4,000"
    assert texts["baseline creatinine available"] == "527"  # the first screen's "eligible"
    assert texts["analysed episodes"] == "452"
    assert texts["no Mg before index"] == "suppressed"  # hidden in its place
    assert out[6]["suppressed_why"] == {"n": "complementary", "n_excluded": "complementary"}
    _, _, equations = attrition_identities(DEFAULT_RUN_ATTRITION)
    hidden = {
        (i, k) for i, r in enumerate(out) for k in ("n", "n_excluded")
        if DEFAULT_RUN_ATTRITION[i].get(k) is not None and r[k] is None
    }
    assert recoverable_cells(equations, hidden) == set()


def test_table_one_percentages_come_from_the_rounded_counts() -> None:
    rule = CountRule(11, "nearest_5")
    assert count_cell(123, 457, rule) == ("125 (27.5 %)", False)  # 125 / 455
    assert count_cell(123, 457, 11) == ("123 (26.9 %)", False)
    assert count_cell(450, 457, rule) == ("≥445", True)  # complement 7 is small
    cohort = pd.DataFrame(
        {
            "subject_id": range(60),
            "exposed": [True] * 33 + [False] * 27,
            "sex": ["F"] * 13 + ["M"] * 20 + ["F"] * 14 + ["M"] * 13,
        }
    )
    table = table_one(cohort, rule).set_index("characteristic")
    assert table.loc["Episodes, n", "exposed"] == "35"
    assert table.loc["Female, n (%)", "exposed"] == "15 (42.9 %)"  # 15 / 35
    assert table.loc["Female, n (%)", "unexposed"] == "15 (60.0 %)"  # 15 / 25


# --- the share of eligible episodes without an outcome, before suppression --------------------

from mgca.analysis.missing_outcome_share import missing_outcome_share  # noqa: E402
from mgca.analysis.report.first_screen import run_caveats  # noqa: E402

OUTCOME_MEASURES = pd.DataFrame(
    {
        "role": ["index", "outcome", "outcome", "outcome"],
        "calcium_measure": ["ionized", "corrected_same_day_albumin",
                            "corrected_lookback_albumin", "not_measured"],
        "n_eligible_index_events": [40, 341, 111, 75],
        "n_analysed": [30, 341, 111, 0],
    }
)


def test_missing_outcome_share_is_computed_before_suppression_and_follows_the_rule() -> None:
    attrition = suppress_attrition(DEFAULT_RUN_ATTRITION, 11)
    block = missing_outcome_share(OUTCOME_MEASURES, attrition, CountRule(11))
    assert block == {"share": 0.142, "n_eligible": 527,  # 75 / 527
                     "denominator": "episodes eligible before the outcome step"}
    rounded = missing_outcome_share(
        OUTCOME_MEASURES, suppress_attrition(DEFAULT_RUN_ATTRITION, 11, "nearest_5"),
        CountRule(11, "nearest_5"),
    )
    assert rounded["n_eligible"] == 525 and rounded["share"] == round(75 / 525, 3)
    # the eligible count hidden in the attrition: the share would give the hidden cells back
    hidden = [dict(r) for r in attrition]
    hidden[7]["n"] = None
    withheld = missing_outcome_share(OUTCOME_MEASURES, hidden, CountRule(11))
    assert withheld["share"] is None and withheld["n_eligible"] is None
    assert "denominator" in withheld["withheld"]
    few = OUTCOME_MEASURES.assign(n_eligible_index_events=[40, 341, 111, 4])
    assert missing_outcome_share(few, attrition, CountRule(11))["share"] is None
    none = OUTCOME_MEASURES.assign(n_eligible_index_events=0)
    assert missing_outcome_share(none, attrition, CountRule(11)) is None


def test_the_missing_outcomes_caveat_reads_the_share() -> None:
    from mgca.config import StudyConfig

    results = {
        "estimates": [{"name": "primary", "estimate": 0.1, "n_exposed": 260,
                       "n_unexposed": 192}],
        "missing_outcome_share": {"share": 0.142, "n_eligible": 527},
    }
    caveats = run_caveats(results, StudyConfig(), 11)
    assert caveats[0].title == "Missing outcomes"
    assert caveats[0].text.startswith("14 % of 527 eligible episodes had no")
    results["missing_outcome_share"] = {"share": None, "n_eligible": None, "withheld": "x"}
    assert "Missing outcomes" not in [c.title for c in run_caveats(results, StudyConfig(), 11)]


# --- data quality: rows that add up to a shown total ------------------------------------------

from mgca.analysis.data_quality_suppression import suppress_quality  # noqa: E402


def _pth(t: str, n: int) -> dict:
    return {"table_name": "hypocalcaemia_pth_status", "check_name": f"pth_status:{t}",
            "analyte": None, "n_rows": 2551, "n_flagged": n}


def _lab(check: str, analyte: str, n_rows: int, n: int) -> dict:
    return {"table_name": "lab_results", "check_name": check, "analyte": analyte,
            "n_rows": n_rows, "n_flagged": n}


def test_a_small_quality_count_cannot_be_recovered_from_its_rows_total() -> None:
    rows = [
        _pth("appropriately_raised", 116), _pth("inappropriately_normal_or_low", 52),
        _pth("measured_only_after_mg", 4), _pth("not_measured", 2379),
        # ionized Ca: used + duplicate + missing value = lab rows (a partition)
        _lab("status:used", "calcium_ionized", 4837, 4816),
        _lab("status:duplicate", "calcium_ionized", 4837, 15),
        _lab("status:missing_value", "calcium_ionized", 4837, 6),
        # pth: two unit conversions that add up with no status row
        _lab("unit_conversion:pg/ml", "pth", 206, 199),
        _lab("unit_conversion:pmol/l", "pth", 206, 7),
        # not a partition: a single flag out of its rows
        _lab("reporting_precision_rounding", "pth", 206, 3),
    ]
    out = suppress_quality(rows, CountRule(11))
    texts = [display_record_count(r, "n_flagged", 11) for r in out]
    assert texts[:4] == ["116", "suppressed", "<11", "2,379"]  # the smallest other is hidden
    assert texts[4:7] == ["4,816", "suppressed", "<11"]
    assert texts[7:9] == ["suppressed", "<11"]
    assert texts[9] == "<11"
    assert all(r["n_rows"] is not None for r in out)  # the shared total stays shown
    rounded = suppress_quality(rows, CountRule(11, "nearest_5"))
    assert [r["n_flagged"] for r in rounded[:4]] == [115, None, None, 2380]
    assert rounded[0]["n_rows"] == 2550


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    parts=st.lists(st.one_of(st.integers(0, 14), st.integers(0, 3000)), min_size=1, max_size=5),
    rounding=st.sampled_from(["none", "nearest_5"]),
)
def test_quality_partitions_hide_nothing_recoverable(parts: list[int], rounding: str) -> None:
    total = sum(parts)
    rows = [_lab(f"status:s{k}", "albumin", total, n) for k, n in enumerate(parts)]
    rule = CountRule(11, rounding)
    out = suppress_quality(rows, rule)
    hidden = {(i, "n_flagged") for i, r in enumerate(out) if r["n_flagged"] is None}
    if 1 <= total < 11:
        assert all(r["n_rows"] is None for r in out)
        return
    equation = {(i, "n_flagged"): 1.0 for i in range(len(rows))}
    assert recoverable_cells([equation], hidden) == set()
    for raw, shown in zip(rows, out, strict=True):
        text = display_record_count(shown, "n_flagged", rule)
        assert (text == "<11") == (1 <= raw["n_flagged"] < 11)
        if shown["n_flagged"] is not None and rounding == "nearest_5":
            assert shown["n_flagged"] % 5 == 0

"""The report's new sections: CONSORT flow, data quality, trajectory figures, "no eligible
episodes", methods from config. Hand-made aggregates in, visible text out."""

from __future__ import annotations

import itertools
import re

import pandas as pd
import pytest
from test_analysis_report import _parse

from mgca.analysis.report.consort import consort_diagram
from mgca.analysis.report.figures import (
    analyte_trajectory_figure,
    group_label,
    trajectory_sample_figure,
)
from mgca.analysis.report.quality_section import data_quality_view, episode_missingness
from mgca.analysis.report.render import ReportContext, render_report
from mgca.config import MgcaConfig, ReportConfig, StudyConfig

CONFIG = MgcaConfig()
STUDY = CONFIG.study
THRESHOLD = 11

ATTRITION = [
    {"step": "encounters in source", "n": 2500, "n_excluded": 0, "exclusion_reason": None},
    {"step": "with labs", "n": 2458, "n_excluded": 42, "exclusion_reason": "no used Mg"},
    {
        "step": "adults",
        "n": 2451,
        "n_excluded": None,
        "exclusion_reason": "age below 18",
        "suppressed": "<11",
        "suppressed_why": {"n_excluded": "small"},
    },
    {
        "step": "baseline creatinine available",
        "n": 2451,
        "n_excluded": 0,
        "exclusion_reason": "no creatinine",
    },
    {
        "step": "analysed episodes (outcome measured)",
        "n": 300,
        "n_excluded": 2151,
        "exclusion_reason": "no outcome",
    },
    {
        "step": "analysed episodes: exposed (Mg given)",
        "n": 290,
        "n_excluded": None,
        "exclusion_reason": None,
    },
    {
        "step": "analysed episodes: unexposed",
        "n": None,
        "n_excluded": None,
        "exclusion_reason": None,
        "suppressed": "<11",
        "suppressed_why": {"n": "small"},
    },
]


def _texts(diagram) -> list[str]:
    return [" ".join(b.lines) for b in diagram.boxes]


def test_consort_says_suppressed_for_a_large_count_hidden_to_protect_a_small_one() -> None:
    """The issue's example: about 575 adults remain after a small exclusion; complementary
    suppression hides the 575 and the box must not read "<11"."""
    from mgca.run.results import attrition_records

    raw = pd.DataFrame(
        {
            "step_order": [1, 2, 3, 4],
            "step": ["encounters in source", "adults", "baseline creatinine available",
                     "analysed episodes (outcome measured)"],
            "n_remaining": [580, 575, 499, 300],
            "n_excluded": [0, 5, 76, 199],
            "exclusion_reason": [None, "age below 18", "no creatinine", "no outcome"],
        }
    )
    texts = _texts(consort_diagram(attrition_records(raw, THRESHOLD), THRESHOLD))
    assert "Adults n = suppressed" in texts
    assert "Excluded (n = <11): age below 18" in texts
    assert not any(t.endswith("n = <11") and not t.startswith("Excluded") for t in texts)


def test_consort_has_a_box_per_step_and_one_per_exclusion() -> None:
    diagram = consort_diagram(ATTRITION, THRESHOLD)
    kinds = [b.kind for b in diagram.boxes]
    # 5 steps, 3 exclusion boxes (the zero-exclusion step has none), 2 split boxes
    assert kinds.count("main") == 5
    assert kinds.count("excluded") == 3
    assert kinds.count("split") == 2
    texts = _texts(diagram)
    assert "Excluded (n = 42): no used Mg" in texts
    assert "Excluded (n = <11): age below 18" in texts  # hidden count, reason still shown
    assert any(
        t.startswith("Analysed episodes: unexposed") and t.endswith("n = <11") for t in texts
    )
    assert any(t.endswith("n = 2,500") for t in texts)
    # boxes never overlap vertically in the main column, and the canvas holds them all
    mains = sorted((b for b in diagram.boxes if b.kind == "main"), key=lambda b: b.y)
    assert all(a.y + a.h < b.y for a, b in itertools.pairwise(mains))
    assert max(b.y + b.h for b in diagram.boxes) <= diagram.height
    assert len(diagram.arrows) == 4 + 3 + 2
    assert consort_diagram([], THRESHOLD) is None


def test_no_eligible_episodes_names_the_step_that_emptied_the_cohort() -> None:
    # No results["no_estimate_reason"] (a report rendered outside the flow): the summary still
    # works out from the attrition which step left no stays, and says so in those words.
    emptied = [
        {"step": "encounters in source", "n": 40, "n_excluded": 0, "exclusion_reason": None},
        {
            "step": "with concurrent hypoMg and hypoCa (index event)",
            "n": 0,
            "n_excluded": 40,
            "exclusion_reason": "no low Mg and low corrected Ca drawn within 6 h",
        },
        {"step": "adults", "n": 0, "n_excluded": 0, "exclusion_reason": "age"},
        {
            "step": "analysed episodes (outcome measured)",
            "n": 0,
            "n_excluded": 0,
            "exclusion_reason": "no outcome",
        },
        {
            "step": "analysed episodes: exposed",
            "n": 0,
            "n_excluded": None,
            "exclusion_reason": None,
        },
    ]
    html = render_report(
        ReportContext(
            title="t",
            results={
                "estimates": [],
                "attrition": emptied,
                "estimate_notes": ["primary: no primary estimate: fewer than 20"],
            },
            table_one=None,
            trajectory_svg=None,
            config=CONFIG,
            threshold=THRESHOLD,
        )
    )
    summary = _parse(html).text["summary"]
    assert "No eligible episodes:" in summary
    assert "with concurrent hypoMg and hypoCa (index event)" in summary
    assert "no low Mg and low corrected Ca" in summary
    assert "No estimate: No eligible" not in summary
    # the flow's own sentence (results["no_estimate_reason"]) wins when present
    told = render_report(
        ReportContext(
            title="t",
            results={
                "estimates": [],
                "attrition": emptied,
                "no_estimate_reason": "No eligible episodes: the flow's reason",
            },
            table_one=None,
            trajectory_svg=None,
            config=CONFIG,
            threshold=THRESHOLD,
        )
    )
    assert "No eligible episodes: the flow's reason." in _parse(told).text["summary"]


DATA_QUALITY = [
    {
        "table_name": "lab_results",
        "check_name": "rows_read",
        "analyte": None,
        "n_rows": 500,
        "n_flagged": 0,
        "detail": "rows loaded",
    },
    {
        "table_name": "lab_results",
        "check_name": "status:used",
        "analyte": "magnesium",
        "n_rows": 300,
        "n_flagged": 250,
        "detail": "used by the pipeline",
    },
    {
        "table_name": "lab_results",
        "check_name": "status:missing_value",
        "analyte": "magnesium",
        "n_rows": 300,
        "n_flagged": 30,
        "detail": "quarantined: no numeric value",
    },
    {
        "table_name": "lab_results",
        "check_name": "status:unknown_unit",
        "analyte": "magnesium",
        "n_rows": 300,
        "n_flagged": None,
        "detail": "quarantined: unit missing",
        "suppressed": "<11",
        "suppressed_why": {"n_flagged": "small"},
    },
    {
        "table_name": "lab_results",
        "check_name": "status:used",
        "analyte": "pth",
        "n_rows": 200,
        "n_flagged": 200,
        "detail": "used by the pipeline",
    },
    {
        "table_name": "lab_results",
        "check_name": "unit_conversion:mg/dl",
        "analyte": "magnesium",
        "n_rows": 300,
        "n_flagged": 150,
        "detail": "mg/dl -> mmol/L x 0.4114",
    },
    {
        "table_name": "calcium_corrected",
        "check_name": "no_albumin_in_lookback",
        "analyte": "calcium_total",
        "n_rows": 100,
        "n_flagged": 12,
        "detail": "not correctable",
    },
    {
        "table_name": "encounters",
        "check_name": "discharge_before_admit",
        "analyte": None,
        "n_rows": 100,
        "n_flagged": 0,
        "detail": "never shown: nothing flagged",
    },
]
SOURCE_ROWS = [
    {
        "source_kind": "mimic",
        "source_table": "hosp/labevents",
        "canonical_table": "lab_results",
        "status": "mapped",
        "reason": None,
        "n_rows": 480,
    },
    {
        "source_kind": "mimic",
        "source_table": "hosp/labevents",
        "canonical_table": None,
        "status": "skipped",
        "reason": "itemid not in code list",
        "n_rows": None,
        "suppressed": "<11",
        "suppressed_why": {"n_rows": "small"},
    },
]


def test_data_quality_view_splits_reads_quarantine_conversions_and_missingness() -> None:
    cohort = pd.DataFrame(
        {"baseline_mg_mmol_l": [0.5] * 30, "baseline_ca_ionized_mmol_l": [None] * 25 + [1.0] * 5}
    )
    view = data_quality_view(
        {"data_quality": DATA_QUALITY, "source_rows": SOURCE_ROWS},
        episode_missingness(cohort),
        THRESHOLD,
    )
    assert [r["n"] for r in view["rows_read"]] == ["480", "<11"]
    assert view["rows_read"][1]["reason"] == "itemid not in code list"
    assert [(r["reason"], r["n"], r["share"]) for r in view["quarantined"]] == [
        ("quarantined: no numeric value", "30", "10.0 %"),
        ("quarantined: unit missing", "<11", ""),
    ]
    assert view["conversions"] == [
        {
            "analyte": "magnesium",
            "conversion": "mg/dl -> mmol/L x 0.4114",
            "n": "150",
            "share": "50.0 %",
        }
    ]
    assert view["missing_values"] == [
        {"analyte": "magnesium", "of": "300", "n": "30", "share": "10.0 %"},
        {"analyte": "pth", "of": "200", "n": "0", "share": "0.0 %"},
    ]
    # 25 of 30 missing: the 5 present would be revealed by "25", so it shows as ≥20
    assert view["episode_missing"] == [
        {"measure": "Baseline Mg", "n": "0 (0.0 %)"},
        {"measure": "Baseline ionized Ca", "n": "≥20"},
    ]
    assert [r["check"] for r in view["other_checks"]] == ["no_albumin_in_lookback"]


def _analyte_summary(n_small_bin: int) -> pd.DataFrame:
    rows = []
    for measure, mean in (
        ("calcium_corrected", 2.0),
        ("calcium_ionized", 1.0),
        ("magnesium", 0.6),
        ("pth", 8.0),
    ):
        for exposed in (True, False):
            for start in range(-48, 96, 12):
                n = n_small_bin if start == 84 else 40
                rows.append(
                    {
                        "measure": measure,
                        "unit": "mmol/L",
                        "exposed": exposed,
                        "hours_bin_start": start,
                        "n_results": n,
                        "n_episodes": n,
                        "mean_value": mean + 0.001 * start,
                        "sd_value": 0.1,
                    }
                )
    return pd.DataFrame(rows)


def test_analyte_figure_draws_four_panels_and_hides_small_bins() -> None:
    svg = analyte_trajectory_figure(_analyte_summary(5), THRESHOLD, STUDY)
    assert svg.startswith("<svg") and svg == analyte_trajectory_figure(
        _analyte_summary(5), THRESHOLD, STUDY
    )
    for title in ("Albumin-corrected Ca", "Ionized Ca", "Serum Mg", "Intact PTH (pmol/L)"):
        assert title in svg
    # a bin of 5 episodes is drawn exactly like a bin that is not there at all
    full = _analyte_summary(5)
    assert svg == analyte_trajectory_figure(
        full.loc[full["hours_bin_start"] != 84], THRESHOLD, STUDY
    )
    assert svg != analyte_trajectory_figure(_analyte_summary(40), THRESHOLD, STUDY)
    nothing = analyte_trajectory_figure(_analyte_summary(5).iloc[0:0], THRESHOLD, STUDY)
    assert nothing.count("No bin has 11 or more episodes") == 4


def test_sample_figure_draws_one_line_per_episode_with_no_ids() -> None:
    rows = [
        {
            "exposed": e,
            "sample_number": k,
            "measure": m,
            "hours_from_index": h,
            "value": v + 0.01 * k,
        }
        for e in (True, False)
        for k in range(1, 4)
        for m, v in (("calcium_corrected", 2.0), ("magnesium", 0.6))
        for h in (-5, 0, 24, 48)
    ]
    svg = trajectory_sample_figure(pd.DataFrame(rows), THRESHOLD, STUDY)
    assert "(&lt;11 episodes drawn)" in svg  # even a drawn count shows as <11
    svg_1 = trajectory_sample_figure(pd.DataFrame(rows), 1, STUDY)
    assert "(3 episodes drawn)" in svg_1
    # 2 panels x 2 groups x 3 episodes = 12 lines, each with its own Line2D group
    assert len(re.findall(r'<g id="line2d_\d+">\s*<path', svg)) >= 12


@pytest.fixture(scope="module")
def full_html() -> str:
    config = MgcaConfig(study=StudyConfig(), report=ReportConfig(trajectory_sample_size=7))
    return render_report(
        ReportContext(
            title="t",
            results={
                "estimates": [],
                "attrition": ATTRITION,
                "data_quality": DATA_QUALITY,
                "source_rows": SOURCE_ROWS,
            },
            table_one=None,
            trajectory_svg=None,
            config=config,
            threshold=THRESHOLD,
            analyte_trajectory_svg=analyte_trajectory_figure(_analyte_summary(5), THRESHOLD, STUDY),
        )
    )


def test_sections_show_consort_quality_and_figures(full_html) -> None:
    page = _parse(full_html)
    attrition = page.text["attrition"]
    assert "Excluded (n = <11):" in attrition and "n = 2,500" in attrition
    quality = page.text["data-quality"]
    for heading in (
        "Rows read",
        "Lab results quarantined, by reason",
        "Unit conversions applied",
        "Missingness per analyte",
    ):
        assert heading in quality
    assert "Figure 2." in page.text["trajectory"]
    assert "Figure 3." not in page.text["trajectory"]  # no sample given
    assert full_html.count("<svg") == 2  # the flow diagram and Figure 2
    assert "http://" not in full_html and "https://" not in full_html
    assert "@media print" in full_html and "@page" in full_html  # prints on A4


def test_methods_name_every_setting_and_software(full_html) -> None:
    methods = _parse(full_html).text["methods"]
    assert "ionized Ca < 1.12 mmol/L" in methods
    assert "draws 7 episodes per group (seed 20261124)" in methods
    assert "random sample of 3,000 patients (seed 20261124)" in methods  # the mixed model's cap
    assert re.search(r"Python \d+\.\d+", methods)
    assert re.search(r"duckdb \d+\.\d+", methods) and "statsmodels" in methods
    assert "24 h, 48 h, 72 h after index" in methods
    assert "mgca run --config config.yaml" in methods


def test_first_screen_caveats_come_from_this_runs_diagnostics() -> None:
    from mgca.analysis.report.first_screen import cohort_flow, gate_list, run_caveats

    quiet = {"estimates": [{"name": "primary", "estimate": 0.1, "n_exposed": 200,
                            "n_unexposed": 180}]}
    titles = [c.title for c in run_caveats(quiet, STUDY, THRESHOLD, "+0.29")]
    assert titles == ["Confounding by indication", "Regression to the mean", "Corrected calcium"]
    assert "+0.29" in run_caveats(quiet, STUDY, THRESHOLD, "+0.29")[1].text
    troubled = {
        "estimates": [{"name": "primary", "estimate": 0.1, "n_exposed": 40, "n_unexposed": 300}],
        "gate": {"answer": "primary", "checks": [
            {"label": "equipoise", "passed": False, "words": "8 % in equipoise (20 % needed)"},
            {"label": "arm", "passed": True, "words": "fine"},
        ]},
        "diagnostics": {"warnings": ["poor overlap: 9 % of scores outside [0.05, 0.95]"]},
        "sensitivity": {"analyses": [
            {"name": "grace_3h", "unit": "mmol/L", "estimate": 0.3, "ci_low": 0.2,
             "ci_high": 0.4},
            {"name": "horizon_72h", "unit": "mmol/L", "estimate": 0.3, "ci_low": 0.2,
             "ci_high": 0.4, "horizon_hours": 72},  # another question: no caveat
        ]},
        "missing_outcome_share": {"share": 0.25, "n_eligible": 400},
    }
    caveats = run_caveats(troubled, STUDY, THRESHOLD)
    assert [c.title for c in caveats] == [
        "Gate check failed", "Balance / overlap", "Sensitivity analyses disagree"
    ]
    assert "grace 3h" in caveats[2].text and "horizon" not in caveats[2].text
    more = run_caveats(troubled, STUDY, THRESHOLD, limit=6)
    assert "25 % of 400 eligible episodes" in more[3].text and more[4].title == "Small arm"
    assert gate_list(troubled["gate"]) == [
        {"passed": False, "words": "8 % in equipoise (20 % needed)"},
        {"passed": True, "words": "fine"},
    ]
    # checks that fail for one shared reason: one caveat naming them, each listed with its label
    shared = "not assessable: no weighted estimate: the propensity model separates the arms"
    no_model = {"gate": {"checks": [
        {"label": "smaller arm (episodes)", "passed": False, "words": "smaller arm: <11"},
        {"label": "equipoise", "passed": False, "words": shared},
        {"label": "balance", "passed": False, "words": shared},
    ]}}
    texts = [c.text for c in run_caveats(no_model, STUDY, THRESHOLD) if c.title.startswith("Gate")]
    assert texts == ["smaller arm: <11", f"equipoise; balance: {shared}"]
    assert [g["words"] for g in gate_list(no_model["gate"])][1:] == [
        f"equipoise: {shared}", f"balance: {shared}"
    ]
    flow = cohort_flow(ATTRITION, THRESHOLD)
    assert [f["n"] for f in flow[:3]] == ["2,500", "2,451", "300"]
    assert [p["n"] for p in flow[3]["parts"]] == ["290", "<11"]


def test_time_to_correction_curves_weighted_cut_at_small_risk_sets_and_suppressed() -> None:
    import numpy as np

    from mgca.analysis.report.correction_curves import (
        correction_curves,
        correction_figure,
        weighted_cumulative_incidence,
    )

    # worked by hand: weights 1, 3 on the first two events change the first step
    t, f, n = weighted_cumulative_incidence(
        np.array([1.0, 2.0, 5.0, 5.0]), np.array([1, 1, 0, 1]), np.array([1.0, 3.0, 1.0, 1.0])
    )
    assert t.tolist() == [1.0, 2.0, 5.0] and n.tolist() == [4, 3, 2]
    assert np.allclose(f, [1 / 6, 1 - (5 / 6) * (2 / 5), 1 - (5 / 6) * (2 / 5) * 0.5])
    # 30 exposed episodes corrected at 1..30 h, 30 unexposed censored at 40 h
    cohort = pd.DataFrame(
        {"encounter_id": [f"e{i}" for i in range(60)], "exposed": [True] * 30 + [False] * 30}
    )
    correction = pd.DataFrame(
        {
            "encounter_id": [f"e{i}" for i in range(60)],
            "hours_to_event": [float(i + 1) for i in range(30)] + [40.0] * 30,
            "corrected": [True] * 30 + [False] * 30,
        }
    )
    given, not_given = correction_curves(cohort, correction, 11, 48)
    # the exposed curve stops once fewer than 11 remain at risk (at 20 h: 11 left)
    assert given.times.max() == 20.0
    assert given.at_risk == [30, 19, 7, 0, 0]  # at 0, 12, 24, 36, 48 h
    assert not_given.incidence.max() == 0.0
    svg = correction_figure([given, not_given], 11, 48)
    assert svg is not None and "&lt;11" in svg and ">7<" not in svg
    assert ">19<" in svg  # a count at or above the threshold is printed


def test_report_shows_the_correction_figure_when_the_model_task_drew_it() -> None:
    from mgca.analysis.report.correction_curves import FIGURE_KEY

    svg = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0"/></svg>'
    context = ReportContext(
        title="t", results={"attrition": ATTRITION}, table_one=None, trajectory_svg=None,
        config=CONFIG, threshold=THRESHOLD, figures={FIGURE_KEY: svg},
    )
    html = render_report(context)
    section = html[html.index('id="time-to-correction"') :]
    assert "Numbers at risk are unweighted" in section
    empty = render_report(replace_figures(context))
    assert "Not drawn in this run" in empty


def replace_figures(context: ReportContext) -> ReportContext:
    import dataclasses

    return dataclasses.replace(context, figures={})


def test_cohort_flow_shows_mg_after_the_grace_period_per_arm_with_its_labels() -> None:
    deviations = [
        {"exposed": True, "n_mg_after_grace": 100, "n_no_mg_after_grace": 160},
        {
            "exposed": False,
            "n_mg_after_grace": None,
            "n_no_mg_after_grace": None,
            "suppressed": "<11",
            "suppressed_why": {"n_mg_after_grace": "small", "n_no_mg_after_grace": "small"},
        },
    ]
    html = render_report(
        ReportContext(
            title="t",
            results={
                "estimates": [],
                "attrition": ATTRITION,
                "data_quality": DATA_QUALITY,
                "source_rows": SOURCE_ROWS,
                "post_grace_deviations": deviations,
            },
            table_one=None,
            trajectory_svg=None,
            config=MgcaConfig(study=StudyConfig()),
            threshold=THRESHOLD,
        )
    )
    (table,) = re.findall(r'<table class="deviations">.*?<tbody>(.*?)</tbody>', html, re.S)
    rows = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td.*?</td>", tr, re.S)]
        for tr in re.findall(r"<tr>.*?</tr>", table, re.S)
    ]
    exposed, unexposed = group_label(True, STUDY), group_label(False, STUDY)
    assert rows == [[exposed, "100", "160"], [unexposed, "&lt;11", "&lt;11"]]
    assert "initiation" in _parse(html).text["attrition"]

"""The HTML report and the trajectory figure: self-contained, ordered, no ids or dates."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort, trajectory_summary

from mgca.analysis.estimation.models import (
    InsufficientDataError,
    fit_primary,
    naive_before_after,
    unadjusted_difference,
)
from mgca.analysis.report.figures import calcium_trajectory_figure
from mgca.analysis.report.render import ReportContext, render_report
from mgca.analysis.report.table_one import table_one
from mgca.config import MgcaConfig

CONFIG = MgcaConfig()
STUDY = CONFIG.study
THRESHOLD = CONFIG.privacy.small_cell_threshold
SECTIONS = [
    "summary",  # the first screen: question, answer, forest, flow, gate list, caveats
    "estimates",
    "attrition",
    "table-one",
    "diagnostics",
    "sensitivity",
    "missing-outcomes",
    "negative-controls",
    "secondary",
    "effect-modification",
    "time-to-correction",
    "forest",
    "trajectory",
    "target-trial",
    "estimand",
    "data-quality",
    "methods",
    "provenance",
]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Page(HTMLParser):
    """Collects tags, attributes, section order and the text of each section."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.sections: list[str] = []
        self.text: dict[str, str] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "section":
            self._section = dict(attrs)["id"]
            self.sections.append(self._section)

    def handle_data(self, data: str) -> None:
        if self._section:
            self.text[self._section] = self.text.get(self._section, "") + data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(600, seed=5)[0]


@pytest.fixture(scope="module")
def results(cohort) -> dict:
    return {
        "estimates": [
            fit_primary(cohort, STUDY),
            unadjusted_difference(cohort, STUDY),
            naive_before_after(cohort, STUDY),
        ],
        "attrition": [
            {"step": "encounters in source", "n": 9000, "n_excluded": 0, "exclusion_reason": None},
            {"step": "adults", "n": 8993, "n_excluded": 7, "exclusion_reason": "age < 18"},
            {"step": "linked stays", "n": None, "n_excluded": 8990, "suppressed": "<11"},
        ],
        "calcium_measures": [
            {
                "role": "index",
                "calcium_measure": "ionized",
                "n_eligible_index_events": 140,
                "n_analysed": 121,
            },
            {
                "role": "index",
                "calcium_measure": "corrected_same_day_albumin",
                "n_eligible_index_events": 260,
                "n_analysed": None,
                "suppressed": "<11",
            },
            {
                "role": "index",
                "calcium_measure": "corrected_lookback_albumin",
                "n_eligible_index_events": 20,
                "n_analysed": None,
                "suppressed": "<11",
            },
        ],
        "data_quality": [
            {
                "table_name": "lab_results",
                "check_name": "unknown_unit",
                "analyte": "magnesium",
                "n_rows": 40000,
                "n_flagged": 3,
                "detail": "unit 'mg%' first seen 2150-03-14",
            }
        ],
        "provenance": {
            "mgca_version": "0.1.0",
            "git_commit": "0123456789abcdef0123456789abcdef01234567",
            "config_sha256": CONFIG.sha256(),
            "input_fingerprint": "sha256:feedface",
            "started_at_utc": "2026-11-24T21:29:53Z",
            "duration_s": 12.34,
            "source": "synthetic",
        },
    }


@pytest.fixture(scope="module")
def html(cohort, results) -> str:
    context = ReportContext(
        title=CONFIG.report.title,
        results=results,
        table_one=table_one(cohort, THRESHOLD),
        trajectory_svg=calcium_trajectory_figure(trajectory_summary(cohort), THRESHOLD, STUDY),
        config=CONFIG,
        threshold=THRESHOLD,
    )
    return render_report(context)


def test_report_parses_with_every_section_in_order(html) -> None:
    page = _parse(html)
    assert page.sections == SECTIONS
    assert "svg" in page.tags
    assert html.startswith("<!DOCTYPE html>")


def test_summary_states_the_estimate_and_interval(html, results) -> None:
    primary = results["estimates"][0]
    summary = _parse(html).text["summary"]
    assert f"{primary['estimate']:+.2f} mmol/L" in summary
    assert f"95 % CI {primary['ci_low']:.2f} to {primary['ci_high']:.2f} mmol/L" in summary
    assert "What matters most in this run" in summary  # the run's three caveats
    assert html.count('<ol class="fs-caveats">') == 1
    first = html[: html.index('<section id="estimates"')]
    assert first.count("<li><strong>") == 3
    assert 'id="first-forest"' in first and "<svg" in first  # the forest plot
    assert "Regression to the mean" not in _parse(html).text["estimand"]


def test_each_method_paragraph_appears_once_in_the_methods_appendix(html, results) -> None:
    for e in results["estimates"]:
        method = e.get("method")
        if method:
            assert html.count(method.split(".")[0]) == 1, e["name"]
            assert f'id="method-{e["name"]}"' in html
            assert f'href="#method-{e["name"]}"' in html


def test_report_is_self_contained(html) -> None:
    page = _parse(html)
    assert "http://" not in html and "https://" not in html
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    for tag, name, value in page.attrs:
        assert name not in {"src", "srcset"}, (tag, name, value)
        if name.endswith("href"):
            assert (value or "").startswith("#"), (tag, name, value)
    assert "@import" not in html
    assert not re.search(r"url\((?!#)", html)  # only the SVG's own clip paths


def test_no_ids_or_absolute_dates(html, cohort) -> None:
    for value in pd.concat([cohort["subject_id"], cohort["encounter_id"]]).unique():
        assert value not in html
    assert "SUBJ-" not in html and "ENC-" not in html
    assert not DATE.search(html), DATE.search(html)
    assert "12.3 s" in _parse(html).text["provenance"]  # the run time, not the start date


def test_small_counts_are_hidden_everywhere(html) -> None:
    page = _parse(html)
    attrition = page.text["attrition"]
    assert "8,993" in attrition and "<11" in attrition
    assert not re.search(r"(?<![\d,])7(?![\d,])", attrition)
    assert "<11" in page.text["data-quality"]
    assert not re.search(r"(?<![\d,<])3(?![\d,])", page.text["data-quality"])
    assert "<11" in page.text["trajectory"]  # the 5-episode bins of the figure


def test_which_calcium_measure_defined_the_index_is_shown_with_small_counts_hidden(html) -> None:
    attrition = _parse(html).text["attrition"]
    assert "Which calcium measure defined the index / the outcome" in attrition
    assert "corrected lookback albumin" in attrition and "121" in attrition
    assert attrition.count("<11") >= 3  # the attrition's one, and both hidden measure cells


def test_methods_are_generated_from_config(html) -> None:
    methods = _parse(html).text["methods"]
    assert "serum Mg < 0.70 mmol/L" in methods
    assert "albumin-corrected Ca < 2.15 mmol/L" in methods
    assert "index + 6 h]" in methods and "index + 48 h, within ± 12 h" in methods


def test_no_estimate_still_renders_every_section() -> None:
    empty = ReportContext(
        title=CONFIG.report.title,
        results={"estimates": [], "attrition": [], "data_quality": [], "provenance": {}},
        table_one=None,
        trajectory_svg=None,
        config=CONFIG,
        threshold=THRESHOLD,
        no_estimate_reason="No eligible episodes",
    )
    html = render_report(empty)
    page = _parse(html)
    assert page.sections == SECTIONS
    assert "No eligible episodes." in page.text["summary"]
    assert "average treatment effect" in page.text["estimand"]
    assert "No episodes to describe" in page.text["table-one"]


def test_no_estimate_reason_from_the_model_error(cohort) -> None:
    with pytest.raises(InsufficientDataError) as err:
        fit_primary(cohort.loc[~cohort["exposed"]], STUDY)
    context = ReportContext(
        title="t",
        results={"estimates": [], "estimate_notes": [f"primary: {err.value}"]},
        table_one=None,
        trajectory_svg=None,
        config=CONFIG,
        threshold=THRESHOLD,
    )
    summary = _parse(render_report(context)).text["summary"]
    assert (
        "No primary estimate: the exposed (Mg repletion) arm has no analysable episodes, "
        "so there is nothing to compare." in summary
    )
    assert "report will say" not in summary


def test_small_arm_estimate_is_withheld(results) -> None:
    primary = dict(results["estimates"][0], n_exposed=None)
    context = ReportContext(
        title="t",
        results={"estimates": [primary]},
        table_one=None,
        trajectory_svg=None,
        config=CONFIG,
        threshold=THRESHOLD,
    )
    summary = _parse(render_report(context)).text["summary"]
    assert "No estimate" in summary
    assert f"{primary['estimate']:+.2f}" not in summary


def test_rendering_and_figure_are_byte_identical_on_rerun(cohort, html, results) -> None:
    summary = trajectory_summary(cohort)
    first = calcium_trajectory_figure(summary, THRESHOLD, STUDY)
    assert first == calcium_trajectory_figure(summary, THRESHOLD, STUDY)
    assert first.startswith("<svg")
    again = ReportContext(
        title=CONFIG.report.title,
        results=results,
        table_one=table_one(cohort, THRESHOLD),
        trajectory_svg=first,
        config=CONFIG,
        threshold=THRESHOLD,
    )
    assert render_report(again) == html


def test_figure_draws_hidden_bins_exactly_like_empty_ones(cohort) -> None:
    summary = trajectory_summary(cohort)
    last = summary["hours_bin_start"] == summary["hours_bin_start"].max()
    assert (summary.loc[last, "n_episodes"] < THRESHOLD).all()
    with_small = calcium_trajectory_figure(summary, THRESHOLD, STUDY)
    without = calcium_trajectory_figure(summary.loc[~last], THRESHOLD, STUDY)
    assert with_small.replace("&lt;11", "0") == without
    nothing = calcium_trajectory_figure(summary, 10**6, STUDY)
    assert "No bin has" in nothing

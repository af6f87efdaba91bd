"""`mgca synth` and `mgca run` end to end, as a user types them (real CLI, real Prefect
temporary server, real DuckDB file, real statsmodels fits)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

CONTRACT_ESTIMATE_KEYS = {
    "name": str,
    "estimand": str,
    "outcome": str,
    "unit": str,
    "estimate": float,
    "ci_low": float,
    "ci_high": float,
    "p_value": float,
    "n": int,
    "grace_hours": int,
    "horizon_hours": int,
    "method": str,
}
COHORT_COLUMNS = {
    "subject_id",
    "encounter_id",
    "index_time",
    "exposed",
    "baseline_mg_mmol_l",
    "baseline_ca_corrected_mmol_l",
    "outcome_ca_corrected_mmol_l",
}


def _mgca(
    *args: str, cwd: Path, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "mgca.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href"} and value and re.match(r"^(https?:)?//", value):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(yaml.safe_dump({"synthetic": {"stays": 2500, "seed": 7, "world": "effect"}}))
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing (CI runs as root on a clean
    machine). The report must be seen in a browser: no Chromium is a failure, not a skip."""
    from mgca.analysis.report.browser import find_chromium

    found = find_chromium()
    if found:
        return found
    install = subprocess.run(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        shell=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    found = find_chromium()
    if not found:
        pytest.fail(
            "the report test needs Chromium and `apt-get install -y chromium` did not provide "
            f"it (exit {install.returncode}): {install.stderr[-800:]}. Install Chromium or set "
            "MGCA_CHROMIUM to its executable."
        )
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, small_config: Path, chromium: str) -> Path:
    work = tmp_path_factory.mktemp("work")
    out = work / "run"
    result = _mgca(
        "run", "--out", str(out), "--config", str(small_config), "--screenshot", cwd=work
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "primary:" in result.stdout and "mmol/L" in result.stdout
    assert f"screenshot: {out / 'report.png'}" in result.stdout
    return out


def test_run_writes_the_three_contract_outputs(run_dir: Path) -> None:
    for name in ("report.html", "results.json", "cohort.parquet", "config.yaml"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "private" / "mgca.duckdb").is_file()
    assert not list(run_dir.parent.glob(".staging-*"))  # nothing half-written left behind


def test_results_json_follows_the_contract(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    primary = next(e for e in results["estimates"] if e["name"] == "primary")
    for key, kind in CONTRACT_ESTIMATE_KEYS.items():
        assert isinstance(primary[key], kind), (key, primary[key])
    assert primary["unit"] == "mmol/L"
    assert primary["ci_low"] < primary["estimate"] < primary["ci_high"]
    assert primary["grace_hours"] == 6 and primary["horizon_hours"] == 48
    assert "average treatment effect" in primary["estimand"].lower()
    steps = results["attrition"]
    assert steps and all(isinstance(s["step"], str) for s in steps)
    assert all(isinstance(s["n"], int) for s in steps if s.get("n") is not None)
    provenance = results["provenance"]
    for key in ("mgca_version", "git_commit", "config_sha256", "input_fingerprint"):
        assert provenance[key]
    truth = results["synthetic_truth"]
    assert truth["n"] == primary["n"]


def test_results_json_has_the_statistics_blocks(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    from mgca.analysis.estimation.target_trial import COMPONENTS

    assert list(results["target_trial"]) == list(COMPONENTS)
    assert all(isinstance(v, str) and v for v in results["target_trial"].values())
    names = {e["name"] for e in results["secondary"]}
    assert {
        "calcium_corrected_risk_difference",
        "calcium_corrected_odds_ratio",
        "time_to_calcium_correction_hazard_ratio",
        "calcium_alone_effect",
        "calcium_corrected_fixed_looks_risk_difference",
        "calcium_corrected_at_horizon_risk_difference",
        "pth_response_ratio",
        "mg_dose_response",
        "trajectory_slope_difference",
    } <= names
    for e in results["secondary"]:
        for key in (
            "name",
            "estimand",
            "outcome",
            "unit",
            "scale",
            "method",
            "n",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "notes",
            "reason",
        ):
            assert key in e, (e["name"], key)
        assert (e["estimate"] is None) == bool(e["reason"] or e.get("withheld")), e["name"]
    fitted = [e for e in results["secondary"] if e["estimate"] is not None]
    assert len(fitted) >= 5  # PTH may be unmeasured after the grace period in small worlds
    # the any-draw outcomes never carry a contrast: per arm only, with how often each arm
    # was re-tested
    by_design = {e["name"]: e for e in results["secondary"] if e.get("withheld_by_design")}
    assert set(by_design) == {
        "calcium_corrected_risk_difference",
        "calcium_corrected_odds_ratio",
        "time_to_calcium_correction_hazard_ratio",
    }
    for e in by_design.values():
        assert e["withheld_by_design"] == "detection_bias"
        assert e["estimate"] is None and e["ci_low"] is None and e["p_value"] is None
        assert [r["arm"] for r in e["by_arm"]] == [
            "given Mg within the grace period",
            "not given Mg within the grace period",
        ]
        assert sum(r["n"] for r in e["by_arm"]) == e["n"]
    window = by_design["calcium_corrected_risk_difference"]["by_arm"]
    assert all(r["calcium_draws_in_window_per_episode"] >= 1 for r in window)
    assert all(0 <= r["share_corrected_within_window"] <= 1 for r in window)
    diagnostics = results["diagnostics"]
    assert {"balance", "overlap", "ess", "warnings"} <= set(diagnostics)
    assert all({"smd_before", "smd_after"} <= set(r) for r in diagnostics["balance"])
    sensitivity = results["sensitivity"]
    assert [e["name"] for e in sensitivity["analyses"]] == [
        "ionized_calcium_outcome",
        "excluding_advanced_ckd",
        "same_day_albumin",
        "grace_3h",
        "grace_12h",
        "horizon_24h",
        "horizon_72h",
        "ionized_only_cohort",
    ]
    assert sensitivity["evalue"]["evalue_estimate"] >= 1
    controls = results["negative_controls"]
    assert [c["name"] for c in controls] == [
        "sodium_outcome",
        "albumin_outcome",
        "placebo_window",
        "potassium_exposure",
    ]
    for c in controls:
        assert c["estimand"] and c["outcome"] and c["exposure"], c["name"]
        assert (c["estimate"] is None) == bool(c["reason"] or c.get("withheld")), c["name"]
    calibration = results["calibration"]
    assert calibration["min_controls"] == 3
    assert (calibration["estimate"] is None) == bool(calibration["reason"])
    modification = results["effect_modification"]
    assert {e["modifier"] for e in modification} == {
        "baseline_mg_class",
        "pth_status_before_index",
        "egfr_class",
        "mg_route_class",
    }
    for e in modification:
        assert e["estimand"] and (e["estimate"] is None) == bool(e["reason"] or e.get("withheld"))
    caveats = {e["name"] for e in results["secondary"] if e.get("caveat")}
    assert "trajectory_slope_difference" in caveats
    assert "time_to_calcium_correction_hazard_ratio" not in caveats
    assert "mg_dose_response" not in caveats
    assert not list((run_dir / "private").glob("sensitivity-*"))  # copies cleaned up
    html = (run_dir / "report.html").read_text()
    for section in (
        "target-trial",
        "estimates",
        "diagnostics",
        "secondary",
        "secondary-descriptive",
        "sensitivity",
        "negative-controls",
        "forest",
        "time-to-correction",
        "effect-modification",
    ):
        assert f'id="{section}"' in html
    assert "<svg" in html.split('id="time-to-correction"')[1].split("</section>")[0]


def test_cohort_parquet_is_one_row_per_episode(run_dir: Path) -> None:
    cohort = pd.read_parquet(run_dir / "cohort.parquet")
    assert set(cohort.columns) >= COHORT_COLUMNS
    assert not cohort.duplicated(["encounter_id"]).any()
    assert cohort["exposed"].dtype == bool
    results = json.loads((run_dir / "results.json").read_text())
    estimates = {e["name"]: e for e in results["estimates"]}
    assert estimates["primary_complete_case"]["n"] <= len(cohort)
    assert len(cohort) in {step["n"] for step in results["attrition"]}
    # the IPCW primary weights the analysed episodes back to every eligible one: its n is
    # bounded by the episodes eligible before the outcome step, not by the analysed ones
    steps = results["attrition"]
    outcome_step = next(
        k for k, step in enumerate(steps) if step["step"].startswith("analysed episodes (")
    )
    assert estimates["primary"]["n"] <= steps[outcome_step - 1]["n"]


def test_report_is_valid_self_contained_html(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    parser = _Collector()
    parser.feed(html)
    assert parser.tags[:1] == ["html"] or "html" in parser.tags
    assert "svg" in parser.tags  # the trajectory figure is inline
    assert "table" in parser.tags
    assert not parser.external, parser.external  # opens offline
    assert "<script src" not in html
    text = " ".join(parser.text)
    results = json.loads((run_dir / "results.json").read_text())
    primary = next(e for e in results["estimates"] if e["name"] == "primary")
    assert f"{primary['estimate']:.2f}" in text
    assert "mmol/L" in text
    truth = results["synthetic_truth"]["true_effect"]
    assert "Known truth" in text and f"{truth:+.2f}" in text  # synthetic runs show the truth


def test_shared_outputs_hold_no_ids_or_patient_dates(run_dir: Path) -> None:
    cohort = pd.read_parquet(run_dir / "cohort.parquet")
    report = (run_dir / "report.html").read_text()
    shared = report + (run_dir / "results.json").read_text()
    for value in pd.concat([cohort["subject_id"], cohort["encounter_id"]]).unique():
        assert not re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d.])", shared), value
    # Synthetic stays live in 2150-2152 (MIMIC-style shifted years): no such date may leak.
    assert not re.search(r"215[0-3]-\d\d-\d\d", shared)
    # The report shows no date at all, not even the run's own start (results.json keeps it).
    assert not re.search(r"\b\d{4}-\d{2}-\d{2}\b", report)


class _Visible(HTMLParser):
    """Text a reader sees in Chromium's rendered DOM (not in <style>), and the drawn SVGs."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.svgs: list[dict[str, int | bool]] = []
        self._skip = 0
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"style", "script", "title"}:
            self._skip += 1
        if tag == "svg":
            if self._depth == 0:
                label = dict(attrs).get("aria-label") or ""
                self.svgs.append({"path": 0, "rect": 0, "text": 0, "flow": "Flow diagram" in label})
            self._depth += 1
        elif self._depth and tag in {"path", "rect", "text"}:
            self.svgs[-1][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"style", "script", "title"}:
            self._skip -= 1
        if tag == "svg":
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def test_report_as_chromium_draws_it(run_dir: Path) -> None:
    """Open the report in headless Chromium like a reader (offline: every host name fails to
    resolve) and check what it drew; `mgca run --screenshot` left report.png in the run."""
    from PIL import Image

    from mgca.analysis.report.browser import element_boxes, rendered_dom

    results = json.loads((run_dir / "results.json").read_text())
    gate = results["gate"]
    answer = next(e for e in results["estimates"] if e["name"] == gate["answer"])
    page = _Visible()
    page.feed(rendered_dom(run_dir / "report.html"))
    text = re.sub(r"\s+", " ", " ".join(page.text))
    assert "Does calcium correct once magnesium is repleted?" in text
    stated = (
        f"by {answer['estimate']:+.2f} mmol/L (95 % CI {answer['ci_low']:.2f} to "
        f"{answer['ci_high']:.2f} mmol/L"
    )
    if gate["passed"]:
        assert stated in text
    else:  # the small test hospital may not carry an answer: then the report says so
        assert "This data cannot answer the question" in text and stated not in text
    assert "Diagnostics gate" in text
    # The first screen (section #summary): the answer sentence, one forest plot and the gate's
    # checks as a pass/fail list, all within one A4 page (~1,300 px) at 1,280 px wide.
    dom = rendered_dom(run_dir / "report.html")
    first = dom[dom.index('<section id="summary"') : dom.index('<section id="estimates"')]
    first_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", first))
    if gate["passed"]:
        assert stated in first_text
    else:
        assert "This data cannot answer the question" in first_text
    assert 'id="first-forest"' in first and first.count("<svg") == 1
    assert first.count('class="pass"') + first.count('class="fail"') == len(gate["checks"])
    assert first.count('class="fail"') == sum(not c["passed"] for c in gate["checks"])
    assert "What matters most in this run" in first_text
    # the forest prints each row's numbers; the flow's headline steps are not suppressed
    from mgca.analysis.report.format import format_ci

    primary_ci = f"({format_ci(answer)})"
    assert gate["passed"] is False or primary_ci in first, primary_ci
    assert not re.search(r"suppressed</span>\s*Eligible episodes", first)
    boxes = element_boxes(
        run_dir / "report.html", ["#summary", "#answer", "#first-forest", ".fs-checks"]
    )
    assert all(boxes.values()), boxes
    assert boxes["#summary"]["bottom"] <= 1300, boxes  # one screen, one A4 page
    for heading in (
        "Cohort flow",
        "Table 1.",
        "Trajectories around index",
        "Data quality",
        "Methods",
        "Provenance",
    ):
        assert heading in text, heading
    # the flow diagram (boxes) and the three figures (matplotlib paths), all drawn inline
    assert len(page.svgs) >= 4, page.svgs
    (flow,) = [s for s in page.svgs if s["flow"]]
    assert flow["rect"] >= 7 and flow["text"] >= 7  # CONSORT boxes
    figures = [s for s in page.svgs if not s["flow"]]
    # Figures 1-3 plus the statistics figures (forest, balance, overlap)
    assert sum(s["path"] >= 10 for s in figures) >= 5, page.svgs
    assert "Figure 3." in text  # the individual-trajectory sample was drawn
    assert "SMD" in text and "<11" in text

    png = run_dir / "report.png"
    image = Image.open(png).convert("L")
    assert image.size[0] == 1280
    top = image.crop((0, 0, 1280, 600))
    assert np.asarray(top).min() < 60  # the title and summary are drawn in dark ink
    assert len(np.unique(np.asarray(image.crop((0, 2000, 1280, 6000))))) > 20  # not blank
    # the whole page, not cut at a window height: as tall as the page, ink down to its end
    page = element_boxes(run_dir / "report.html", ["body", "#provenance"])
    assert abs(image.size[1] - page["body"]["bottom"]) < 80, (image.size, page)
    assert page["#provenance"]["bottom"] <= image.size[1]
    assert np.asarray(image.crop((0, image.size[1] - 400, 1280, image.size[1]))).min() < 60


def test_synth_then_run_on_that_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = _mgca(
        "synth",
        "--world",
        "null",
        "--seed",
        "3",
        "--stays",
        "800",
        "--out",
        str(data),
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert {p.name for p in data.glob("*.parquet")} == {
        "persons.parquet",
        "encounters.parquet",
        "lab_results.parquet",
        "medication_administrations.parquet",
    }
    out = tmp_path / "out"
    result = _mgca(
        "run", "--source", "synthetic", "--path", str(data), "--out", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["source"] == "synthetic"
    assert results["synthetic_truth"]["true_effect"] == 0.0  # the null world


def test_rerun_on_same_folder_replaces_it_atomically(tmp_path: Path, small_config: Path) -> None:
    out = tmp_path / "run"
    first = _mgca("run", "--out", str(out), "--config", str(small_config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = json.loads((out / "results.json").read_text())
    second = _mgca("run", "--out", str(out), "--config", str(small_config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    after = json.loads((out / "results.json").read_text())
    same = [e["estimate"] for e in before["estimates"]] == [
        e["estimate"] for e in after["estimates"]
    ]
    assert same  # same input + config → identical estimates
    assert not out.with_name("run.previous").exists()

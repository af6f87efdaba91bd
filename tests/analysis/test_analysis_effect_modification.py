"""Effect modification of the primary contrast, and its report section: known answers on a
seeded simulated cohort (tolerance-based), the small-sample rule, and the rendered table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort
from test_analysis_report import _parse

from mgca.analysis.estimation.mechanism import (
    DETECTION_BIAS_CAVEAT,
    effect_modification,
    flag_detection_bias,
)
from mgca.analysis.report.render import ReportContext, render_report
from mgca.config import MgcaConfig, StudyConfig

STUDY = StudyConfig()


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A cohort whose effect is +0.15 mmol/L below Mg 0.5 and +0.05 from 0.5, not modified by
    eGFR; PTH is measured in too few episodes to be estimated; route IV for every exposed."""
    frame, _ = simulate_cohort(1500, seed=8)
    rng = np.random.default_rng(8)
    t = frame["exposed"].astype(bool).to_numpy()
    low = frame["baseline_mg_mmol_l"].to_numpy() < 0.5
    y = 2.0 + 0.2 * frame["baseline_mg_mmol_l"] + np.where(low, 0.15, 0.05) * t
    frame = frame.assign(outcome_ca_corrected_mmol_l=y + rng.normal(0, 0.05, len(t)))
    pth = np.where(
        rng.uniform(size=len(t)) < 0.02, "appropriately_raised", "not_measured_before_index"
    )
    modifiers = pd.DataFrame(
        {
            "encounter_id": frame["encounter_id"],
            "baseline_mg_class": np.where(low, "grade_2_or_worse", "grade_1"),
            "mg_route_class": np.where(t, "iv", "none"),
            "pth_status_before_index": pth,
            "egfr_class": np.where(rng.uniform(size=len(t)) < 0.4, "reduced", "preserved"),
        }
    )
    return frame, modifiers


def test_strata_and_their_difference_are_recovered(data) -> None:
    cohort, modifiers = data
    entries = {e["name"]: e for e in effect_modification(cohort, modifiers, STUDY, 20)}
    low = entries["effect_modification_baseline_mg_class_grade_2_or_worse"]
    high = entries["effect_modification_baseline_mg_class_grade_1"]
    diff = entries["effect_modification_baseline_mg_class"]
    assert abs(low["estimate"] - 0.15) < 0.02 and low["ci_low"] < 0.15 < low["ci_high"]
    assert abs(high["estimate"] - 0.05) < 0.02
    assert diff["ci_low"] < -0.10 < diff["ci_high"] and diff["ci_high"] < 0
    assert low["n"] == low["n_exposed"] + low["n_unexposed"] < len(cohort)
    egfr = entries["effect_modification_egfr_class"]
    assert egfr["ci_low"] < 0 < egfr["ci_high"]
    for e in entries.values():
        assert e["modifier"] and e["estimand"] and "adjustment_set" in e


def test_small_strata_and_an_absent_route_get_a_reason_not_a_number(data) -> None:
    cohort, modifiers = data
    entries = {e["name"]: e for e in effect_modification(cohort, modifiers, STUDY, 20)}
    pth = entries["effect_modification_pth_status_before_index"]
    assert pth["estimate"] is None and "fewer than 20" in pth["reason"]
    oral = entries["effect_modification_mg_route_class_oral"]
    assert oral["estimate"] is None and "oral" in oral["reason"]
    assert entries["effect_modification_mg_route_class_iv"]["estimate"] is not None


def test_report_section_shows_strata_reasons_and_the_detection_bias_caveat(data) -> None:
    cohort, modifiers = data
    em = effect_modification(cohort, modifiers, STUDY, 20)
    secondary = flag_detection_bias(
        [
            {
                "name": "trajectory_slope_difference",
                "estimate": 0.1,
                "ci_low": 0.0,
                "ci_high": 0.2,
                "n": 300,
                "scale": "slope difference",
                "unit": "mmol/L per day",
                "method": "m",
                "estimand": "e",
                "outcome": "o",
            },
        ]
    )
    html = render_report(
        ReportContext(
            title="t",
            results={"estimates": [], "effect_modification": em, "secondary": secondary},
            table_one=None,
            trajectory_svg=None,
            config=MgcaConfig(),
            threshold=11,
        )
    )
    page = _parse(html)
    section = page.text["effect-modification"]
    assert "By baseline Mg" in section and "Mg < 0.5 mmol/L (CTCAE grade 2 or worse)" in section
    assert "difference between strata" in section and "By eGFR" in section
    assert "no estimate: no effect modification by PTH before treatment" in section
    assert DETECTION_BIAS_CAVEAT in page.text["secondary"]


def test_ionized_only_cohort_asks_for_the_switched_cohort_and_fits_ionized_ca() -> None:
    """The sensitivity analysis re-derives its cohort with the switch on and recovers a known
    +0.04 mmol/L effect on ionized Ca, adjusting for baseline ionized Ca (which drives it)."""
    from mgca.analysis.estimation.sensitivity import ionized_only_cohort

    frame, _ = simulate_cohort(800, seed=9)
    rng = np.random.default_rng(9)
    t = frame["exposed"].astype(bool).to_numpy()
    base = rng.uniform(0.9, 1.1, len(t))
    frame = frame.assign(
        baseline_ca_ionized_mmol_l=base,
        outcome_ca_ionized_mmol_l=0.3 + 0.7 * base + 0.04 * t + rng.normal(0, 0.03, len(t)),
        baseline_ca_total_mmol_l=np.nan,  # an ionized index has no total Ca: not needed
    )
    asked: list[MgcaConfig] = []

    def cohort_for(name: str, config: MgcaConfig) -> pd.DataFrame:
        asked.append(config)
        return frame

    e = ionized_only_cohort(cohort_for, MgcaConfig())
    assert asked and asked[0].study.index_on_ionized_calcium_only
    assert e["name"] == "ionized_only_cohort" and e["reason"] is None
    assert e["ci_low"] < 0.04 < e["ci_high"] and abs(e["estimate"] - 0.04) < 0.015
    assert "ionized" in e["estimand"] and "ionized" in e["outcome"]

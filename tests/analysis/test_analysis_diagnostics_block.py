"""results.json ``diagnostics`` and the report's statistics sections, from a simulated
cohort: aggregates only, warnings when balance is poor, figures with no small counts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.analyses import diagnostics_block
from mgca.analysis.estimation.target_trial import COMPONENTS, target_trial_spec
from mgca.analysis.report.diagnostic_figures import forest_rows, overlap_histogram
from mgca.analysis.report.stats import stats_sections
from mgca.config import MgcaConfig


def test_diagnostics_block_is_json_with_balance_overlap_ess_and_figures() -> None:
    cohort, _ = simulate_cohort(600, seed=2)
    block, figures = diagnostics_block(cohort, threshold=11)
    json.dumps(block)  # JSON-ready (no numpy, no NaN objects)
    assert {"balance", "overlap", "ess", "warnings", "limits", "n", "n_dropped"} <= set(block)
    assert {r["covariate"] for r in block["balance"]} >= {"baseline_mg_mmol_l", "age_years"}
    assert [r["arm"] for r in block["ess"]] == ["exposed", "unexposed"]
    assert set(figures) == {"love_plot", "overlap"}
    assert all(svg.lstrip().startswith("<svg") for svg in figures.values())
    assert "SUBJ-" not in json.dumps(block) + "".join(figures.values())


def test_poor_balance_is_warned_about() -> None:
    cohort, _ = simulate_cohort(600, seed=2)
    # a strong pre-index covariate outside the adjustment set, given mostly to the exposed
    rng = np.random.default_rng(0)
    p = np.where(cohort["exposed"].astype(bool), 0.8, 0.2)
    skewed = cohort.assign(nephrotoxic_drug_before_index=rng.uniform(size=len(cohort)) < p)
    block, _ = diagnostics_block(skewed, threshold=11)
    assert any("nephrotoxic_drug_before_index" in w for w in block["warnings"])
    sections = stats_sections({"diagnostics": block}, {}, 11)
    assert sections["diagnostics"]["warnings"]


def test_overlap_histogram_hides_bins_with_small_counts() -> None:
    score = np.r_[np.full(5, 0.02), np.full(40, 0.5)]  # 5 episodes in the first bin
    treat = np.ones_like(score)
    svg = overlap_histogram(score, treat, threshold=11)
    # one bar drawn for the exposed: the 40-episode bin; the 5-episode bin is left out
    assert svg.count("<path") > 0
    from mgca.analysis.report import diagnostic_figures

    counts, _ = np.histogram(score, bins=np.linspace(0, 1, diagnostic_figures.OVERLAP_BINS + 1))
    assert sorted(c for c in counts if c) == [5, 40]


def test_target_trial_has_every_component_from_the_config() -> None:
    spec = target_trial_spec(MgcaConfig())
    assert list(spec) == list(COMPONENTS)
    assert "6 h" in spec["treatment_strategies"] and "48 h" in spec["outcome"]


def test_forest_rows_take_mmol_l_estimates_only() -> None:
    results = {
        "estimates": [
            {"name": "primary", "unit": "mmol/L", "estimate": 0.1, "ci_low": 0.05, "ci_high": 0.15},
            {
                "name": "naive_before_after",
                "unit": "mmol/L",
                "estimate": 0.3,
                "ci_low": 0.2,
                "ci_high": 0.4,
            },
        ],
        "secondary": [
            {"name": "odds", "unit": "ratio", "estimate": 2.0, "ci_low": 1.0, "ci_high": 3.0},
            {
                "name": "interaction",
                "unit": "mmol/L",
                "estimate": 0.0,
                "ci_low": -0.1,
                "ci_high": 0.1,
            },
            {"name": "failed", "unit": "mmol/L", "estimate": None, "ci_low": None, "ci_high": None},
        ],
        "sensitivity": {
            "analyses": [
                {
                    "name": "grace_3h",
                    "analysis": "grace 3 h",
                    "unit": "mmol/L",
                    "estimate": 0.1,
                    "ci_low": 0.0,
                    "ci_high": 0.2,
                }
            ]
        },
    }
    rows = forest_rows(results)
    assert [(r["group"], r["label"]) for r in rows] == [
        ("primary estimators", "primary"),
        ("secondary", "interaction"),
        ("sensitivity", "grace 3h"),
    ]
    assert isinstance(pd.DataFrame(rows), pd.DataFrame)

"""Missing outcomes: the censoring weights, the IPCW primary and the composite, on seeded
simulated cohorts (helpers.analysis_sim) whose outcome is then hidden at random given the arm
and the index Mg: episodes with a milder Mg deficit go home more often, treated ones are
kept for the re-check. The effect is larger at lower Mg, so the measured episodes over-
represent the larger effects: the complete-case estimate is biased up, the weighted one is
not. Truth: the mean conditional effect over *all* eligible episodes (mmol/L).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.censoring import fit_censoring
from mgca.analysis.estimation.composite import composite_risk_difference
from mgca.analysis.estimation.missing_outcome import (
    fit_primary_ipcw,
    missing_outcomes_analysis,
)
from mgca.analysis.estimation.models import ADJUSTMENT_SET, fit_primary
from mgca.config import EstimationConfig, StudyConfig

STUDY = StudyConfig()
ESTIMATION = EstimationConfig(bootstrap_replicates=50)


def _hide_outcomes(cohort: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``eligible_episodes``-shaped: the outcome hidden at random given the arm and Mg."""
    rng = np.random.default_rng(seed)
    mg = cohort["baseline_mg_mmol_l"].to_numpy()
    treated = cohort["exposed"].to_numpy(dtype=bool)
    p_home = 1 / (1 + np.exp(-(-0.5 + 20 * (mg - 0.5) - 2.0 * treated)))
    home = rng.uniform(size=len(cohort)) < p_home
    eligible = cohort.copy()
    eligible.loc[home, ["outcome_ca_corrected_mmol_l", "outcome_hours_from_index"]] = np.nan
    eligible["outcome_observed"] = ~home
    eligible["outcome_missing_reason"] = np.where(home, "discharged_alive", None)
    eligible["corrected_or_discharged_alive"] = home | (
        eligible["outcome_ca_corrected_mmol_l"] >= STUDY.ca_corrected_low_mmol_l
    )
    return eligible


@pytest.fixture(scope="module")
def hidden() -> tuple[pd.DataFrame, float]:
    cohort, truth = simulate_cohort(1500, seed=20261205)
    return _hide_outcomes(cohort, 1), truth


@pytest.fixture(scope="module")
def fits(hidden) -> tuple[dict, dict]:
    """The IPCW primary over all eligible episodes and the complete-case primary."""
    eligible, _ = hidden
    entry, _ = fit_primary_ipcw(eligible, STUDY, ESTIMATION)
    measured = eligible.loc[eligible["outcome_observed"]]
    return entry, fit_primary(measured, STUDY, estimation=ESTIMATION)


def test_weights_are_stabilised_and_truncated_at_the_configured_quantile(hidden) -> None:
    eligible, _ = hidden
    fit = fit_censoring(
        eligible, ADJUSTMENT_SET, truncation_quantile=0.05, min_episodes_per_parameter=15
    )
    w = fit.weights[fit.observed]
    assert not fit.arm_only
    assert np.all(fit.weights[~fit.observed] == 0)
    assert 0.9 < w.mean() < 1.1  # stabilised: the mean weight is about 1
    assert (w.min(), w.max()) == pytest.approx(fit.truncation)
    assert fit.n_truncated >= 2 * int(0.05 * len(w)) - 2
    assert any(t["term"] == "baseline_mg_mmol_l" for t in fit.terms)


def test_small_samples_fall_back_to_the_arm_alone_and_say_so(hidden) -> None:
    eligible, _ = hidden
    small = eligible.iloc[:150]
    fit = fit_censoring(
        small, ADJUSTMENT_SET, truncation_quantile=0.01, min_episodes_per_parameter=15
    )
    assert fit.arm_only and fit.covariates == []
    assert any("the arm alone" in note for note in fit.notes)
    # within an arm every measured episode then has the same weight
    treated = small["exposed"].to_numpy(dtype=bool)
    for arm in (treated, ~treated):
        assert np.ptp(fit.weights[fit.observed & arm]) < 1e-9


def test_the_predictor_count_does_not_depend_on_the_rows_order(hidden) -> None:
    # the small-sample rule counts the censoring model's predictors: a factor's levels come
    # from every row, not from the first few (sorted so the first rows are all one sex)
    eligible, _ = hidden
    by_sex = eligible.sort_values("sex", kind="stable").reset_index(drop=True)
    notes = []
    # the same rows with the last (sex M) moved first: both sexes in the first rows
    mixed = by_sex.iloc[[len(by_sex) - 1, *range(len(by_sex) - 1)]].reset_index(drop=True)
    assert by_sex["sex"].iloc[:5].nunique() == 1 and mixed["sex"].iloc[:5].nunique() == 2
    for frame in (by_sex, mixed):
        fit = fit_censoring(
            frame, ADJUSTMENT_SET, truncation_quantile=0.05, min_episodes_per_parameter=10_000
        )
        notes.append([n for n in fit.notes if "predictors" in n])
    assert notes[0] == notes[1] and notes[0]


def test_ipcw_recovers_the_eligible_truth_where_complete_cases_are_biased(hidden, fits) -> None:
    eligible, truth = hidden
    entry, complete = fits
    # tolerance 0.007 mmol/L (half the complete-case bias of this seeded cohort, a fifth of
    # the CI width)
    assert abs(entry["estimate"] - truth) < 0.007, (entry["estimate"], truth)
    assert complete["estimate"] - truth > 0.012, (complete["estimate"], truth)
    assert entry["ci_low"] < truth < entry["ci_high"]
    assert entry["name"] == "primary" and set(entry) == set(complete)
    assert entry["n"] == len(eligible) and entry["missing_outcome_handling"]
    assert "all eligible episodes" in entry["estimand"]


def test_null_cohort_stays_null_under_weighting() -> None:
    cohort, truth = simulate_cohort(1500, seed=20261206, effect=False)
    entry, _ = fit_primary_ipcw(_hide_outcomes(cohort, 2), STUDY, ESTIMATION)
    assert truth == 0.0
    assert entry["ci_low"] < 0 < entry["ci_high"]


def test_composite_and_block_are_named_counted_and_json_ready(hidden, fits) -> None:
    eligible, _ = hidden
    composite = composite_risk_difference(eligible, STUDY)
    assert composite["reason"] is None and -1 < composite["estimate"] < 1
    assert "discharged alive" in composite["estimand"] and "risk difference" in composite["unit"]
    entry, _ = fits
    block = missing_outcomes_analysis(eligible, [entry], STUDY, ESTIMATION, threshold=11)
    exposed = next(c for c in block["counts"] if c["arm"] == "exposed")
    assert exposed["n_discharged_alive"] + exposed["n_measured"] == exposed["n_eligible"]
    assert exposed["n_died"] == 0 and block["weights"]["ess_share"] > 0.5
    assert block["censoring_model"]["arm_only"] is False
    assert [c["name"] for c in block["comparison"]] == ["primary"]
    json.dumps(block, allow_nan=False)


def test_a_small_reason_is_hidden_with_a_complement(hidden) -> None:
    eligible, _ = hidden
    eligible = eligible.copy()
    died = eligible.index[~eligible["outcome_observed"]][:3]
    eligible.loc[died, "outcome_missing_reason"] = "died"
    block = missing_outcomes_analysis(eligible, [], STUDY, ESTIMATION, threshold=11)
    rows = {c["arm"]: c for c in block["counts"]}
    hidden_cells = [k for k, v in rows["exposed"].items() if v is None] + [
        k for k, v in rows["unexposed"].items() if v is None
    ]
    assert "n_died" in hidden_cells and len(hidden_cells) >= 2


def test_report_section_shows_small_counts_by_the_rule() -> None:
    from mgca.analysis.report.missing_section import missing_outcomes_view

    block = {
        "reason": None,
        "counts": [
            {
                "arm": "exposed",
                "n_eligible": 120,
                "n_measured": 100,
                "n_died": None,
                "n_discharged_alive": None,
                "n_not_retested": 0,
            },
        ],
        "comparison": [{"name": "primary", "estimate": 0.1, "ci_low": 0.05, "ci_high": 0.15}],
        "censoring_model": {"arm_only": True, "covariates": [], "notes": []},
        "weights": {"min": 0.9, "median": 1.0, "max": 1.1, "ess_share": 0.99},
        "composite": {
            "estimand": "risk difference",
            "estimate": 0.05,
            "ci_low": 0.0,
            "ci_high": 0.1,
            "p_value": 0.04,
            "reason": None,
        },
    }
    view = missing_outcomes_view(block, threshold=11)
    assert view["rows"] == [["exposed", "120", "100", "suppressed", "suppressed", "0"]]
    assert view["model"] == "the arm alone"
    assert view["comparison"][0]["estimate"] == "+0.10"
    assert missing_outcomes_view({"reason": "no eligible episodes"}, 11) == {
        "reason": "no eligible episodes"
    }


def test_report_compares_the_ipcw_primary_with_the_eligible_truth() -> None:
    from mgca.analysis.report.render import _synthetic_truth

    truth = {"true_effect": 0.10, "true_effect_complete_case": 0.20, "true_effect_overlap": None}
    ipcw = {"name": "primary", "ci_low": 0.05, "ci_high": 0.15, "censoring_model": "arm only"}
    sentence = _synthetic_truth(truth, ipcw)
    assert "+0.10 mmol/L" in sentence and "outcome measured or not" in sentence
    assert "CI covers it" in sentence
    complete = {**ipcw, "censoring_model": None}
    assert "+0.20 mmol/L" in _synthetic_truth(truth, complete)

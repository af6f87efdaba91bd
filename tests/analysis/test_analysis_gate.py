"""The pre-specified model rule, the diagnostics gate and the report's answer.

Cohorts come from ``analysis_sim.simulate_cohort`` (known truth, confounding by indication,
patient clustering). Each test builds the situation the gate exists for: a small arm, poor
overlap, an absurd estimate, and checks what the gate and the report then say.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.gate import (
    choose_answer,
    evaluate_gate,
    gate_rule_words,
    preference_score,
)
from mgca.analysis.estimation.models import (
    MODEL_SPECS,
    choose_model_spec,
    fit_primary,
    prepare_adjusted,
)
from mgca.analysis.estimation.propensity import fit_propensity
from mgca.analysis.report.render import ReportContext, render_report
from mgca.config import EstimationConfig, GateConfig, MgcaConfig
from mgca.run import study

CONFIG = MgcaConfig()
GATE = GateConfig()
THRESHOLD = 11


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, float]:
    return simulate_cohort(800, seed=4242)


def _arm_subset(cohort: pd.DataFrame, n_exposed: int, n_unexposed: int) -> pd.DataFrame:
    exposed = cohort.loc[cohort["exposed"]].head(n_exposed)
    unexposed = cohort.loc[~cohort["exposed"]].head(n_unexposed)
    return pd.concat([exposed, unexposed]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# the model rule


def test_model_rule_steps_down_as_the_smaller_arm_shrinks(cohort) -> None:
    data, _ = cohort
    names = []
    for n_exposed, n_unexposed in ((600, 600), (600, 60), (90, 40), (40, 30)):
        adjusted = prepare_adjusted(_arm_subset(data, n_exposed, n_unexposed), "test")
        names.append(choose_model_spec(adjusted, 15).name)
    # 11 parameters per arm with splines: 15 x 11 = 165 in the smaller arm for interaction;
    # additive with splines needs 15 x 12 = 180 episodes in all, linear 15 x 9 = 135
    assert names == ["interacted_splines", "additive_splines", "additive_linear", "additive_linear"]
    short = choose_model_spec(prepare_adjusted(_arm_subset(data, 40, 30), "test"), 15)
    assert "below 15: fitted, but the estimate is fragile" in short.reason


def test_model_rule_never_reads_the_outcome(cohort) -> None:
    data, _ = cohort
    small = _arm_subset(data, 200, 50)
    shuffled = small.assign(
        outcome_ca_corrected_mmol_l=np.random.default_rng(1).permutation(
            small["outcome_ca_corrected_mmol_l"].to_numpy()
        )
    )
    specs = [fit_primary(c, CONFIG.study)["model_spec"] for c in (small, shuffled)]
    assert specs[0] == specs[1]
    assert specs[0]["name"] in MODEL_SPECS


def test_small_unbalanced_cohort_gives_no_absurd_estimate(cohort) -> None:
    """The situation that gave -4 mmol/L with a forced interaction model: a few dozen
    unexposed episodes. The rule's simpler model stays near the truth."""
    data, _ = cohort
    small = _arm_subset(data, 120, 25)
    fit = fit_primary(small, CONFIG.study)
    assert fit["model_spec"]["name"].startswith("additive")
    assert abs(fit["estimate"]) < 0.5
    assert fit["ci_high"] - fit["ci_low"] < 1.0


def test_bootstrap_interval_is_seeded_and_counts_covariate_sampling(cohort) -> None:
    data, _ = cohort
    first = fit_primary(data, CONFIG.study)
    again = fit_primary(data, CONFIG.study)
    assert first["ci_low"] == again["ci_low"] and first["se"] == again["se"]
    other_seed = fit_primary(data, CONFIG.study, estimation=EstimationConfig(bootstrap_seed=7))
    assert other_seed["se"] != first["se"]
    # the delta method holds the covariates fixed; the bootstrap also resamples them, so with
    # effect heterogeneity its SE is no smaller (up to Monte Carlo error of 500 resamples)
    assert first["se"] >= 0.9 * first["delta_method"]["se"]
    assert first["se"] <= 2.0 * first["delta_method"]["se"]


# ---------------------------------------------------------------------------------------------
# the gate


def test_gate_passes_on_a_well_supported_cohort(cohort) -> None:
    data, _ = cohort
    estimates, _ = study.fit_estimates(data, CONFIG)
    gate = evaluate_gate(data, estimates, GATE, THRESHOLD)
    assert [c["check"] for c in gate["checks"]] == [
        "episodes_per_arm",
        "equipoise",
        "balance",
        "effective_sample_size",
        "plausibility",
        "precision",
    ]
    assert gate["passed"], gate["failed"]
    json.dumps(gate, allow_nan=False)


def test_small_arm_fails_the_gate_without_writing_the_count(cohort) -> None:
    data, _ = cohort
    small = _arm_subset(data, 200, 8)
    estimates, _ = study.fit_estimates(small, CONFIG)
    gate = evaluate_gate(small, estimates, GATE, THRESHOLD)
    arm = gate["checks"][0]
    assert arm["check"] == "episodes_per_arm" and not arm["passed"]
    assert arm["value"] is None and "<11" in arm["words"] and " 8 " not in arm["words"]
    assert not gate["passed"]
    # the estimate over 8 episodes is itself withheld, so its figures are not in the gate
    for check in gate["checks"][-2:]:
        assert check["value"] is None and check["words"].startswith("withheld")


def test_absurd_estimate_fails_plausibility_and_the_report_says_it_cannot_answer(cohort) -> None:
    data, _ = cohort
    estimates, _ = study.fit_estimates(data, CONFIG)
    answer = next(e for e in estimates if e["name"] == "primary")
    absurd = dict(answer, estimate=-3.99, ci_low=-5.88, ci_high=-2.09)
    broken = [absurd if e["name"] == "primary" else e for e in estimates]
    gate = evaluate_gate(data, broken, GATE, THRESHOLD)
    assert gate["answer"] == "primary"
    by_name = {c["check"]: c for c in gate["checks"]}
    assert not by_name["plausibility"]["passed"] and by_name["plausibility"]["value"] == 3.99
    assert not by_name["precision"]["passed"]
    html = render_report(
        ReportContext(
            title="t",
            results={"estimates": broken, "gate": gate},
            table_one=None,
            trajectory_svg=None,
            config=CONFIG,
            threshold=THRESHOLD,
        )
    )
    assert "This data cannot answer the question" in html
    assert "|estimate| 3.990 mmol/L" in html
    assert "fails the diagnostics gate: not the finding" in html
    summary = html[html.index('id="summary"') : html.index('id="gate"')]
    assert "changed albumin-corrected calcium" not in summary


def test_poor_overlap_is_answered_in_the_overlap_population(cohort) -> None:
    data, _ = cohort
    # treatment all but decided by baseline Mg: scores near 0 and 1 at the extremes
    rng = np.random.default_rng(3)
    mg = data["baseline_mg_mmol_l"].to_numpy()
    p = 1 / (1 + np.exp(-(0.47 - mg) * 60))
    skewed = data.assign(exposed=rng.random(len(data)) < p)
    ps = fit_propensity(skewed)
    answer, why = choose_answer(ps, GATE)
    assert answer == "overlap"
    assert "outside [0.05, 0.95]" in why
    estimates, _ = study.fit_estimates(skewed, CONFIG)
    gate = evaluate_gate(skewed, estimates, GATE, THRESHOLD)
    assert gate["answer"] == "overlap"
    balance = next(c for c in gate["checks"] if c["check"] == "balance")
    assert balance["value"] < 1e-6  # overlap weights balance every model covariate exactly
    html = render_report(
        ReportContext(
            title="t",
            results={"estimates": estimates, "gate": gate},
            table_one=None,
            trajectory_svg=None,
            config=CONFIG,
            threshold=THRESHOLD,
        )
    )
    if gate["passed"]:
        assert "in the overlap population" in html


def test_preference_score_removes_the_arms_prevalence() -> None:
    treat = np.array([1.0] * 80 + [0.0] * 20)
    score = np.full(100, 0.8)
    assert np.allclose(preference_score(score, treat), 0.5)


def test_gate_words_name_every_bound() -> None:
    words = gate_rule_words(GATE)
    for figure in ("20 episodes", "20 %", "0.1", "0.5 mmol/L"):
        assert figure in words

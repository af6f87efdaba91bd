"""IPW and doubly robust (AIPW) estimates on simulated cohorts with a known true effect.

Cohorts come from tests/analysis_sim.py (seeded): confounding by indication through baseline
Mg and corrected Ca, a heterogeneous effect, 1-3 correlated episodes per patient. Its true
propensity score is logistic-linear in baseline Mg and measured corrected Ca, so the
propensity model (splines include the linear terms) is correctly specified; its outcome
model is recovered by the primary model's splines. Misspecification is simulated by
leaving Mg and Ca out of one of the two models.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.estimators import (
    aipw_ate,
    hajek_means,
    ipw_ate,
    ipw_influence,
    outcome_predictions,
)
from mgca.analysis.estimation.models import InsufficientDataError, fit_primary
from mgca.analysis.estimation.propensity import ate_weights, fit_propensity
from mgca.config import MgcaConfig, StudyConfig
from mgca.run import study

STUDY = StudyConfig()
NOT_MG_CA = ["age_years", "sex", "baseline_albumin_g_l"]
"""A deliberately wrong model: leaves out the confounders baseline Mg and corrected/total Ca."""


@pytest.fixture(scope="module")
def large() -> tuple[pd.DataFrame, float]:
    return simulate_cohort(6000, seed=20261201)


@pytest.mark.parametrize("estimator", [ipw_ate, aipw_ate])
def test_recovers_the_true_ate_and_ci_covers_it(confounded, estimator) -> None:
    cohort, truth = confounded
    fit = estimator(cohort, STUDY)
    assert abs(fit["estimate"] - truth) < 0.015  # mmol/L; about 4 standard errors here
    assert fit["ci_low"] < truth < fit["ci_high"]
    assert fit["ci_high"] - fit["ci_low"] < 0.05
    assert fit["p_value"] < 0.001
    assert fit["n"] == len(cohort) and fit["n_dropped"] == 0
    assert fit["n_exposed"] + fit["n_unexposed"] == fit["n"]
    assert fit["n_clusters"] == cohort["subject_id"].nunique()
    assert "no propensity scores or weights were truncated or trimmed" in fit["notes"]


@pytest.mark.parametrize("estimator", [ipw_ate, aipw_ate])
def test_null_world_interval_contains_zero(null_world, estimator) -> None:
    cohort, truth = null_world
    assert truth == 0.0
    fit = estimator(cohort, STUDY)
    assert fit["ci_low"] < 0 < fit["ci_high"]


def test_same_keys_as_the_primary_entry_and_json_ready(confounded) -> None:
    cohort, _ = confounded
    cohort = cohort.iloc[:1500]
    primary = fit_primary(cohort, STUDY)
    entries = [ipw_ate(cohort, STUDY), aipw_ate(cohort, STUDY)]
    assert [e["name"] for e in entries] == ["ipw", "doubly_robust"]
    for entry in entries:
        assert set(entry) == set(primary)
        assert entry["n"] == primary["n"] and entry["n_clusters"] == primary["n_clusters"]
        assert entry["adjustment_set"] == primary["adjustment_set"]
        assert "population the analytic cohort represents" in entry["estimand"]
    assert "M-estimation sandwich" in entries[0]["method"]
    assert "influence function summed by patient" in entries[1]["method"]
    json.dumps(entries, allow_nan=False)


def test_fit_estimates_adds_ipw_and_doubly_robust(confounded) -> None:
    cohort, _ = confounded
    estimates, notes = study.fit_estimates(cohort.iloc[:1500], MgcaConfig())
    assert notes == []
    assert [e["name"] for e in estimates] == [
        "primary",
        "overlap",
        "unadjusted_difference",
        "naive_before_after",
        "ipw",
        "doubly_robust",
        "primary_complete_case",
    ]
    assert all(set(e) == set(estimates[0]) for e in estimates)


def test_ipw_point_estimate_equals_weighted_least_squares(confounded) -> None:
    """Second implementation: the Hájek difference is the WLS slope on exposure."""
    cohort, _ = confounded
    ps = fit_propensity(cohort)
    y = ps.adjusted.data["outcome_ca_corrected_mmol_l"].to_numpy(dtype=float)
    weights = ate_weights(ps.treat, ps.score)
    wls = sm.WLS(y, sm.add_constant(ps.treat), weights=weights).fit()
    mu1, mu0 = hajek_means(ps.treat, y, ps.score)
    assert ipw_ate(cohort, STUDY)["estimate"] == pytest.approx(wls.params[1], abs=1e-10)
    assert mu1 - mu0 == pytest.approx(wls.params[1], abs=1e-10)
    ate, influence = ipw_influence(ps, y)
    assert ate == pytest.approx(mu1 - mu0, abs=1e-12)
    assert abs(influence.mean()) < 1e-10  # estimating equations solved at the estimate


def test_aipw_equals_primary_plus_weighted_residuals(confounded) -> None:
    """Second implementation of AIPW from its parts (the primary model's predictions)."""
    cohort, _ = confounded
    ps = fit_propensity(cohort)
    y = ps.adjusted.data["outcome_ca_corrected_mmol_l"].to_numpy(dtype=float)
    m1, m0, *_ = outcome_predictions(ps.adjusted, "test")
    t, e = ps.treat, ps.score
    by_hand = np.mean(m1 - m0) + np.mean(t * (y - m1) / e) - np.mean((1 - t) * (y - m0) / (1 - e))
    assert aipw_ate(cohort, STUDY)["estimate"] == pytest.approx(by_hand, abs=1e-10)
    # g-computation part alone is the primary estimate
    assert np.mean(m1 - m0) == pytest.approx(fit_primary(cohort, STUDY)["estimate"], abs=1e-9)


def test_doubly_robust_when_the_outcome_model_is_wrong_but_the_propensity_right(large):
    cohort, truth = large
    ps = fit_propensity(cohort)
    m1, m0, *_ = outcome_predictions(replace(ps.adjusted, covariates=NOT_MG_CA), "test")
    wrong_gcomp = float(np.mean(m1 - m0))
    dr = aipw_ate(cohort, STUDY, outcome_covariates=NOT_MG_CA)
    both_right = aipw_ate(cohort, STUDY)["estimate"]
    assert abs(wrong_gcomp - truth) > 0.02  # the wrong outcome model alone is badly biased
    # DR keeps the right answer: within sampling error (SE ~0.003) of the truth and of the
    # estimate with both models right (the two share this cohort's sampling noise)
    assert abs(dr["estimate"] - truth) < 0.01
    assert abs(dr["estimate"] - both_right) < 0.003
    assert any(n.startswith("outcome model restricted to") for n in dr["notes"])


def test_doubly_robust_when_the_propensity_model_is_wrong_but_the_outcome_right(large):
    cohort, truth = large
    wrong_ipw = ipw_ate(cohort, STUDY, propensity_covariates=NOT_MG_CA)
    dr = aipw_ate(cohort, STUDY, propensity_covariates=NOT_MG_CA)
    both_right = aipw_ate(cohort, STUDY)["estimate"]
    assert abs(wrong_ipw["estimate"] - truth) > 0.02  # the wrong weights alone are biased
    assert not wrong_ipw["ci_low"] < truth < wrong_ipw["ci_high"]
    assert abs(dr["estimate"] - truth) < 0.01
    assert abs(dr["estimate"] - both_right) < 0.003
    assert any(n.startswith("propensity model restricted to") for n in dr["notes"])


@pytest.mark.parametrize("estimator", [ipw_ate, aipw_ate])
def test_standard_error_is_clustered_on_patient(estimator) -> None:
    cohort, _ = simulate_cohort(800, seed=3)
    base = estimator(cohort, STUDY)
    copies = [cohort.assign(encounter_id=cohort["encounter_id"] + f"-{k}") for k in range(3)]
    same_patient = pd.concat(copies, ignore_index=True)
    new_patients = pd.concat(
        [c.assign(subject_id=c["subject_id"] + f"-{k}") for k, c in enumerate(copies)],
        ignore_index=True,
    )
    dup = estimator(same_patient, STUDY)
    indep = estimator(new_patients, STUDY)
    assert dup["estimate"] == pytest.approx(base["estimate"], abs=1e-8)
    # three copies of each patient carry no new information: the interval must not shrink
    assert dup["se"] / base["se"] == pytest.approx(1.0, abs=0.05)
    # the same rows as if from new patients shrink it by about 1/sqrt(3)
    assert indep["se"] / base["se"] == pytest.approx(3**-0.5, abs=0.05)


def test_sandwich_se_agrees_with_the_cluster_bootstrap() -> None:
    """The stacked M-estimation SE (accounts for the estimated score) against a patient
    bootstrap that refits the propensity model 200 times."""
    cohort, _ = simulate_cohort(500, seed=11)
    sandwich = ipw_ate(cohort, STUDY)
    boot = ipw_ate(cohort, STUDY, se_method="bootstrap", n_boot=200, seed=7)
    assert boot["estimate"] == sandwich["estimate"]
    assert boot["se"] / sandwich["se"] == pytest.approx(1.0, abs=0.2)
    assert "patient-cluster bootstrap (200 resamples" in boot["method"]
    again = ipw_ate(cohort, STUDY, se_method="bootstrap", n_boot=200, seed=7)
    assert again["se"] == boot["se"]  # fixed seed: same interval on a rerun


def test_truncation_is_reported_never_silent(confounded) -> None:
    cohort, truth = confounded
    ps = fit_propensity(cohort, truncate_percentiles=(1, 99))
    record = ps.truncation
    assert record is not None
    assert record.n_lower == int((ps.raw_score < record.lower_bound).sum())
    assert record.n_upper == int((ps.raw_score > record.upper_bound).sum())
    assert record.n_lower == pytest.approx(0.01 * len(cohort), abs=2)
    assert ps.score.min() == pytest.approx(record.lower_bound)
    fit = ipw_ate(cohort, STUDY, truncate_percentiles=(1, 99))
    note = next(n for n in fit["notes"] if n.startswith("propensity scores truncated"))
    assert "percentiles 1 and 99" in note and f"{record.n_lower} episodes raised" in note
    assert fit["ci_low"] < truth < fit["ci_high"]


def test_truncation_note_hides_small_counts(confounded) -> None:
    cohort, _ = confounded
    fit = ipw_ate(cohort.iloc[:400], STUDY, truncate_percentiles=(1, 99), threshold=11)
    note = next(n for n in fit["notes"] if n.startswith("propensity scores truncated"))
    assert "<11 episodes raised" in note  # 1 % of 400 is 4: hidden


def test_level_in_one_arm_only_is_merged_with_a_note(confounded) -> None:
    cohort, truth = confounded
    cohort = cohort.copy()
    cohort.loc[cohort.index[cohort["exposed"]][:5], "sex"] = "U"  # only exposed "U"
    for estimator in (ipw_ate, aipw_ate):
        fit = estimator(cohort, STUDY)
        assert any("C(sex)[T.U]" in n and "merged into the reference" in n for n in fit["notes"])
        assert fit["ci_low"] < truth < fit["ci_high"]


def test_separated_arms_are_insufficient_data(confounded) -> None:
    cohort, _ = confounded
    cohort = cohort.assign(exposed=cohort["baseline_mg_mmol_l"] < 0.45)  # Mg decides alone
    for estimator in (ipw_ate, aipw_ate):
        with pytest.raises(InsufficientDataError, match="separates") as err:
            estimator(cohort, STUDY)
        assert '"no estimate"' in str(err.value)


@pytest.mark.parametrize("arm", [True, False])
def test_empty_arm_is_insufficient_data(confounded, arm: bool) -> None:
    cohort, _ = confounded
    one_arm = cohort.loc[cohort["exposed"] != arm]
    for estimator in (ipw_ate, aipw_ate):
        with pytest.raises(InsufficientDataError, match="arm has no"):
            estimator(one_arm, STUDY)


def test_missing_covariates_are_dropped_and_counted_like_the_primary(confounded) -> None:
    cohort, _ = confounded
    cohort = cohort.iloc[:1500].copy()
    cohort.loc[cohort.index[:40], "baseline_creatinine_umol_l"] = np.nan
    cohort.loc[cohort.index[45:50], "outcome_ca_corrected_mmol_l"] = np.nan
    for estimator in (ipw_ate, aipw_ate):
        fit = estimator(cohort, STUDY)
        assert fit["n_dropped"] == 45 and fit["n"] == 1455
        assert any("complete-case" in note for note in fit["notes"])


def test_unknown_se_method_is_an_error(confounded) -> None:
    cohort, _ = confounded
    with pytest.raises(ValueError, match="se_method"):
        ipw_ate(cohort.iloc[:500], STUDY, se_method="jackknife")  # type: ignore[arg-type]


def test_an_estimate_that_cannot_be_made_is_an_entry_with_a_reason(confounded) -> None:
    """IPW, DR and the primary never vanish or come back as a bare null: with one arm empty
    each is an entry with estimate None and the reason in words."""
    cohort, _ = confounded
    one_arm = cohort.loc[cohort["exposed"]].iloc[:300]
    estimates, notes = study.fit_estimates(one_arm, MgcaConfig())
    assert [e["name"] for e in estimates] == list(study.ESTIMATE_NAMES)
    for entry in estimates:
        if entry["name"] == "naive_before_after":
            continue  # exposed episodes only: still estimable
        assert entry["estimate"] is None and entry["ci_low"] is None
        assert "unexposed arm has no analysable episodes" in entry["reason"]
        assert "report will say" not in entry["reason"]
        assert set(entry) == set(estimates[3])
    assert len(notes) == len(estimates) - 1
    json.dumps(estimates, allow_nan=False)

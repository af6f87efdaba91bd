"""Weighting diagnostics (SMD, overlap, Kish ESS, warnings) and the E-value, against hand
computations and simulated cohorts (tests/analysis_sim.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers.analysis_sim import simulate_cohort

from mgca.analysis.estimation.diagnostics import (
    covariate_balance,
    effective_sample_size,
    evalue,
    kish_ess,
    overlap_summary,
    pooled_outcome_sd,
    smd,
    weighting_diagnostics,
    weighting_warnings,
)
from mgca.analysis.estimation.propensity import ate_weights, fit_propensity

# --- hand-computed values -------------------------------------------------------------------


def test_smd_continuous_by_hand() -> None:
    x = np.array([1.0, 2, 3, 4, 5, 6])
    t = np.array([1, 1, 1, 0, 0, 0])
    # means 2 and 5, sample variances 1 and 1: (2 - 5) / sqrt((1 + 1) / 2) = -3
    assert smd(x, t) == pytest.approx(-3.0)
    # weights (1, 1, 2) in the exposed: weighted mean (1 + 2 + 6) / 4 = 2.25; same denominator
    assert smd(x, t, np.array([1.0, 1, 2, 1, 1, 1])) == pytest.approx(-2.75)


def test_smd_binary_by_hand() -> None:
    x = np.array([1.0, 1, 0, 0, 1, 0, 0, 0])
    t = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # p1 = 0.5, p0 = 0.25: 0.25 / sqrt((0.25 + 0.1875) / 2) = 0.534522...
    assert smd(x, t) == pytest.approx(0.5345224838, abs=1e-9)


def test_smd_ignores_missing_and_handles_constants() -> None:
    t = np.array([1, 1, 0, 0])
    # exposed: just 1 (variance 0); unexposed 3, 5 (variance 2): (1 - 4) / sqrt(1) = -3
    assert smd(np.array([1.0, np.nan, 3, 5]), t) == pytest.approx(-3.0)
    assert smd(np.array([2.0, 2, 2, 2]), t) == 0.0


def test_kish_ess_by_hand() -> None:
    assert kish_ess(np.array([1.0, 1, 2])) == pytest.approx(16 / 6)
    assert kish_ess(np.ones(37)) == pytest.approx(37)
    assert kish_ess(5 * np.array([1.0, 1, 2])) == pytest.approx(16 / 6)  # scale-free


def test_evalue_by_hand() -> None:
    # d = 0.1 / 0.2 = 0.5; RR = exp(0.91 * 0.5) = exp(0.455) = 1.576173
    # E = RR + sqrt(RR (RR - 1)) = 1.576173 + sqrt(0.908163) = 2.529142
    # CI limit closer to the null: 0.05 -> d 0.25 -> RR exp(0.2275) = 1.255457 -> E 1.821775
    out = evalue(0.1, 0.05, 0.15, 0.2)
    assert out["d"] == pytest.approx(0.5)
    assert out["rr"] == pytest.approx(1.576173, abs=1e-6)
    assert out["evalue_estimate"] == pytest.approx(2.529142, abs=1e-6)
    assert out["rr_ci_low"] == pytest.approx(1.255457, abs=1e-6)
    assert out["evalue_ci"] == pytest.approx(1.821775, abs=1e-6)


def test_evalue_is_symmetric_and_one_when_the_ci_includes_the_null() -> None:
    up, down = evalue(0.1, 0.05, 0.15, 0.2), evalue(-0.1, -0.15, -0.05, 0.2)
    assert down["rr"] == pytest.approx(1 / up["rr"])
    assert down["evalue_estimate"] == pytest.approx(up["evalue_estimate"])
    assert down["evalue_ci"] == pytest.approx(up["evalue_ci"])  # upper limit is nearer null
    assert evalue(0.1, -0.01, 0.21, 0.2)["evalue_ci"] == 1.0
    assert evalue(0.0, -0.1, 0.1, 0.2)["evalue_estimate"] == 1.0
    with pytest.raises(ValueError, match="sd_outcome"):
        evalue(0.1, 0.05, 0.15, 0.0)


def test_evalue_agrees_with_the_r_package_convention() -> None:
    """EValue::evalues.MD(0.5, se) uses exp(0.91 d ± 1.78 se); with limits d ± 1.96 se on
    the mmol/L scale the two agree to about 0.1 % of the RR."""
    sd, d, se = 0.2, 0.5, 0.1
    out = evalue(d * sd, (d - 1.959964 * se) * sd, (d + 1.959964 * se) * sd, sd)
    assert out["rr_ci_low"] == pytest.approx(math.exp(0.91 * d - 1.78 * se), rel=1e-3)


def test_pooled_outcome_sd_by_hand() -> None:
    cohort = pd.DataFrame(
        {
            "exposed": [True, True, True, False, False],
            "outcome_ca_corrected_mmol_l": [1, 2, 3, 5, 7.0],
        }
    )
    # within-arm sums of squares 2 and 2, df 3: sqrt(4 / 3)
    assert pooled_outcome_sd(cohort) == pytest.approx(math.sqrt(4 / 3))


# --- on a fitted propensity model -------------------------------------------------------------


def test_weighting_balances_the_confounders(confounded) -> None:
    cohort, _ = confounded
    ps = fit_propensity(cohort)
    balance = covariate_balance(ps)
    by = balance.set_index("covariate")
    for col in ("baseline_mg_mmol_l", "baseline_ca_corrected_mmol_l"):
        assert abs(by.loc[col, "smd_before"]) > 0.5  # confounding by indication
        assert abs(by.loc[col, "smd_after"]) < 0.1
    assert "log baseline_creatinine_umol_l" in by.index and "sex = F" in by.index
    assert by.loc["ppi_before_index", "in_model"]  # in the adjustment set
    # the frame agrees with smd() on the raw column
    w = ate_weights(ps.treat, ps.score)
    mg = ps.adjusted.data["baseline_mg_mmol_l"].to_numpy()
    assert by.loc["baseline_mg_mmol_l", "smd_after"] == pytest.approx(smd(mg, ps.treat, w))
    assert weighting_warnings(ps) == []


def test_ess_and_overlap_agree_with_their_definitions(confounded) -> None:
    cohort, _ = confounded
    ps = fit_propensity(cohort)
    ess = effective_sample_size(ps).set_index("arm")
    w = 1 / ps.score[ps.treat == 1]
    assert ess.loc["exposed", "ess"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert ess.loc["exposed", "n"] == int(cohort["exposed"].sum())
    overlap = overlap_summary(ps)
    q = overlap["quantiles"].set_index("arm")
    assert q.loc["exposed", "q50"] == pytest.approx(np.median(ps.score[ps.treat == 1]))
    assert list(q.columns) == ["n", "q05", "q25", "q50", "q75", "q95"]
    outside = (ps.score < 0.05) | (ps.score > 0.95)
    assert overlap["share_outside"] == pytest.approx(outside.mean())


def test_poor_overlap_small_ess_and_imbalance_are_warned() -> None:
    cohort, _ = simulate_cohort(1500, seed=5)
    rng = np.random.default_rng(5)
    lin = -20 * (cohort["baseline_mg_mmol_l"] - 0.45)  # near-deterministic treatment by Mg
    cohort = cohort.assign(exposed=rng.uniform(size=len(cohort)) < 1 / (1 + np.exp(-lin)))
    warnings = weighting_warnings(fit_propensity(cohort))
    assert any(w.startswith("limited overlap") for w in warnings)
    assert any(w.startswith("small effective sample size") for w in warnings)
    # a propensity model without Mg leaves Mg imbalanced after weighting
    wrong = fit_propensity(cohort, covariates=["age_years", "sex"])
    text = " ".join(weighting_warnings(wrong))
    assert "adjusted covariates still imbalanced" in text and "baseline_mg_mmol_l" in text


def test_weighting_diagnostics_are_aggregates_only(confounded) -> None:
    cohort, _ = confounded
    out = weighting_diagnostics(cohort, truncate_percentiles=(1, 99))
    assert set(out) == {"balance", "overlap", "ess", "warnings", "truncation", "n", "n_dropped"}
    assert out["truncation"]["lower_percentile"] == 1
    text = " ".join(
        [
            out["balance"].to_csv(),
            out["ess"].to_csv(),
            out["overlap"]["quantiles"].to_csv(),
            str(out["overlap"]),
            str(out["warnings"]),
            str(out["truncation"]),
        ]
    )
    assert "SUBJ-" not in text and "ENC-" not in text and "2150" not in text
    assert len(out["balance"]) <= 20 and len(out["ess"]) == 2

"""Empirical calibration on the standardised mean-difference scale
(mgca.analysis.estimation.calibration and the calibration entry of negative_controls)."""

from __future__ import annotations

import numpy as np
import pytest

from mgca.analysis.estimation.calibration import (
    Z_95,
    SystematicError,
    calibrated_interval,
    fit_systematic_error,
)
from mgca.analysis.estimation.negative_controls import calibration_entry, pooled_sd


def test_maximum_likelihood_recovers_the_systematic_error_distribution() -> None:
    # 400 controls with true errors ~ N(0.3, 0.2^2), each seen with its own SE 0.05-0.3:
    # mu and sigma come back within 0.05 (about 2.5 of their standard errors at this n).
    rng = np.random.default_rng(11)
    se = rng.uniform(0.05, 0.3, 400)
    y = rng.normal(0.3, 0.2, 400) + rng.normal(0.0, se)
    fit = fit_systematic_error(y, se)
    assert fit.mu == pytest.approx(0.3, abs=0.05)
    assert fit.sigma == pytest.approx(0.2, abs=0.05)
    assert fit.n_controls == 400
    assert fit.null_test_p < 1e-6


def test_controls_within_their_own_noise_give_no_systematic_error() -> None:
    # Every control is exactly 0: sigma at its boundary 0, mu 0, nothing rejected.
    fit = fit_systematic_error([0.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.15, 0.3])
    assert fit.mu == pytest.approx(0.0, abs=1e-6)
    assert fit.sigma == pytest.approx(0.0, abs=1e-4)
    assert fit.null_test_p > 0.99


def test_an_imprecise_control_pulls_mu_less() -> None:
    # Two controls at 0 with SE 0.05 and one at 1.0 with SE 1.0: mu stays near 0.
    fit = fit_systematic_error([0.0, 0.0, 1.0], [0.05, 0.05, 1.0])
    assert abs(fit.mu) < 0.1


def test_calibrated_interval_is_shifted_by_mu_and_widened_by_sigma() -> None:
    error = SystematicError(mu=0.2, sigma=0.3, n_controls=4, null_test_p=0.01)
    centre, low, high = calibrated_interval(0.5, 0.4, error)
    assert centre == pytest.approx(0.3)
    assert high - centre == pytest.approx(Z_95 * 0.5)  # sqrt(0.3^2 + 0.4^2) = 0.5
    assert centre - low == pytest.approx(high - centre)


def _control(name: str, est: float, se: float) -> dict:
    return {
        "name": name,
        "ci_low": est - 2 * se,
        "ci_high": est + 2 * se,
        "standardised": {"sd": 1.0, "estimate": est, "se": se},
    }


def test_too_few_controls_are_named_and_give_no_numbers() -> None:
    controls = [_control("a", 0.1, 0.1), _control("b", 0.0, 0.1)]
    controls.append({"name": "c", "standardised": {"sd": None, "estimate": None, "se": None}})
    out = calibration_entry({"estimate": 0.1, "se": 0.02}, 0.15, controls, min_controls=3)
    assert out["reason"].startswith("too few controls")
    assert out["controls_count"] == 2
    assert out["estimate"] is None and out["mu"] is None


def test_the_calibrated_primary_is_back_in_mmol_per_litre() -> None:
    # Controls all near +0.5 SD (systematic error), primary +0.09 mmol/L with SE 0.015 and
    # outcome SD 0.15 mmol/L: the calibrated centre moves down by about mu x SD.
    controls = [_control(n, 0.5, 0.05) for n in ("a", "b", "c", "d")]
    out = calibration_entry({"estimate": 0.09, "se": 0.015}, 0.15, controls, min_controls=3)
    assert out["reason"] is None
    assert out["mu"] == pytest.approx(0.5, abs=1e-3)
    assert out["estimate"] == pytest.approx(0.09 - 0.5 * 0.15, abs=1e-3)
    assert out["ci_low"] < out["estimate"] < out["ci_high"]
    assert out["controls_reject"] is True
    assert out["controls_ci_excluding_zero"] == 4


def test_pooled_sd_is_the_within_arm_sd() -> None:
    import pandas as pd

    values = pd.Series([1.0, 3.0, 10.0, 12.0])
    treat = np.array([True, True, False, False])
    assert pooled_sd(values, treat) == pytest.approx(np.sqrt(2.0))


def test_the_uncertainty_of_mu_widens_the_calibrated_interval() -> None:
    # Four controls at 0, each SE 0.1: sigma 0 and mu's SE 0.1 / sqrt(4) = 0.05, so a
    # primary with SE 0.05 gets a half-width of z x sqrt(0.05^2 + 0.05^2).
    fit = fit_systematic_error([0.0, 0.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.1])
    assert fit.mu_se == pytest.approx(0.05, abs=1e-4)
    centre, _, high = calibrated_interval(0.3, 0.05, fit)
    assert high - centre == pytest.approx(Z_95 * np.sqrt(0.05**2 + 0.05**2), abs=1e-3)

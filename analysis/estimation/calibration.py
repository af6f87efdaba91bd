"""Empirical calibration of the primary interval on the mean-difference scale.

The negative controls (:mod:`mgca.analysis.estimation.negative_controls`) are contrasts whose
true effect is zero, estimated with the primary's design. Each is put on a common scale by
dividing its estimate and standard error by its outcome's pooled within-arm SD (a
standardised mean difference, no unit), and the systematic error of the design is modelled,
as OHDSI's EmpiricalCalibration does for log rate ratios (Schuemie et al., PNAS 2018;
115:2571), as ``N(mu, sigma^2)``: control ``i``'s standardised estimate is
``y_i ~ N(mu, sigma^2 + se_i^2)``. ``mu`` and ``sigma`` are fitted by maximum likelihood,
which accounts for each control's own sampling error (a control measured imprecisely pulls
less). The primary, on the same standardised scale, then has the calibrated interval
``y - mu ± z sqrt(sigma^2 + se^2 + se_mu^2)``, taken back to mmol/L by its outcome's SD.
``se_mu`` is the standard error of the fitted ``mu`` (inverse Fisher information,
``1 / sum 1 / (sigma^2 + se_i^2)``): HADES's interval calibration plugs in the point
estimates of mu and sigma, which with its dozens of controls costs little; mgca has three or
four, and the uncertainty of ``mu`` is then as large as the primary's own SE, so ignoring it
lets a noisy control shift a correct interval off the truth.

HADES calibrates only ratio estimates; mgca's outcomes are continuous, so the scale here is
the standardised mean difference (README "Methods: negative controls" says why and what it
assumes: the systematic error, in SD units, is exchangeable between the controls' outcomes
and calcium).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

Z_95 = float(stats.norm.ppf(0.975))
"""Two-sided 95 % normal quantile of the calibrated interval."""

REJECT_P = 0.05
"""Level of the likelihood-ratio test of "no systematic error" (mu = sigma = 0) on the
controls: below it, the report's caveat says the controls reject the design."""


@dataclass(frozen=True)
class SystematicError:
    """The fitted systematic-error distribution N(mu, sigma^2) (standardised units, no unit),
    the standard error of ``mu``, the number of controls it rests on and the
    likelihood-ratio test of mu = sigma = 0."""

    mu: float
    sigma: float
    n_controls: int
    null_test_p: float
    mu_se: float = 0.0


def _neg_log_lik(mu: float, sigma: float, y: np.ndarray, se: np.ndarray) -> float:
    var = sigma * sigma + se * se
    return float(0.5 * np.sum(np.log(2.0 * np.pi * var) + (y - mu) ** 2 / var))


def fit_systematic_error(estimates: Sequence[float], ses: Sequence[float]) -> SystematicError:
    """Maximum-likelihood ``mu`` and ``sigma`` (>= 0) of ``y_i ~ N(mu, sigma^2 + se_i^2)``.

    ``estimates`` and ``ses``: the controls' standardised estimates and standard errors
    (finite, se > 0; at least two). ``null_test_p``: likelihood-ratio test of mu = sigma = 0
    against the fit (chi-squared, 2 df; sigma on its boundary makes this conservative).
    """
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(ses, dtype=float)
    if y.size < 2 or y.size != se.size:
        raise ValueError("need at least two controls, each with an estimate and an SE")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(se)) and np.all(se > 0)):
        raise ValueError("every control needs a finite estimate and a positive finite SE")
    spread = float(np.std(y)) if y.size > 1 else 0.0
    best = None
    for sigma0 in (0.0, spread, float(np.max(se))):
        res = optimize.minimize(
            lambda p: _neg_log_lik(p[0], p[1], y, se),
            x0=np.array([float(np.mean(y)), max(sigma0, 1e-6)]),
            method="L-BFGS-B",
            bounds=[(None, None), (0.0, None)],
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    mu, sigma = float(best.x[0]), float(best.x[1])
    lr = 2.0 * (_neg_log_lik(0.0, 0.0, y, se) - float(best.fun))
    p = float(stats.chi2.sf(max(lr, 0.0), df=2))
    mu_se = float(np.sqrt(1.0 / np.sum(1.0 / (sigma * sigma + se * se))))
    return SystematicError(mu=mu, sigma=sigma, n_controls=int(y.size), null_test_p=p, mu_se=mu_se)


def calibrated_interval(
    estimate: float, se: float, error: SystematicError, z: float = Z_95
) -> tuple[float, float, float]:
    """``(centre, low, high)`` of the calibrated interval of a standardised ``estimate`` with
    standard error ``se``: ``estimate - mu ± z sqrt(sigma^2 + se^2 + se_mu^2)`` (standardised
    units)."""
    half = z * float(np.sqrt(error.sigma**2 + se**2 + error.mu_se**2))
    centre = estimate - error.mu
    return centre, centre - half, centre + half


def calibrated_p_value(estimate: float, se: float, error: SystematicError) -> float:
    """Two-sided p-value of the null effect under the systematic-error model."""
    scale = float(np.sqrt(error.sigma**2 + se**2 + error.mu_se**2))
    return float(2.0 * stats.norm.sf(abs(estimate - error.mu) / scale))

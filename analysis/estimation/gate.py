"""The diagnostics gate: may the report state an answer, and which estimate is it?

Like OHDSI HADES's pre-specified study diagnostics, every check compares one figure of this
run with a bound fixed in the config (``gate:``) before any outcome is read; the report
states an answer only when every check passes, and otherwise says in plain words that this
data cannot answer the question and why. The estimates stay in results.json and the report,
marked as failing the gate.

Which estimate answers (pre-specified, :func:`choose_answer`): the primary g-computation
estimate for the whole analysed cohort when the data support the whole cohort (few extreme
propensity scores, inverse-probability weights that balance the covariates and leave each
arm a useful effective size). Otherwise the full-cohort average would lean on the outcome
model's extrapolation into covariate patterns one arm never shows, and the answer is the
overlap-population estimate (ATO, overlap weights), defined where both arms have data: the
patients in whom clinicians could have gone either way.

Checks (each ``{"check", "label", "value", "bound", "passed", "words"}``; ``value`` and
``bound`` in the unit the label names):

- ``episodes_per_arm``: the smaller exposure arm of the analysed episodes (episodes);
- ``equipoise``: share of episodes with a preference score in [0.3, 0.7] (Walker et al.
  2013, Comp Eff Res 3:11; the propensity score with the arms' prevalence removed);
- ``balance``: the largest |SMD| of an adjusted covariate between the arms, weighted by the
  weights of the population the answer describes (ATE weights or overlap weights);
- ``effective_sample_size``: the smaller arm's Kish effective sample size under those
  weights (episodes);
- ``plausibility``: |estimate| (mmol/L) against the largest change calcium can make in 48 h;
- ``precision``: half the width of the 95 % CI (mmol/L).

Counts below the small-cell threshold are never written: such a ``value`` is ``None`` and
its words say ``<threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mgca.analysis.estimation.diagnostics import (
    OVERLAP_BOUNDS,
    OVERLAP_SHARE_LIMIT,
    covariate_columns,
    kish_ess,
    smd,
)
from mgca.analysis.estimation.estimators import overlap_weights
from mgca.analysis.estimation.models import EXPOSURE, OUTCOME, REPORT_SAYS, InsufficientDataError
from mgca.analysis.estimation.propensity import PropensityFit, ate_weights, fit_propensity
from mgca.analysis.privacy import display_count, suppress_count
from mgca.config import GateConfig

EQUIPOISE_BOUNDS = (0.3, 0.7)
"""Preference-score range of "clinical equipoise" (Walker et al. 2013; HADES)."""

ANSWERS = ("primary", "overlap")
"""Names of the estimates that may answer the question."""


def preference_score(score: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Walker's preference score: the propensity score with the exposed share removed,
    ``logit F = logit e − logit P`` (unitless, 0–1); 0.5 means no preference either way."""
    p = float(np.mean(treat))
    logit = np.log(score / (1 - score)) - np.log(p / (1 - p))
    return 1 / (1 + np.exp(-logit))


def _balance_and_ess(ps: PropensityFit, weights: np.ndarray) -> tuple[float, float]:
    """Largest |SMD| of an adjusted covariate under ``weights`` and the smaller arm's Kish
    effective sample size (episodes).

    Continuous covariates as they enter the models; a factor (sex) as the propensity model's
    own indicator columns. A level seen in one arm only (say sex unknown in a handful of
    unexposed episodes) cannot be balanced by any weights; the propensity model merges it
    into the reference level (its notes say so), and its indicators are judged as merged,
    rather than failing the gate on a handful of episodes with an unrecorded sex.
    """
    treat = ps.treat
    columns = [
        (label, x)
        for label, x in covariate_columns(ps.adjusted.data, ps.adjusted.covariates)
        if " = " not in label
    ]
    columns += [
        (name, ps.X[:, j]) for j, name in enumerate(ps.column_names) if name.startswith("C(")
    ]
    smds = [abs(smd(x, treat, weights)) for _, x in columns]
    finite = [v for v in smds if np.isfinite(v)]
    t = treat == 1
    return (max(finite) if finite else 0.0), min(kish_ess(weights[t]), kish_ess(weights[~t]))


def choose_answer(ps: PropensityFit | None, bounds: GateConfig) -> tuple[str, str]:
    """(estimate name, why): which population the data support an answer for.

    ``"primary"`` (the whole analysed cohort) when the whole cohort is supported: at most
    ``OVERLAP_SHARE_LIMIT`` of propensity scores outside ``OVERLAP_BOUNDS``, and under
    inverse-probability (ATE) weights every adjusted covariate balanced within
    ``bounds.max_abs_smd`` and each arm worth at least ``bounds.min_ess_per_arm`` episodes.
    Otherwise ``"overlap"``: the episodes in whom treatment could have gone either way,
    where the data compare like with like without leaning on extrapolation.
    """
    if ps is None:
        return "primary", "no propensity model could be fitted, so overlap is unknown"
    lo, hi = OVERLAP_BOUNDS
    outside = float(np.mean((ps.score < lo) | (ps.score > hi)))
    worst, ess = _balance_and_ess(ps, ate_weights(ps.treat, ps.score))
    problems = []
    if outside > OVERLAP_SHARE_LIMIT:
        problems.append(
            f"{100 * outside:.1f} % of propensity scores lie outside [{lo:g}, {hi:g}] (more "
            f"than {100 * OVERLAP_SHARE_LIMIT:g} %)"
        )
    if worst > bounds.max_abs_smd:
        problems.append(
            f"inverse-probability weights leave an adjusted covariate imbalanced (|SMD| "
            f"{worst:.2f} > {bounds.max_abs_smd:g})"
        )
    if ess < bounds.min_ess_per_arm:
        problems.append(
            f"inverse-probability weights leave the smaller arm worth {ess:.0f} episodes "
            f"(fewer than {bounds.min_ess_per_arm:g})"
        )
    if problems:
        return "overlap", (
            "; ".join(problems)
            + ": the whole-cohort average would lean on the outcome model's extrapolation, so "
            "the answer is the overlap-population estimate"
        )
    return "primary", (
        f"{100 * outside:.1f} % of propensity scores outside [{lo:g}, {hi:g}], weighted balance "
        f"|SMD| ≤ {worst:.2f} and effective sample size ≥ {ess:.0f} per arm: the data support "
        "the whole-cohort estimate"
    )


def _check(
    check: str, label: str, value: float | None, bound: float, passed: bool, words: str
) -> dict[str, Any]:
    return {
        "check": check,
        "label": label,
        "value": None if value is None else float(value),
        "bound": float(bound),
        "passed": bool(passed),
        "words": words,
    }


def _weights(ps: PropensityFit, answer: str) -> np.ndarray:
    if answer == "overlap":
        return overlap_weights(ps.treat, ps.score)
    return ate_weights(ps.treat, ps.score)


def _weighting_checks(
    ps: PropensityFit | None, answer: str, bounds: GateConfig, reason: str | None
) -> list[dict[str, Any]]:
    """Equipoise, balance and effective sample size (or three failures naming ``reason``)."""
    if ps is None:
        why = f"not assessable: {reason or 'no propensity model'}"
        return [
            _check(
                "equipoise",
                "share of episodes in equipoise",
                None,
                bounds.min_equipoise,
                False,
                why,
            ),
            _check(
                "balance", "largest |SMD| after weighting", None, bounds.max_abs_smd, False, why
            ),
            _check(
                "effective_sample_size",
                "smaller arm's effective sample size (episodes)",
                None,
                bounds.min_ess_per_arm,
                False,
                why,
            ),
        ]
    treat = ps.treat
    pref = preference_score(ps.score, treat)
    lo, hi = EQUIPOISE_BOUNDS
    equipoise = float(np.mean((pref >= lo) & (pref <= hi)))
    population = "overlap" if answer == "overlap" else "ATE (inverse-probability)"
    worst, ess = _balance_and_ess(ps, _weights(ps, answer))
    return [
        _check(
            "equipoise",
            "share of episodes in equipoise",
            equipoise,
            bounds.min_equipoise,
            equipoise >= bounds.min_equipoise,
            f"{100 * equipoise:.0f} % of episodes have a preference score in [{lo:g}, {hi:g}] "
            f"(at least {100 * bounds.min_equipoise:g} % needed)",
        ),
        _check(
            "balance",
            "largest |SMD| after weighting",
            worst,
            bounds.max_abs_smd,
            worst <= bounds.max_abs_smd,
            f"largest |standardised mean difference| of an adjusted covariate under {population}"
            f" weights: {worst:.3f} (at most {bounds.max_abs_smd:g})",
        ),
        _check(
            "effective_sample_size",
            "smaller arm's effective sample size (episodes)",
            ess,
            bounds.min_ess_per_arm,
            ess >= bounds.min_ess_per_arm,
            f"Kish effective sample size of the smaller arm under {population} weights: "
            f"{ess:.0f} episodes (at least {bounds.min_ess_per_arm:g})",
        ),
    ]


def _estimate_checks(entry: Mapping[str, Any] | None, bounds: GateConfig) -> list[dict[str, Any]]:
    """Plausibility and precision of the answering estimate (mmol/L)."""
    est = None if entry is None else entry.get("estimate")
    low = None if entry is None else entry.get("ci_low")
    high = None if entry is None else entry.get("ci_high")
    if est is None or low is None or high is None:
        why = (entry or {}).get("reason") or "no estimate"
        return [
            _check(
                "plausibility",
                "|estimate| (mmol/L)",
                None,
                bounds.max_plausible_effect_mmol_l,
                False,
                f"not assessable: {why}",
            ),
            _check(
                "precision",
                "95 % CI half-width (mmol/L)",
                None,
                bounds.max_ci_half_width_mmol_l,
                False,
                f"not assessable: {why}",
            ),
        ]
    half = (high - low) / 2
    return [
        _check(
            "plausibility",
            "|estimate| (mmol/L)",
            abs(est),
            bounds.max_plausible_effect_mmol_l,
            abs(est) <= bounds.max_plausible_effect_mmol_l,
            f"|estimate| {abs(est):.3f} mmol/L (a 48-h change beyond "
            f"{bounds.max_plausible_effect_mmol_l:g} mmol/L is not a treatment effect)",
        ),
        _check(
            "precision",
            "95 % CI half-width (mmol/L)",
            half,
            bounds.max_ci_half_width_mmol_l,
            half <= bounds.max_ci_half_width_mmol_l,
            f"95 % CI half-width {half:.3f} mmol/L (at most {bounds.max_ci_half_width_mmol_l:g})",
        ),
    ]


def _smaller_arm(cohort: Any) -> int | None:
    """Episodes in the smaller exposure arm among those with an outcome (the rows every
    estimate can use at most), or ``None`` without the columns."""
    if not {EXPOSURE, OUTCOME} <= set(getattr(cohort, "columns", ())):
        return None
    rows = cohort.loc[cohort[OUTCOME].notna() & cohort[EXPOSURE].notna()]
    exposed = int(rows[EXPOSURE].astype(bool).sum())
    return min(exposed, len(rows) - exposed)


def evaluate_gate(
    cohort: Any,
    estimates: Sequence[Mapping[str, Any]],
    bounds: GateConfig,
    threshold: int,
) -> dict[str, Any]:
    """results.json ``gate``: the answering estimate, every check, and the verdict.

    ``cohort``: the analytic cohort (the propensity model is refitted on it, rows as for
    every adjusted estimate); ``estimates``: the results.json entries (unsuppressed counts);
    ``threshold``: the small-cell threshold. Returns ``{"passed", "answer", "answer_reason",
    "checks", "failed"}`` where ``failed`` lists the failing checks' words.
    """
    reason = None
    try:
        ps: PropensityFit | None = fit_propensity(cohort, threshold=threshold)
    except (InsufficientDataError, KeyError) as exc:
        ps, reason = None, str(exc).replace(f"; {REPORT_SAYS}", "").rstrip(".")
    answer, answer_reason = choose_answer(ps, bounds)
    entry = next((e for e in estimates if e.get("name") == answer), None)
    smaller = _smaller_arm(cohort)
    if smaller is None:
        arm_words = "not assessable: the cohort has no exposure or outcome columns"
    else:
        arm_words = (
            f"smaller exposure arm: {display_count(smaller, threshold)} analysable episodes "
            f"(at least {bounds.min_episodes_per_arm} needed)"
        )
    checks = [
        _check(
            "episodes_per_arm",
            "smaller arm (episodes)",
            suppress_count(smaller, threshold),  # None when small; rounded by a CountRule
            bounds.min_episodes_per_arm,
            smaller is not None and smaller >= bounds.min_episodes_per_arm,
            arm_words,
        ),
        *_weighting_checks(ps, answer, bounds, reason),
        *_estimate_checks(entry, bounds),
    ]
    if smaller is not None and 0 < smaller < threshold:
        # the estimate itself is withheld (disclosure control): so are its figures here
        for check in checks[-2:]:
            check.update(value=None, passed=False, words=f"withheld: {arm_words}")
    failed = list(dict.fromkeys(c["words"] for c in checks if not c["passed"]))
    return {
        "passed": not failed,
        "answer": answer,
        "answer_reason": answer_reason,
        "checks": checks,
        "failed": failed,
    }


def gate_rule_words(bounds: GateConfig) -> str:
    """Which estimate answers and the gate's bounds, in words (Methods)."""
    lo, hi = OVERLAP_BOUNDS
    return (
        "The answer is the whole-cohort (primary) estimate when at most "
        f"{100 * OVERLAP_SHARE_LIMIT:g} % of propensity scores lie outside [{lo:g}, {hi:g}] "
        f"and inverse-probability weights balance every adjusted covariate (|SMD| ≤ "
        f"{bounds.max_abs_smd:g}) with an effective sample size of at least "
        f"{bounds.min_ess_per_arm:g} episodes per arm; otherwise the overlap-population "
        "estimate (overlap weights). It is stated only when every check passes: at least "
        f"{bounds.min_episodes_per_arm} episodes in the smaller arm; at least "
        f"{100 * bounds.min_equipoise:g} % of episodes in equipoise (preference score "
        f"{EQUIPOISE_BOUNDS[0]:g}–{EQUIPOISE_BOUNDS[1]:g}); |SMD| ≤ {bounds.max_abs_smd:g} and "
        f"effective sample size ≥ {bounds.min_ess_per_arm:g} per arm under the answer's "
        f"weights; |estimate| ≤ {bounds.max_plausible_effect_mmol_l:g} mmol/L; 95 % CI "
        f"half-width ≤ {bounds.max_ci_half_width_mmol_l:g} mmol/L."
    )

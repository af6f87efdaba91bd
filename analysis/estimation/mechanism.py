"""Mechanism checks the seed's physiology predicts, and which secondaries carry the
detection-bias caveat (the protected fixed-schedule outcomes are in
:mod:`mgca.analysis.estimation.fixed_schedule`).

- :func:`calcium_alone_effect`: the seed's claim "calcium alone does not correct while Mg
  stays low": calcium supplementation without Mg vs neither, among episodes not given Mg
  (results.json ``secondary``);
- :func:`effect_modification`: the primary contrast within the strata of each pre-specified
  modifier (``index_effect_modifiers``, ``sql/effect_modifiers.sql``): baseline Mg, PTH status
  before treatment, eGFR, and the route of Mg (results.json ``effect_modification``).

Models, adjustment and inference as in :mod:`mgca.analysis.estimation.secondary` (primary
adjustment set, patient-clustered covariance, 95 % CI). The strata follow the small-sample
rule of the gate: a stratum whose arms have fewer than ``gate.min_episodes_per_arm``
episodes each gets no estimate, only its reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mgca.analysis.estimation.models import (
    CLUSTER,
    EXPOSURE,
    OUTCOME,
    InsufficientDataError,
    clustered_ols,
    exposure_indicator,
    linear_contrast,
)
from mgca.analysis.estimation.secondary import (
    _adjusted_rows,
    _adjustment_words,
    _design,
    _merge,
    _stats,
    entry,
)
from mgca.analysis.text import horizon_outcome_words
from mgca.config import StudyConfig

DETECTION_BIAS_CAVEAT = "descriptive only, not protected against detection bias"
"""The words a secondary entry carries (``caveat``) when its outcome counts any draw, so that
extra re-checks in the treated can move it where Mg does nothing; the threat bench
(``bench/threats.py``, threat ``detection_bias``) measures it."""

DETECTION_BIAS_EXPOSED: tuple[str, ...] = (
    "trajectory_slope_difference",
    "trajectory_difference_at_horizon",
)
"""Secondary entries that carry a contrast although their outcome counts every draw, so the
treated, re-checked more often, weigh more draws where Mg does nothing: the mixed model's
null-world false-positive rate is 10 % with no threat and 38 % with ``detection_bias`` (88 %
with ``severity_confounding``; README, "Design threats"), above the 6 % target. They keep a
contrast with this caveat because a mean trajectory is still informative; the any-draw
"corrected" outcomes, which reject in 25-100 % of null-world hospitals, carry no contrast at
all (:mod:`mgca.analysis.estimation.any_draw`). The fixed-schedule secondaries
(:mod:`mgca.analysis.estimation.fixed_schedule`) are not here: 2.5-7.5 %."""

MODIFIERS: dict[str, dict[str, Any]] = {
    "baseline_mg_class": {
        "label": "baseline Mg",
        "levels": {
            "grade_2_or_worse": "Mg < 0.5 mmol/L (CTCAE grade 2 or worse)",
            "grade_1": "Mg from 0.5 mmol/L to below the low threshold (CTCAE grade 1)",
        },
    },
    "pth_status_before_index": {
        "label": "PTH before treatment",
        "levels": {
            "appropriately_raised": "PTH raised (> 65 ng/L)",
            "inappropriately_normal_or_low": "PTH normal or low (<= 65 ng/L)",
        },
    },
    "egfr_class": {
        "label": "eGFR",
        "levels": {
            "reduced": "reduced eGFR (below study.egfr_modifier_ml_min_1_73m2)",
            "preserved": "preserved eGFR (at or above it)",
        },
    },
}
"""Pre-specified two-level modifiers of the primary contrast (column of
``index_effect_modifiers`` → its words and levels, reference level first)."""

ROUTE = "mg_route_class"
ROUTE_LEVELS: dict[str, str] = {"iv": "IV Mg", "oral": "oral Mg"}


def calcium_alone_effect(cohort: pd.DataFrame, study: StudyConfig) -> dict[str, Any]:
    """Calcium supplementation within the grace period vs none, among episodes not given Mg.

    OLS of the primary outcome (corrected Ca at the horizon, mmol/L) on ``calcium_in_grace``
    + adjustment set among unexposed episodes (all hypomagnesaemic at index), patient-
    clustered. The seed predicts about 0: calcium does not correct while Mg stays low.
    """
    what = "calcium-alone model"
    unexposed = cohort.loc[~exposure_indicator(cohort[EXPOSURE]).astype(bool)]
    data, n_dropped, covariates = _adjusted_rows(
        unexposed, [OUTCOME, "calcium_in_grace"], what, both_arms=False
    )
    ca = data["calcium_in_grace"].astype(bool)
    if ca.sum() == 0 or ca.sum() == len(ca):
        raise InsufficientDataError(
            f"no {what}: among episodes not given Mg, calcium was given in every or no episode"
        )
    X = _design(data, "calcium_in_grace", covariates, ["calcium_in_grace"])
    fit = clustered_ols(data[OUTCOME].to_numpy(dtype=float), X.to_numpy(), data[CLUSTER])
    c = np.zeros(X.shape[1])
    c[list(X.columns).index("calcium_in_grace")] = 1.0
    result = entry(
        name="calcium_alone_effect",
        estimand=(
            "difference in mean corrected Ca at the horizon, calcium supplementation within "
            f"{study.grace_hours} h without Mg vs neither, among hypomagnesaemic episodes not "
            'given Mg ("calcium alone does not correct while Mg stays low")'
        ),
        outcome=horizon_outcome_words(study),
        unit="mmol/L",
        scale="difference",
        method=(
            f"OLS of corrected Ca at the horizon on calcium supplementation within "
            f"{study.grace_hours} h, {_adjustment_words()}, among episodes not given Mg; "
            "patient-clustered (CR1) covariance; t with (patients − 1) df."
        ),
        stats_=_stats(linear_contrast(fit, c)),
        data=data,
        n_dropped=n_dropped,
        adjustment_set=covariates,
        notes=[
            "calcium is given for lower calcium, so the contrast is adjusted but associational",
            "n_exposed counts episodes given calcium, n_unexposed those given neither",
        ],
    )
    result["n_exposed"], result["n_unexposed"] = int(ca.sum()), int(len(ca) - ca.sum())
    return result


def _stratum_counts(
    data: pd.DataFrame, column: str, levels: list[str]
) -> dict[str, tuple[int, int]]:
    """Per level: (exposed, unexposed) episodes."""
    treat = exposure_indicator(data[EXPOSURE]).astype(bool)
    out = {}
    for level in levels:
        in_level = data[column].eq(level).to_numpy()
        out[level] = (int((treat & in_level).sum()), int((~treat & in_level).sum()))
    return out


def _em_entry(
    *,
    name: str,
    modifier: str,
    level: str | None,
    estimand: str,
    scale: str,
    study: StudyConfig,
    data: pd.DataFrame | None,
    stats_: dict[str, float | None] | None,
    covariates: list[str],
    n_dropped: int,
    method: str,
    reason: str | None = None,
    counts: tuple[int, int] | None = None,
) -> dict[str, Any]:
    out = entry(
        name=name,
        estimand=estimand,
        outcome=horizon_outcome_words(study),
        unit="mmol/L",
        scale=scale,
        method=method,
        stats_=stats_,
        data=data,
        n_dropped=n_dropped,
        adjustment_set=covariates,
        notes=[
            "pre-specified modifier; strata below the gate's episodes-per-arm minimum are "
            "not estimated",
        ],
        reason=reason,
    )
    if counts is not None:
        out["n_exposed"], out["n_unexposed"] = counts
        out["n"] = counts[0] + counts[1]
    out["modifier"] = modifier
    out["level"] = level
    return out


def _modifier_entries(
    cohort: pd.DataFrame, column: str, study: StudyConfig, min_per_arm: int
) -> list[dict[str, Any]]:
    spec = MODIFIERS[column]
    levels = list(spec["levels"])
    what = f"effect modification by {spec['label']}"
    rows = cohort.loc[cohort[column].isin(levels)]
    data, n_dropped, covariates = _adjusted_rows(rows, [OUTCOME, column], what)
    n_dropped += len(cohort) - len(rows)
    counts = _stratum_counts(data, column, levels)
    method = (
        f"OLS of corrected Ca at the horizon on Mg repletion × {spec['label']} stratum, "
        f"{_adjustment_words()}; patient-clustered (CR1) covariance; t with (patients − 1) df."
    )
    small = [lv for lv, (a, b) in counts.items() if min(a, b) < min_per_arm]
    base = {"modifier": column, "study": study, "covariates": covariates, "n_dropped": n_dropped}
    if small:
        reason = (
            f"no {what}: fewer than {min_per_arm} episodes in an arm of stratum "
            + ", ".join(spec["levels"][lv] for lv in small)
            + " (the gate's min_episodes_per_arm)"
        )
        return [
            _em_entry(
                name=f"effect_modification_{column}",
                level=None,
                estimand=f"difference in the Mg repletion effect between {spec['label']} strata",
                scale="difference of differences",
                data=None,
                stats_=None,
                method=method,
                reason=reason,
                **base,
            )
        ]
    frame = data.assign(_second=data[column].eq(levels[1]).astype(float))
    X = _design(frame, f"{EXPOSURE} * _second", covariates, [EXPOSURE, "_second"])
    fit = clustered_ols(data[OUTCOME].to_numpy(dtype=float), X.to_numpy(), data[CLUSTER])
    names = list(X.columns)
    out = []
    for level, weights in (
        (levels[0], {EXPOSURE: 1.0}),
        (levels[1], {EXPOSURE: 1.0, f"{EXPOSURE}:_second": 1.0}),
        (None, {f"{EXPOSURE}:_second": 1.0}),
    ):
        c = np.zeros(len(names))
        for term, w in weights.items():
            c[names.index(term)] = w
        if level is None:
            name = f"effect_modification_{column}"
            estimand = (
                f"difference in the Mg repletion effect on corrected Ca at the horizon, "
                f"{spec['levels'][levels[1]]} minus {spec['levels'][levels[0]]}"
            )
            scale, stratum, n = "difference of differences", data, None
        else:
            name = f"effect_modification_{column}_{level}"
            estimand = (
                f"difference in mean corrected Ca at the horizon, Mg repletion within "
                f"{study.grace_hours} h vs not, among episodes with {spec['levels'][level]}"
            )
            scale, stratum, n = "difference", data.loc[data[column].eq(level)], counts[level]
        out.append(
            _em_entry(
                name=name,
                level=level,
                estimand=estimand,
                scale=scale,
                data=stratum,
                stats_=_stats(linear_contrast(fit, c)),
                method=method,
                counts=n,
                **base,
            )
        )
    return out


def _route_entries(
    cohort: pd.DataFrame, study: StudyConfig, min_per_arm: int
) -> list[dict[str, Any]]:
    what = "effect by route of Mg"
    rows = cohort.loc[cohort[ROUTE].isin(["none", *ROUTE_LEVELS])]
    data, n_dropped, covariates = _adjusted_rows(rows, [OUTCOME, ROUTE], what)
    n_dropped += len(cohort) - len(rows)
    n_none = int(data[ROUTE].eq("none").sum())
    method = (
        f"OLS of corrected Ca at the horizon on the route of Mg given within "
        f"{study.grace_hours} h (IV only, oral only, none), {_adjustment_words()}; "
        "patient-clustered (CR1) covariance; t with (patients − 1) df."
    )
    base = {"modifier": ROUTE, "study": study, "covariates": covariates, "n_dropped": n_dropped}
    usable = [r for r in ROUTE_LEVELS if data[ROUTE].eq(r).sum() >= min_per_arm]
    out = []
    for route in ROUTE_LEVELS:
        if route not in usable or n_none < min_per_arm:
            out.append(
                _em_entry(
                    name=f"effect_modification_{ROUTE}_{route}",
                    level=route,
                    estimand=f"{ROUTE_LEVELS[route]} vs no Mg",
                    scale="difference",
                    data=None,
                    stats_=None,
                    method=method,
                    reason=(
                        f"no {what}: fewer than {min_per_arm} episodes given "
                        f"{ROUTE_LEVELS[route]} only, or not given Mg (the gate's "
                        "min_episodes_per_arm)"
                    ),
                    **base,
                )
            )
    if not usable or n_none < min_per_arm:
        return out
    keep = data.loc[data[ROUTE].isin(["none", *usable])]
    frame = keep.assign(**{f"_{r}": keep[ROUTE].eq(r).astype(float) for r in usable})
    terms = " + ".join(f"_{r}" for r in usable)
    X = _design(frame, terms, covariates, [f"_{r}" for r in usable])
    fit = clustered_ols(keep[OUTCOME].to_numpy(dtype=float), X.to_numpy(), keep[CLUSTER])
    names = list(X.columns)
    contrasts = [(r, {f"_{r}": 1.0}) for r in usable]
    if len(usable) == 2:
        contrasts.append((None, {"_iv": 1.0, "_oral": -1.0}))
    for route, weights in contrasts:
        c = np.zeros(len(names))
        for term, w in weights.items():
            c[names.index(term)] = w
        if route is None:
            name, estimand, scale = (
                f"effect_modification_{ROUTE}",
                "difference in mean corrected Ca at the horizon, IV Mg only minus oral Mg only",
                "difference of differences",
            )
            counts = None
            stratum = keep.loc[keep[ROUTE].isin(list(ROUTE_LEVELS))]
        else:
            name = f"effect_modification_{ROUTE}_{route}"
            estimand = (
                f"difference in mean corrected Ca at the horizon, {ROUTE_LEVELS[route]} only "
                f"within {study.grace_hours} h vs no Mg"
            )
            scale = "difference"
            counts = (int(keep[ROUTE].eq(route).sum()), n_none)
            stratum = keep.loc[keep[ROUTE].isin([route, "none"])]
        out.append(
            _em_entry(
                name=name,
                level=route,
                estimand=estimand,
                scale=scale,
                data=stratum,
                stats_=_stats(linear_contrast(fit, c)),
                method=method,
                counts=counts,
                **base,
            )
        )
    return out


def effect_modification(
    cohort: pd.DataFrame, modifiers: pd.DataFrame, study: StudyConfig, min_per_arm: int
) -> list[dict[str, Any]]:
    """results.json ``effect_modification`` entries (unsuppressed): per modifier, the primary
    contrast within each stratum and their difference (interaction on the additive scale);
    for the route, IV only and oral only each vs no Mg and IV minus oral. A modifier that
    cannot be estimated gives one entry with ``estimate: None`` and a ``reason``."""
    columns = [*MODIFIERS, ROUTE]
    data = _merge(cohort, modifiers, columns)
    out: list[dict[str, Any]] = []
    for column in MODIFIERS:
        try:
            out.extend(_modifier_entries(data, column, study, min_per_arm))
        except (InsufficientDataError, np.linalg.LinAlgError, ValueError) as exc:
            out.append(_failed_modifier(column, str(exc), study))
    try:
        out.extend(_route_entries(data, study, min_per_arm))
    except (InsufficientDataError, np.linalg.LinAlgError, ValueError) as exc:
        out.append(_failed_modifier(ROUTE, str(exc), study))
    return out


def _failed_modifier(column: str, reason: str, study: StudyConfig) -> dict[str, Any]:
    return _em_entry(
        name=f"effect_modification_{column}",
        modifier=column,
        level=None,
        estimand="(not estimated)",
        scale="",
        study=study,
        data=None,
        stats_=None,
        covariates=[],
        n_dropped=0,
        method="",
        reason=reason,
    )


def flag_detection_bias(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with ``caveat`` set to :data:`DETECTION_BIAS_CAVEAT` on those of
    :data:`DETECTION_BIAS_EXPOSED` (None on the others)."""
    return [
        {**e, "caveat": DETECTION_BIAS_CAVEAT if e["name"] in DETECTION_BIAS_EXPOSED else None}
        for e in entries
    ]

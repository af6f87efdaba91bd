"""Everything of the statistics beyond the five estimates, as results.json blocks:
``target_trial``, ``secondary``, ``diagnostics`` and ``sensitivity``, plus the figures the
report draws from row-level data (love plot, propensity overlap).

The flow's model tasks call :func:`diagnostics_block`, :func:`secondary_block` and
:func:`sensitivity_block`; each returns JSON-ready aggregates with small counts suppressed
(``mgca.analysis.privacy``). A block that cannot be computed says why in it; none raises
for lack of data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mgca.analysis.blas import model_blas_threads
from mgca.analysis.estimation import any_draw, fixed_schedule, mechanism
from mgca.analysis.estimation.diagnostics import (
    ESS_SHARE_LIMIT,
    OVERLAP_SHARE_LIMIT,
    SMD_LIMIT,
    covariate_balance,
    effective_sample_size,
    overlap_summary,
    weighting_warnings,
)
from mgca.analysis.estimation.models import COUNT_KEYS, InsufficientDataError
from mgca.analysis.estimation.propensity import fit_propensity
from mgca.analysis.estimation.secondary import (
    SECONDARY_COUNT_KEYS,
    SECONDARY_GROUP_KEYS,
    _failed,
    run_secondary,
)
from mgca.analysis.estimation.sensitivity import CohortFor, run_sensitivity
from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import count_rule, suppress_estimate, suppress_record
from mgca.analysis.report.diagnostic_figures import love_plot, overlap_histogram
from mgca.config import MgcaConfig


def diagnostics_block(
    cohort: pd.DataFrame, threshold: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """results.json ``diagnostics`` and the figures ``{"love_plot", "overlap"}`` (SVG).

    ``diagnostics``: ``balance`` (covariate, in_model, smd_before, smd_after), ``overlap``
    (bounds, quantiles per arm with ``n``, shares outside), ``ess`` (arm, n, ess,
    ess_share; ess hidden with a hidden n), ``warnings`` (words), ``limits`` (the cut-offs
    used), ``n``, ``n_dropped``; or ``{"reason": ...}`` when no propensity model fits.
    """
    try:
        ps = fit_propensity(cohort, threshold=threshold)
    except InsufficientDataError as exc:
        return {"reason": str(exc), "warnings": []}, {}
    balance = covariate_balance(ps)
    overlap = overlap_summary(ps)
    ess = effective_sample_size(ps)
    warnings = weighting_warnings(
        ps, balance=balance, overlap=overlap, ess=ess, threshold=threshold
    )
    ess_records = []
    for row in ess.to_dict("records"):
        shown = suppress_record(finite_or_none(row), ["n"], threshold)
        if shown["n"] is None:
            shown["ess"] = shown["ess_share"] = None
        ess_records.append(shown)
    block = {
        "balance": [finite_or_none(r) for r in balance.to_dict("records")],
        "overlap": {
            "bounds": overlap["bounds"],
            "quantiles": [
                suppress_record(finite_or_none(r), ["n"], threshold)
                for r in overlap["quantiles"].to_dict("records")
            ],
            "share_outside": finite_or_none(overlap["share_outside"]),
            "share_outside_exposed": finite_or_none(overlap["share_outside_exposed"]),
            "share_outside_unexposed": finite_or_none(overlap["share_outside_unexposed"]),
        },
        "ess": ess_records,
        "warnings": warnings,
        "limits": {
            "smd_after_weighting_max": SMD_LIMIT,
            "share_outside_overlap_bounds_max": OVERLAP_SHARE_LIMIT,
            "ess_share_min": ESS_SHARE_LIMIT,
        },
        "n": suppress_record({"n": len(ps.score)}, ["n"], threshold)["n"],
        "n_dropped": suppress_record({"n": ps.adjusted.n_dropped}, ["n"], threshold)["n"],
        "reason": None,
    }
    figures = {
        "love_plot": love_plot(balance),
        "overlap": overlap_histogram(ps.score, ps.treat, threshold),
    }
    return block, figures


def secondary_block(
    cohort: pd.DataFrame, tables: dict[str, pd.DataFrame], config: MgcaConfig
) -> list[dict[str, Any]]:
    """results.json ``secondary``: every secondary entry, small counts suppressed (and the
    statistics withheld when an exposure group is hidden). The any-draw outcomes come first,
    per arm only (:mod:`mgca.analysis.estimation.any_draw`)."""
    threshold = count_rule(config)
    entries = any_draw.any_draw_entries(
        cohort, tables["index_calcium_correction"], config.study, threshold
    ) + run_secondary(
        cohort,
        pth=tables["index_pth_response"],
        points=tables["calcium_trajectory_points"],
        study=config.study,
        threshold=threshold,
    )
    eligible = tables.get("eligible_episodes")
    for name, fit in (
        (
            fixed_schedule.HORIZON_NAME,
            lambda: fixed_schedule.corrected_at_horizon(
                _eligible_or_raise(eligible), config.study, config.estimation
            ),
        ),
        (
            fixed_schedule.FIXED_LOOKS_NAME,
            lambda: fixed_schedule.corrected_at_fixed_looks(
                _eligible_or_raise(eligible),
                tables["index_calcium_fixed_looks"],
                config.study,
                config.estimation,
            ),
        ),
        ("calcium_alone_effect", lambda: mechanism.calcium_alone_effect(cohort, config.study)),
    ):
        try:
            entries.append(fit())
        except InsufficientDataError as exc:
            entries.append(_failed(name, str(exc)))
        except Exception as exc:  # a numerical failure of one model must not stop the run
            entries.append(_failed(name, f"model could not be fitted: {type(exc).__name__}: {exc}"))
    return [
        suppress_estimate(finite_or_none(e), SECONDARY_COUNT_KEYS, SECONDARY_GROUP_KEYS, threshold)
        for e in mechanism.flag_detection_bias(entries)
    ]


def _eligible_or_raise(eligible: pd.DataFrame | None) -> pd.DataFrame:
    """The eligible-episode table the fixed-schedule secondaries weight back to."""
    if eligible is None or eligible.empty:
        raise InsufficientDataError("no eligible-episode table: nothing to weight back to")
    return eligible


def effect_modification_block(
    cohort: pd.DataFrame, tables: dict[str, pd.DataFrame], config: MgcaConfig
) -> list[dict[str, Any]]:
    """results.json ``effect_modification``: the primary contrast within the strata of each
    pre-specified modifier and the difference between strata
    (:func:`mgca.analysis.estimation.mechanism.effect_modification`), small counts
    suppressed as for ``secondary``."""
    threshold = config.privacy.small_cell_threshold
    entries = mechanism.effect_modification(
        cohort,
        tables["index_effect_modifiers"],
        config.study,
        config.gate.min_episodes_per_arm,
    )
    return [
        suppress_estimate(finite_or_none(e), SECONDARY_COUNT_KEYS, SECONDARY_GROUP_KEYS, threshold)
        for e in entries
    ]


@model_blas_threads
def sensitivity_block(
    cohort: pd.DataFrame,
    *,
    kidney: pd.DataFrame,
    primary: dict[str, Any] | None,
    config: MgcaConfig,
    cohort_for: CohortFor | None,
) -> dict[str, Any]:
    """results.json ``sensitivity``: ``{"analyses": [...], "evalue": {...}}``, counts
    suppressed as for ``estimates``."""
    threshold = count_rule(config)
    result = run_sensitivity(
        cohort,
        kidney=kidney,
        primary=primary,
        config=config,
        cohort_for=cohort_for,
    )
    result["analyses"] = [
        suppress_estimate(
            finite_or_none(e), COUNT_KEYS, ("n", "n_exposed", "n_unexposed"), threshold
        )
        for e in result["analyses"]
    ]
    result["evalue"] = finite_or_none(result["evalue"])
    return result

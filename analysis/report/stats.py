"""Display text for the report's statistics sections: target trial, secondary analyses,
weighting diagnostics, sensitivity analyses and the forest plot. :func:`stats_sections`
returns the template variables of the partials ``_target_trial``, ``_secondary``,
``_secondary_descriptive``,
``_diagnostics``, ``_sensitivity`` and ``_forest`` (``reports/templates/``). Hidden counts
read as :func:`mgca.analysis.privacy.display_record_count` says; free text has absolute dates
removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgca.analysis.privacy import display_effective_size, display_record_count, scrub_dates
from mgca.analysis.report.any_draw_section import descriptive_view
from mgca.analysis.report.diagnostic_figures import forest_plot, forest_rows
from mgca.analysis.report.effect_modification import effect_modification_view
from mgca.analysis.report.format import (
    MISSING,
    format_ci,
    format_number,
    format_p_value,
    inline_svg,
)

FOREST_LABELS = {
    "primary": "Outcome regression",
    "ipw": "IPW",
    "doubly_robust": "Doubly robust",
    "unadjusted_difference": "Unadjusted difference",
    "excluding_advanced_ckd": "excluding advanced CKD",
}
"""Short forest-plot labels; other entries show their name with spaces."""


def _ratio_scale(e: Mapping[str, Any]) -> bool:
    return "ratio" in str(e.get("scale", ""))


def _secondary_view(e: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    ratio = _ratio_scale(e)
    by_design = bool(e.get("withheld_by_design"))
    digits = 2 if ratio or e.get("unit") == "mmol/L" else 3
    return {
        "name": scrub_dates(e.get("name", "")).replace("_", " "),
        "anchor": f"secondary-{e.get('name', '')}",
        "estimand": scrub_dates(e.get("estimand")),
        "outcome": scrub_dates(e.get("outcome")),
        "scale": scrub_dates(e.get("scale")),
        "unit": scrub_dates(e.get("unit")),
        "method": scrub_dates(e.get("method")),
        "estimate": format_number(e.get("estimate"), digits, signed=not ratio),
        "ci": format_ci(e, digits, signed=not ratio),
        "p": format_p_value(e.get("p_value")),
        "n": display_record_count(e, "n", threshold)
        if e.get("estimate") is not None or by_design
        else MISSING,
        "reason": "" if by_design else scrub_dates(e.get("reason") or e.get("withheld") or ""),
        "by_design": by_design,
        "notes": [scrub_dates(n) for n in e.get("notes") or []],
        "caveat": scrub_dates(e.get("caveat") or ""),
    }


def _sensitivity_view(e: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    return {
        "analysis": scrub_dates(e.get("analysis") or e.get("name")),
        "outcome": scrub_dates(e.get("outcome")),
        "estimate": format_number(e.get("estimate"), signed=True),
        "ci": format_ci(e),
        "p": format_p_value(e.get("p_value")),
        "n": display_record_count(e, "n", threshold) if e.get("estimate") is not None else MISSING,
        "n_exposed": display_record_count(e, "n_exposed", threshold)
        if e.get("estimate") is not None
        else MISSING,
        "n_unexposed": display_record_count(e, "n_unexposed", threshold)
        if e.get("estimate") is not None
        else MISSING,
        "reason": scrub_dates(e.get("reason") or e.get("withheld") or ""),
    }


def _evalue_view(ev: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not ev:
        return None
    return {
        "estimate": format_number(ev.get("evalue_estimate")),
        "ci": format_number(ev.get("evalue_ci")),
        "d": format_number(ev.get("d")),
        "sd": format_number(ev.get("sd_outcome_mmol_l"), 3),
        "approximation": scrub_dates(ev.get("approximation")),
        "reason": scrub_dates(ev.get("reason") or ""),
    }


def _diagnostics_view(diag: Mapping[str, Any] | None, threshold: int) -> dict[str, Any] | None:
    if not diag:
        return None
    balance = [
        {
            "covariate": scrub_dates(r["covariate"]) + ("" if r.get("in_model") else " †"),
            "before": format_number(r.get("smd_before"), signed=True),
            "after": format_number(r.get("smd_after"), signed=True),
            "poor": r.get("smd_after") is not None and abs(r["smd_after"]) > 0.1,
        }
        for r in diag.get("balance") or []
    ]
    ess = [
        {
            "arm": r["arm"],
            "n": display_record_count(r, "n", threshold),
            "ess": display_effective_size(r.get("ess"), threshold),
            "share": MISSING if r.get("ess_share") is None else f"{100 * r['ess_share']:.0f} %",
        }
        for r in diag.get("ess") or []
    ]
    overlap = diag.get("overlap") or {}
    quantiles = [
        {
            "arm": q["arm"],
            "n": display_record_count(q, "n", threshold),
            "values": [format_number(q.get(k)) for k in ("q05", "q25", "q50", "q75", "q95")],
        }
        for q in overlap.get("quantiles") or []
    ]
    share = overlap.get("share_outside")
    return {
        "reason": scrub_dates(diag.get("reason") or ""),
        "warnings": [scrub_dates(w) for w in diag.get("warnings") or []],
        "balance": balance,
        "ess": ess,
        "quantiles": quantiles,
        "bounds": overlap.get("bounds"),
        "share_outside": MISSING if share is None else f"{100 * share:.1f} %",
    }


def stats_sections(
    results: Mapping[str, Any], figures: Mapping[str, str], threshold: int
) -> dict[str, Any]:
    """Template variables of the statistics partials (see the module docstring)."""
    sensitivity = results.get("sensitivity") or {}
    rows = forest_rows(results, FOREST_LABELS)
    return {
        "target_trial": [
            (key.replace("_", " ").capitalize(), scrub_dates(text))
            for key, text in (results.get("target_trial") or {}).items()
        ],
        "secondary": [_secondary_view(e, threshold) for e in results.get("secondary") or []],
        "secondary_descriptive": descriptive_view(results.get("secondary") or [], threshold),
        "diagnostics": _diagnostics_view(results.get("diagnostics"), threshold),
        "love_plot_svg": inline_svg(figures.get("love_plot")),
        "overlap_svg": inline_svg(figures.get("overlap")),
        "sensitivity": [_sensitivity_view(e, threshold) for e in sensitivity.get("analyses") or []],
        "evalue": _evalue_view(sensitivity.get("evalue")),
        "forest_svg": inline_svg(forest_plot(rows)),
        "effect_modification": effect_modification_view(
            results.get("effect_modification") or [], threshold
        ),
    }

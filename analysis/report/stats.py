"""Display text for the report's statistics sections: target trial, the three primary
estimators side by side, secondary analyses, weighting diagnostics, sensitivity analyses and
the forest plot. :func:`stats_sections` returns the template variables of the partials
``_target_trial``, ``_primary_estimators``, ``_secondary``, ``_diagnostics``,
``_sensitivity`` and ``_forest`` (``reports/templates/``). Counts below the threshold show as
``<threshold``; free text has absolute dates removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from mgca.analysis.privacy import display_count
from mgca.analysis.report.diagnostic_figures import forest_plot, forest_rows

PRIMARY_ESTIMATORS = {
    "primary": "Outcome regression (ANCOVA, g-computation)",
    "ipw": "Inverse-probability weighting",
    "doubly_robust": "Doubly robust (augmented IPW)",
}
FOREST_LABELS = {
    "primary": "Outcome regression",
    "ipw": "IPW",
    "doubly_robust": "Doubly robust",
    "unadjusted_difference": "Unadjusted difference",
    "excluding_advanced_ckd": "excluding advanced CKD",
}
"""Short forest-plot labels; other entries show their name with spaces."""
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b")
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def _text(value: Any) -> str:
    return _DATE.sub("[date]", "" if value is None else str(value))


def _num(x: Any, digits: int = 2, signed: bool = False) -> str:
    if x is None:
        return "—"
    s = f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"
    return s.replace("+0.00", "0.00").replace("-0.00", "0.00") if digits == 2 else s


def _p(p: Any) -> str:
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _count(n: Any, threshold: int) -> str:
    return display_count(None if n is None else int(n), threshold)


def _ci(e: Mapping[str, Any], digits: int = 2, signed: bool = True) -> str:
    if e.get("ci_low") is None or e.get("ci_high") is None:
        return "—"
    return f"{_num(e['ci_low'], digits, signed)} to {_num(e['ci_high'], digits, signed)}"


def _svg(svg: str | None) -> Markup | None:
    """Our own matplotlib SVG, trusted, inlined without namespace URLs."""
    if not svg:
        return None
    return Markup(_XMLNS.sub("", svg[svg.index("<svg") :]))


def _ratio_scale(e: Mapping[str, Any]) -> bool:
    return "ratio" in str(e.get("scale", ""))


def _secondary_view(e: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    ratio = _ratio_scale(e)
    digits = 2 if ratio or e.get("unit") == "mmol/L" else 3
    return {
        "name": _text(e.get("name", "")).replace("_", " "),
        "estimand": _text(e.get("estimand")),
        "outcome": _text(e.get("outcome")),
        "scale": _text(e.get("scale")),
        "unit": _text(e.get("unit")),
        "method": _text(e.get("method")),
        "estimate": _num(e.get("estimate"), digits, signed=not ratio),
        "ci": _ci(e, digits, signed=not ratio),
        "p": _p(e.get("p_value")),
        "n": _count(e.get("n"), threshold) if e.get("estimate") is not None else "—",
        "reason": _text(e.get("reason") or e.get("withheld") or ""),
        "notes": [_text(n) for n in e.get("notes") or []],
    }


def _sensitivity_view(e: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    return {
        "analysis": _text(e.get("analysis") or e.get("name")),
        "outcome": _text(e.get("outcome")),
        "estimate": _num(e.get("estimate"), signed=True),
        "ci": _ci(e),
        "p": _p(e.get("p_value")),
        "n": _count(e.get("n"), threshold) if e.get("estimate") is not None else "—",
        "n_exposed": _count(e.get("n_exposed"), threshold)
        if e.get("estimate") is not None
        else "—",
        "n_unexposed": _count(e.get("n_unexposed"), threshold)
        if e.get("estimate") is not None
        else "—",
        "reason": _text(e.get("reason") or e.get("withheld") or ""),
    }


def _evalue_view(ev: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not ev:
        return None
    return {
        "estimate": _num(ev.get("evalue_estimate")),
        "ci": _num(ev.get("evalue_ci")),
        "d": _num(ev.get("d")),
        "sd": _num(ev.get("sd_outcome_mmol_l"), 3),
        "approximation": _text(ev.get("approximation")),
        "reason": _text(ev.get("reason") or ""),
    }


def _diagnostics_view(diag: Mapping[str, Any] | None, threshold: int) -> dict[str, Any] | None:
    if not diag:
        return None
    balance = [
        {
            "covariate": _text(r["covariate"]) + ("" if r.get("in_model") else " †"),
            "before": _num(r.get("smd_before"), signed=True),
            "after": _num(r.get("smd_after"), signed=True),
            "poor": r.get("smd_after") is not None and abs(r["smd_after"]) > 0.1,
        }
        for r in diag.get("balance") or []
    ]
    ess = [
        {
            "arm": r["arm"],
            "n": _count(r.get("n"), threshold),
            "ess": "—" if r.get("ess") is None else f"{r['ess']:.0f}",
            "share": "—" if r.get("ess_share") is None else f"{100 * r['ess_share']:.0f} %",
        }
        for r in diag.get("ess") or []
    ]
    overlap = diag.get("overlap") or {}
    quantiles = [
        {
            "arm": q["arm"],
            "n": _count(q.get("n"), threshold),
            "values": [_num(q.get(k)) for k in ("q05", "q25", "q50", "q75", "q95")],
        }
        for q in overlap.get("quantiles") or []
    ]
    share = overlap.get("share_outside")
    return {
        "reason": _text(diag.get("reason") or ""),
        "warnings": [_text(w) for w in diag.get("warnings") or []],
        "balance": balance,
        "ess": ess,
        "quantiles": quantiles,
        "bounds": overlap.get("bounds"),
        "share_outside": "—" if share is None else f"{100 * share:.1f} %",
    }


def stats_sections(
    results: Mapping[str, Any], figures: Mapping[str, str], threshold: int
) -> dict[str, Any]:
    """Template variables of the statistics partials (see the module docstring)."""
    estimates = {e.get("name"): e for e in results.get("estimates") or []}
    primary_estimators = [
        {
            "label": label,
            "estimate": _num(estimates[name].get("estimate"), signed=True),
            "ci": _ci(estimates[name]),
            "p": _p(estimates[name].get("p_value")),
            "n": _count(estimates[name].get("n"), threshold),
            "estimand": _text(estimates[name].get("estimand")),
            "method": _text(estimates[name].get("method")),
        }
        for name, label in PRIMARY_ESTIMATORS.items()
        if name in estimates
    ]
    sensitivity = results.get("sensitivity") or {}
    rows = forest_rows(results, FOREST_LABELS)
    return {
        "target_trial": [
            (key.replace("_", " ").capitalize(), _text(text))
            for key, text in (results.get("target_trial") or {}).items()
        ],
        "primary_estimators": primary_estimators,
        "secondary": [_secondary_view(e, threshold) for e in results.get("secondary") or []],
        "diagnostics": _diagnostics_view(results.get("diagnostics"), threshold),
        "love_plot_svg": _svg(figures.get("love_plot")),
        "overlap_svg": _svg(figures.get("overlap")),
        "sensitivity": [_sensitivity_view(e, threshold) for e in sensitivity.get("analyses") or []],
        "evalue": _evalue_view(sensitivity.get("evalue")),
        "forest_svg": _svg(forest_plot(rows)),
    }

"""The report's negative-control section, the calibrated row of the first screen's forest plot
and its caveat, all read from results.json ``negative_controls`` and ``calibration``
(aggregates; counts already suppressed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgca.analysis.privacy import display_record_count

CALIBRATED_LABEL = "primary, calibrated by the negative controls"
"""The calibrated primary's label in the forest plots and the section."""

CALIBRATED_GROUP = "calibrated"
"""Forest-plot group of the calibrated primary."""


def calibrated_forest_row(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The calibrated primary as a forest row (``None`` when it was not calibrated)."""
    cal = results.get("calibration") or {}
    if any(cal.get(k) is None for k in ("estimate", "ci_low", "ci_high")):
        return None
    return {
        "group": CALIBRATED_GROUP,
        "label": CALIBRATED_LABEL,
        "estimate": float(cal["estimate"]),
        "ci_low": float(cal["ci_low"]),
        "ci_high": float(cal["ci_high"]),
    }


def with_calibrated_row(rows: list[dict[str, Any]], results: Mapping[str, Any]) -> list[dict]:
    """``rows`` with the calibrated primary right after the primary's own row (or first)."""
    row = calibrated_forest_row(results)
    if row is None:
        return rows
    at = next((i + 1 for i, r in enumerate(rows) if r["group"] == "primary estimators"), 0)
    return [*rows[:at], row, *rows[at:]]


def calibration_caveat(results: Mapping[str, Any]) -> str | None:
    """The caveat sentence when the negative controls reject "no systematic error" (or their
    CIs exclude 0), else ``None``."""
    cal = results.get("calibration") or {}
    n_off = cal.get("controls_ci_excluding_zero") or 0
    if not cal.get("controls_reject") and not n_off:
        return None
    p = cal.get("null_test_p")
    test = f" (test of no systematic error p = {p:.3f})" if p is not None else ""
    calibrated = (
        f"; calibrated, the primary reads {cal['estimate']:+.2f} mmol/L (95 % CI "
        f"{cal['ci_low']:+.2f} to {cal['ci_high']:+.2f})"
        if cal.get("estimate") is not None
        else ""
    )
    return (
        f"{n_off} of {cal.get('controls_count', 0)} negative controls, whose true effect is 0, "
        f"have a 95 % CI excluding 0{test}: the design carries systematic error (e.g. "
        f"unmeasured confounding by illness){calibrated}."
    )


DECIMALS: dict[str, int] = {"sodium_outcome": 2, "albumin_outcome": 1}
"""Decimals of a control's difference and CI in its outcome's unit (calcium: 3)."""


def negative_control_rows(results: Mapping[str, Any], threshold: int) -> list[dict[str, Any]]:
    """One row per control for the report table: label, estimand words, estimate and CI in
    the outcome's unit, the standardised estimate, n (suppressed) or the reason."""
    rows = []
    for c in results.get("negative_controls") or []:
        std = (c.get("standardised") or {}).get("estimate")
        has = c.get("estimate") is not None and c.get("ci_low") is not None
        d = DECIMALS.get(str(c.get("name")), 3)
        rows.append(
            {
                "label": c.get("label") or str(c.get("name", "")).replace("_", " "),
                "estimand": c.get("estimand"),
                "outcome": c.get("outcome"),
                "why_null": c.get("why_null"),
                "estimate": (
                    f"{c['estimate']:+.{d}f} {c.get('unit', '')} ({c['ci_low']:+.{d}f} to "
                    f"{c['ci_high']:+.{d}f})"
                    if has
                    else (c.get("reason") or c.get("withheld") or "not estimated")
                ),
                "standardised": "" if std is None else f"{std:+.2f}",
                "n": display_record_count(c, "n", threshold) if has else "",
            }
        )
    return rows

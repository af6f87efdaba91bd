"""The report's per-protocol section (results.json ``per_protocol``): its view, its forest row
on the first screen and its Methods paragraph, from the block the estimation wrote (words from
:func:`mgca.analysis.text.per_protocol_words`; counts already suppressed by the count rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgca.analysis.estimation.per_protocol import CLONES
from mgca.analysis.privacy import display_effective_size, display_record_count, scrub_dates
from mgca.analysis.report.format import format_ci, format_number

FOREST_GROUP = "per-protocol"
"""The forest group (and label suffix) of the per-protocol point."""

ANCHOR = "per-protocol"
"""The Methods paragraph's anchor (``#method-per-protocol``)."""

CLONE_LABELS: dict[str, str] = {
    CLONES[0]: "Mg started within the grace period",
    CLONES[1]: "no Mg until the outcome draw",
}
"""Report labels of the two clone arms."""


def per_protocol_view(block: Mapping[str, Any] | None, threshold: int) -> dict[str, Any] | None:
    """What ``_per_protocol.html.j2`` shows: the estimate (mmol/L) with its interval, the
    estimand's parts, one row per clone arm (followed / censored counts, weighted mean
    outcome, weights), notes and the reason when there is no estimate; None without a block."""
    if not block:
        return None
    weights = block.get("weights") or {}
    means = {
        CLONES[0]: block.get("mean_mg_within_grace"),
        CLONES[1]: block.get("mean_no_mg_to_outcome"),
    }
    arms = []
    for clone in CLONES:
        w = weights.get(clone) or {}
        arms.append(
            {
                "label": CLONE_LABELS[clone],
                "followed": display_record_count(block, f"n_{clone}_followed", threshold),
                "censored": display_record_count(block, f"n_{clone}_censored", threshold),
                "mean": format_number(means[clone]),
                "weight_mean": format_number(w.get("mean")),
                "weight_max": format_number(w.get("max"), 1),
                "ess": display_effective_size(w.get("ess"), threshold),
            }
        )
    return {
        "estimate": format_number(block.get("estimate"), signed=True),
        "ci": format_ci(block),
        "n": display_record_count(block, "n", threshold),
        "estimand": scrub_dates(block.get("estimand") or ""),
        "cohort": scrub_dates(block.get("cohort") or ""),
        "strategies": scrub_dates(block.get("exposure_strategies") or ""),
        "outcome": scrub_dates(block.get("outcome") or ""),
        "adjustment_set": ", ".join(block.get("adjustment_set") or []),
        "arms": arms,
        "notes": [scrub_dates(n) for n in block.get("notes") or []],
        "withheld": block.get("withheld"),
        "reason": scrub_dates(block["reason"]) if block.get("reason") else None,
    }


def per_protocol_forest_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-protocol point of the first screen's forest (none without an interval)."""
    block = results.get("per_protocol") or {}
    if any(block.get(k) is None for k in ("estimate", "ci_low", "ci_high")):
        return []
    return [
        {
            "group": FOREST_GROUP,
            "label": "clone-censor-weight",
            "estimate": float(block["estimate"]),
            "ci_low": float(block["ci_low"]),
            "ci_high": float(block["ci_high"]),
        }
    ]


def per_protocol_method_paragraph(block: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The Methods appendix's per-protocol paragraph (estimand, strategies, outcome, method,
    adjustment set), as a one-item list to append; empty without a block."""
    if not block or not block.get("method"):
        return []
    parts = [
        block.get("estimand") or "",
        "Strategies: " + (block.get("exposure_strategies") or ""),
        "Outcome: " + (block.get("outcome") or ""),
        block.get("method") or "",
        "Censoring models' covariates: " + ", ".join(block.get("adjustment_set") or []),
    ]
    text = " ".join(scrub_dates(p).rstrip(".") + "." for p in parts if p and not p.endswith(": "))
    return [
        {
            "anchor": ANCHOR,
            "label": "per-protocol (clone-censor-weight)",
            "text": text[:1].upper() + text[1:],
        }
    ]

"""The report's "Missing outcomes" section, from results.json ``missing_outcomes``.

Who among the eligible episodes has the outcome measured, and why the others do not, per arm
(counts as results.json shows them: small ones already hidden); the censoring model and the
weights; the IPCW primary beside the complete-case estimate; the composite sensitivity
analysis. Aggregates only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgca.analysis.estimation.censoring import MISSING_REASONS
from mgca.analysis.privacy import display_count
from mgca.analysis.report.format import format_ci, format_number, format_p_value

REASON_LABELS: dict[str, str] = {
    "died": "died before the horizon",
    "discharged_alive": "discharged alive before the horizon",
    "not_retested": "in hospital at the horizon, not re-tested",
}
"""Words of each reason of ``sql/eligible_episodes.sql``."""
assert set(REASON_LABELS) == set(MISSING_REASONS)

COMPARISON_LABELS: dict[str, str] = {
    "primary": "Primary: weighted for missing outcomes (IPCW), all eligible episodes",
    "primary_complete_case": "Complete cases: episodes with a measured outcome only",
}


def missing_outcomes_view(block: Mapping[str, Any] | None, threshold: int) -> dict[str, Any] | None:
    """Template context of the section, or ``None`` when results.json has no such block."""
    if not block:
        return None
    if block.get("reason"):
        return {"reason": block["reason"]}
    keys = ["n_eligible", "n_measured", *[f"n_{r}" for r in MISSING_REASONS]]
    columns = ["Arm", "Eligible", "Outcome measured", *[REASON_LABELS[r] for r in MISSING_REASONS]]
    rows = [
        [c.get("arm", ""), *[display_count(c.get(k), threshold) for k in keys]]
        for c in block.get("counts") or []
    ]
    comparison = [
        {
            "label": COMPARISON_LABELS.get(c["name"], c["name"]),
            "estimate": format_number(c.get("estimate"), signed=True),
            "ci": format_ci(c),
        }
        for c in block.get("comparison") or []
    ]
    model = block.get("censoring_model") or {}
    weights = block.get("weights") or {}
    composite = block.get("composite") or {}
    return {
        "reason": None,
        "columns": columns,
        "rows": rows,
        "comparison": comparison,
        "model": "the arm alone"
        if model.get("arm_only")
        else "the arm and " + ", ".join(model.get("covariates") or []),
        "model_notes": [n for n in model.get("notes") or [] if n.startswith("censoring model")],
        "weights": {
            k: format_number(weights.get(k)) for k in ("min", "median", "max", "ess_share")
        },
        "truncation": (
            f"{format_number(weights.get('truncation_low'))} to "
            f"{format_number(weights.get('truncation_high'))}"
        ),
        "composite": {
            "estimand": composite.get("estimand"),
            "estimate": format_number(composite.get("estimate"), 3, signed=True),
            "ci": format_ci(composite, 3),
            "p": format_p_value(composite.get("p_value")),
            "reason": composite.get("reason"),
        },
    }

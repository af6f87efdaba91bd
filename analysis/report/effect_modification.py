"""Display text for the report's effect-modification section (results.json
``effect_modification``, :mod:`mgca.analysis.estimation.mechanism`): one row per stratum
effect or difference between strata, grouped by modifier, with the model's method once per
modifier. Hidden counts read as :func:`mgca.analysis.privacy.display_record_count` says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mgca.analysis.estimation.mechanism import MODIFIERS, ROUTE, ROUTE_LEVELS
from mgca.analysis.privacy import display_record_count, scrub_dates
from mgca.analysis.report.format import MISSING, format_ci, format_number, format_p_value

MODIFIER_LABELS: dict[str, str] = {
    **{column: spec["label"] for column, spec in MODIFIERS.items()},
    ROUTE: "route of Mg",
}
"""Heading of each modifier's rows."""

LEVEL_LABELS: dict[str, str] = {
    **{level: words for spec in MODIFIERS.values() for level, words in spec["levels"].items()},
    **{route: f"{words} only vs no Mg" for route, words in ROUTE_LEVELS.items()},
}


def effect_modification_view(
    entries: Sequence[Mapping[str, Any]], threshold: int
) -> list[dict[str, Any]]:
    """Per modifier (in results order): ``label``, ``method``, ``rows`` (stratum or
    difference: ``stratum``, ``estimand``, ``estimate``, ``ci``, ``p``, ``n``, ``reason``)."""
    groups: dict[str, dict[str, Any]] = {}
    for e in entries:
        column = str(e.get("modifier") or "")
        label = MODIFIER_LABELS.get(column, column.replace("_", " "))
        group = groups.setdefault(column, {"label": label, "method": "", "rows": []})
        if e.get("method") and not group["method"]:
            group["method"] = scrub_dates(e["method"])
        level = e.get("level")
        estimated = e.get("estimate") is not None
        group["rows"].append(
            {
                "stratum": LEVEL_LABELS.get(str(level), str(level))
                if level is not None
                else "difference between strata",
                "estimand": scrub_dates(e.get("estimand")),
                "estimate": format_number(e.get("estimate"), 3, signed=True),
                "ci": format_ci(e, 3, signed=True),
                "p": format_p_value(e.get("p_value")),
                "n": display_record_count(e, "n", threshold) if estimated else MISSING,
                "reason": scrub_dates(e.get("reason") or e.get("withheld") or ""),
            }
        )
    return list(groups.values())

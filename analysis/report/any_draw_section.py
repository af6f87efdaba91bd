"""The report's "Descriptive only" section: the any-draw correction outcomes per arm, read
from the results.json ``secondary`` entries that carry ``by_arm``
(:mod:`mgca.analysis.estimation.any_draw`; counts already suppressed there).

The "corrected within the window" risk difference and odds ratio share one per-arm table
(the same counts), shown once; time to correction has its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mgca.analysis.privacy import display_record_count, scrub_dates
from mgca.analysis.report.format import MISSING, format_number


def _percent(share: float | None) -> str:
    return MISSING if share is None else f"{100 * share:.1f} %"


def _window_rows(rows: Sequence[Mapping[str, Any]], threshold: int) -> list[list[str]]:
    return [
        [
            scrub_dates(r.get("arm") or ""),
            display_record_count(r, "n", threshold),
            display_record_count(r, "n_with_calcium_in_window", threshold),
            display_record_count(r, "n_corrected_within_window", threshold),
            _percent(r.get("share_corrected_within_window")),
            format_number(r.get("calcium_draws_in_window_per_episode"), 1),
        ]
        for r in rows
    ]


def _time_rows(rows: Sequence[Mapping[str, Any]], threshold: int) -> list[list[str]]:
    return [
        [
            scrub_dates(r.get("arm") or ""),
            display_record_count(r, "n", threshold),
            display_record_count(r, "n_corrected", threshold),
            format_number(r.get("episode_days_followed"), 0),
            format_number(r.get("corrections_per_episode_day"), 2),
        ]
        for r in rows
    ]


WINDOW_COLUMNS = (
    "Arm",
    "Episodes",
    "With a corrected Ca in the window",
    "Corrected in the window",
    "Share corrected",
    "Corrected-Ca draws per episode in the window",
)
TIME_COLUMNS = (
    "Arm",
    "Episodes",
    "Corrected (events)",
    "Episode-days followed",
    "Corrections per episode-day",
)


def descriptive_view(
    secondary: Sequence[Mapping[str, Any]], threshold: int
) -> list[dict[str, Any]]:
    """One table per distinct per-arm measure: ``{"names", "title", "outcome", "withheld",
    "columns", "rows"}`` (rows of display text); empty when no entry has ``by_arm``."""
    tables: dict[str, dict[str, Any]] = {}
    for e in secondary:
        rows = e.get("by_arm")
        if not rows:
            continue
        measure = scrub_dates(e.get("descriptive_measure") or "")
        if measure in tables:
            tables[measure]["names"].append(scrub_dates(e.get("name", "")).replace("_", " "))
            continue
        window = "n_with_calcium_in_window" in rows[0]
        tables[measure] = {
            "names": [scrub_dates(e.get("name", "")).replace("_", " ")],
            "title": measure[:1].upper() + measure[1:],
            "outcome": scrub_dates(e.get("outcome") or ""),
            "withheld": scrub_dates(e.get("withheld") or ""),
            "columns": WINDOW_COLUMNS if window else TIME_COLUMNS,
            "rows": _window_rows(rows, threshold) if window else _time_rows(rows, threshold),
        }
    return list(tables.values())


__all__ = ["descriptive_view"]

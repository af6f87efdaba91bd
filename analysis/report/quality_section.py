"""The report's data-quality section: what was read, quarantined, converted and missing.

``data_quality_view`` reshapes results.json's ``source_rows`` and ``data_quality`` records
(counts already suppressed there: ``None`` with ``"suppressed"``) and the analysed episodes'
missing baseline/outcome counts into display tables. It re-derives nothing: every number is
a count the SQL (``sql/data_quality.sql``, ``source_row_counts``) or the analytic table holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mgca.analysis.finite import finite_or_none
from mgca.analysis.privacy import (
    SUPPRESSED_KEY,
    SUPPRESSED_WHY_KEY,
    display_record_count,
    hidden_reason,
    suppress_record,
)
from mgca.analysis.report.table_one import count_cell

EPISODE_MEASURES: dict[str, str] = {
    "baseline_mg_mmol_l": "Baseline Mg",
    "baseline_ca_corrected_mmol_l": "Baseline albumin-corrected Ca",
    "baseline_ca_total_mmol_l": "Baseline total Ca",
    "baseline_albumin_g_l": "Baseline albumin",
    "baseline_ca_ionized_mmol_l": "Baseline ionized Ca",
    "baseline_creatinine_umol_l": "Baseline creatinine",
    "baseline_potassium_mmol_l": "Baseline potassium",
    "baseline_phosphate_mmol_l": "Baseline phosphate",
    "outcome_ca_corrected_mmol_l": "Outcome albumin-corrected Ca (primary)",
    "outcome_ca_ionized_mmol_l": "Outcome ionized Ca (secondary)",
}
"""Columns of the analytic table whose missingness the report shows, with their labels."""


ORPHAN_COUNT_KEYS = ("n_rows", "n_stays", "n_stays_added")
ORPHAN_VALUE_KEYS = ("value_p05", "value_p50", "value_p95")


def orphan_code_records(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None, threshold: int
) -> list[dict[str, Any]]:
    """Orphan-code aggregates (table ``source_orphan_codes``, ``mgca.sources.codes``) as
    results.json records: small counts suppressed; a row whose row count is hidden also hides
    its value percentiles (they would describe fewer than ``threshold`` results)."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    out = []
    for row in rows or []:
        record = suppress_record(finite_or_none(dict(row)), ORPHAN_COUNT_KEYS, threshold)
        if record.get("n_rows") is None:
            record.update(dict.fromkeys(ORPHAN_VALUE_KEYS))
        out.append(record)
    return out


ORPHAN_MATCHED_BY: dict[str, str] = {
    "name": "matched by name",
    "left_out_list": "in lab_codes_left_out.csv",
    "unit_value": "possible: matched by unit and value range only",
}
"""How each orphan row was found (``matched_by`` of ``sql/sources/common/orphan_codes.sql``)."""


def orphan_status(record: Mapping[str, Any]) -> str:
    """One phrase for an orphan-code row: known and left out on purpose (with why), or
    unmapped, with how the row was matched to its look-alike."""
    how = ORPHAN_MATCHED_BY.get(str(record.get("matched_by")), str(record.get("matched_by") or ""))
    if record.get("left_out_why"):
        return f"known, left out on purpose: {record['left_out_why']}"
    return f"unmapped ({how})" if how else "unmapped"


def episode_missingness(cohort: pd.DataFrame) -> list[dict[str, Any]]:
    """Per measure of :data:`EPISODE_MEASURES` present in ``cohort``: ``measure`` (label),
    ``n_missing`` and ``n_episodes`` (raw counts; the report hides small ones)."""
    return [
        {
            "measure": label,
            "n_missing": int(cohort[column].isna().sum()),
            "n_episodes": len(cohort),
        }
        for column, label in EPISODE_MEASURES.items()
        if column in cohort.columns
    ]


def _share(record: Mapping[str, Any], part: str, whole: str) -> str:
    """``part`` as a percentage of ``whole``; blank when either count is hidden or zero."""
    a, b = record.get(part), record.get(whole)
    if a is None or b is None or not b:
        return ""
    return f"{100.0 * a / b:.1f} %"


def _lab_rows(data_quality: Sequence[Mapping[str, Any]], prefix: str) -> list[Mapping[str, Any]]:
    return [
        r
        for r in data_quality
        if r.get("table_name") == "lab_results" and str(r.get("check_name", "")).startswith(prefix)
    ]


def data_quality_view(
    results: Mapping[str, Any],
    missing: Sequence[Mapping[str, Any]] | None,
    threshold: int,
) -> dict[str, list[dict[str, str]]]:
    """Display rows of the data-quality subsections: ``rows_read``, ``orphan_codes``,
    ``quarantined``,
    ``conversions``, ``missing_values``, ``episode_missing`` and ``other_checks``."""
    dq = list(results.get("data_quality") or [])
    rows_read = [
        {
            "source": f"{r.get('source_kind', '')}: {r.get('source_table', '')}",
            "target": r.get("canonical_table") or "—",
            "status": r.get("status") or "",
            "reason": r.get("reason") or "",
            "n": display_record_count(r, "n_rows", threshold),
        }
        for r in results.get("source_rows") or []
    ]
    quarantined = [
        {
            "analyte": r.get("analyte") or "",
            "reason": r.get("detail") or r.get("check_name", ""),
            "n": display_record_count(r, "n_flagged", threshold),
            "of": display_record_count(r, "n_rows", threshold),
            "share": _share(r, "n_flagged", "n_rows"),
        }
        for r in _lab_rows(dq, "status:")
        if r.get("check_name") != "status:used" and r.get("n_flagged") != 0
    ]
    conversions = [
        {
            "analyte": r.get("analyte") or "",
            "conversion": r.get("detail") or "",
            "n": display_record_count(r, "n_flagged", threshold),
            "share": _share(r, "n_flagged", "n_rows"),
        }
        for r in _lab_rows(dq, "unit_conversion:") + _lab_rows(dq, "unit_inferred:")
    ]
    per_analyte: dict[str, dict[str, Any]] = {}
    for r in _lab_rows(dq, "status:"):
        entry = per_analyte.setdefault(str(r.get("analyte")), {"n_rows": r.get("n_rows")})
        why = entry.setdefault(SUPPRESSED_WHY_KEY, {})
        if SUPPRESSED_KEY in r and r.get("n_rows") is None:
            entry[SUPPRESSED_KEY] = r[SUPPRESSED_KEY]
            if hidden_reason(r, "n_rows"):
                why["n_rows"] = hidden_reason(r, "n_rows")
        if r.get("check_name") == "status:missing_value":
            entry["n_missing"] = r.get("n_flagged")
            if r.get("n_flagged") is None:
                entry[SUPPRESSED_KEY] = r.get(SUPPRESSED_KEY)
                if hidden_reason(r, "n_flagged"):
                    why["n_missing"] = hidden_reason(r, "n_flagged")
    missing_values = [
        {
            "analyte": analyte,
            "of": display_record_count(entry, "n_rows", threshold),
            "n": display_record_count({"n_missing": 0, **entry}, "n_missing", threshold),
            "share": _share({"n_missing": 0, **entry}, "n_missing", "n_rows"),
        }
        for analyte, entry in sorted(per_analyte.items())
    ]
    episode_missing = [
        {
            "measure": str(m["measure"]),
            "n": count_cell(int(m["n_missing"]), int(m["n_episodes"]), threshold)[0],
        }
        for m in missing or []
    ]
    shown_prefixes = ("rows_read", "status:", "unit_conversion:", "unit_inferred:")
    other_checks = [
        {
            "table": r.get("table_name") or "",
            "check": r.get("check_name") or "",
            "analyte": r.get("analyte") or "",
            "n": display_record_count(r, "n_flagged", threshold),
            "of": display_record_count(r, "n_rows", threshold),
            "detail": r.get("detail") or "",
        }
        for r in dq
        if not str(r.get("check_name", "")).startswith(shown_prefixes) and r.get("n_flagged") != 0
    ]
    orphan_codes = [
        {
            "source": f"{r.get('source_kind', '')}: {r.get('source_table', '')}",
            "looks_like": r.get("looks_like") or "",
            "code": r.get("code") or "",
            "name": r.get("display") or "",
            "unit": r.get("unit") or "",
            "n": display_record_count(r, "n_rows", threshold),
            "stays": display_record_count(r, "n_stays", threshold),
            "stays_added": display_record_count(r, "n_stays_added", threshold),
            "values": " / ".join(
                "—" if r.get(k) is None else f"{r[k]:.4g}" for k in ORPHAN_VALUE_KEYS
            ),
            "status": orphan_status(r),
        }
        for r in results.get("orphan_codes") or []
    ]
    return {
        "rows_read": rows_read,
        "orphan_codes": orphan_codes,
        "quarantined": quarantined,
        "conversions": conversions,
        "missing_values": missing_values,
        "episode_missing": episode_missing,
        "other_checks": other_checks,
    }

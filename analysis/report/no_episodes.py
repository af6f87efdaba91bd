"""Why a run found no eligible episodes, in one sentence for the report's summary.

A real database without our analytes (the OHDSI Eunomia test CDM, a site that codes labs
locally) must end in a report that says so, not in a crash or an empty page. The sentence is
built only from the aggregate tables of results.json (attrition, data_quality, source_rows),
already small-cell suppressed, so it never reveals more than they do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mgca.analysis.privacy import display_record_count

Record = Mapping[str, Any]

# Canonical analytes the eligibility step reads: serum Mg, and ionized Ca or total Ca corrected
# by albumin.
ELIGIBILITY_ANALYTES = ("magnesium", "calcium_ionized", "calcium_total", "albumin")


def _n(record: Record | None, key: str, threshold: int) -> str:
    """A count as shown in the report (a small one as '<threshold', one hidden for another
    reason as 'suppressed'; :func:`mgca.analysis.privacy.display_record_count`), missing as 0."""
    if record is None:
        return "0"
    if record.get(key) is None and not record.get("suppressed"):
        return "0"
    return display_record_count(record, key, threshold)


def _sum(records: Sequence[Record], key: str) -> int | None:
    """Sum of a count column, or None when any part was suppressed."""
    total = 0
    for r in records:
        if r.get(key) is None:
            return None
        total += int(r[key])
    return total


def no_eligible_episodes_reason(
    attrition: Sequence[Record],
    data_quality: Sequence[Record],
    source_rows: Sequence[Record],
    threshold: int,
) -> str | None:
    """``"No eligible episodes: …"`` when the run analysed no episode, else ``None``."""
    analysed = next((a for a in attrition if str(a.get("step", "")).startswith("analysed")), None)
    if analysed is None or analysed.get("n") != 0 or analysed.get("suppressed"):
        return None
    first_empty = next((a for a in attrition if a.get("n") == 0), None)
    parts = []
    if first_empty is not None and first_empty.get("exclusion_reason"):
        parts.append(
            f"{_n(first_empty, 'n_excluded', threshold)} encounters excluded at "
            f"'{first_empty['step']}' ({first_empty['exclusion_reason']})"
        )
    used = []
    for analyte in ELIGIBILITY_ANALYTES:
        rows = [
            d
            for d in data_quality
            if d.get("table_name") == "lab_results"
            and d.get("analyte") == analyte
            and str(d.get("check_name", "")).startswith("status:")
        ]
        used_row = next((d for d in rows if d.get("check_name") == "status:used"), None)
        total = _sum(rows, "n_rows")
        total_text = f"<{threshold}" if total is None else f"{total:,}"
        used.append(f"{analyte} {_n(used_row, 'n_rows', threshold)} of {total_text}")
    parts.append("lab results usable: " + ", ".join(used))
    lab_tables = {
        r.get("source_table") for r in source_rows if r.get("canonical_table") == "lab_results"
    }
    if source_rows and lab_tables:
        read = [r for r in source_rows if r.get("source_table") in lab_tables]
        mapped = [r for r in read if r.get("status") == "mapped"]
        n_read, n_mapped = _sum(read, "n_rows"), _sum(mapped, "n_rows")
        if n_read is not None and n_mapped is not None:
            parts.append(
                f"{n_mapped:,} of {n_read:,} source lab rows ({', '.join(sorted(lab_tables))}) "
                "matched the lab code list"
            )
    elif source_rows:
        parts.append("no source lab row matched the lab code list")
    return "No eligible episodes: " + "; ".join(parts)

"""Complementary suppression of the data-quality table (results.json ``data_quality``).

Some data-quality rows partition the rows they count: the PTH-status rows of
``hypocalcaemia_pth_status`` add up to its ``n_rows`` (episodes), the ``status:*`` rows of one
lab analyte add up to that analyte's ``n_rows`` (lab rows), the ``calcium_measure:*`` rows of
``calcium_status`` to its draw times, and an analyte's ``unit_conversion:*`` rows plus its
``status:missing_value`` row to its lab rows. Hiding a small ``n_flagged`` alone is then
useless: ``n_rows`` minus the others gives it back (the default run's
``pth_status:measured_only_after_mg`` was such a case).

Identities are found from the counts, not from a list of check names: the rows of one
(table, analyte, check family — the part of ``check_name`` before ``:``) form an identity when
their ``n_flagged`` add up to the ``n_rows`` they share, or do so with one more row of the same
table and analyte. While an identity has exactly one hidden cell, its smallest other shown
nonzero ``n_flagged`` is hidden too (``"complementary"``); ``n_rows`` is never the one hidden
(every row of the table repeats it). Shown counts then follow the count rule (rounding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mgca.analysis.privacy import COMPLEMENTARY, SMALL, is_small, mark_hidden, suppress_count

COUNT_KEYS = ("n_rows", "n_flagged")


def _family(check_name: Any) -> str | None:
    """The check family of a partitioning row (``"status"`` of ``"status:used"``)."""
    name = str(check_name or "")
    return name.split(":", 1)[0] if ":" in name else None


def quality_identities(rows: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Row indices whose ``n_flagged`` add up to their shared ``n_rows`` (raw counts)."""
    groups: dict[tuple[Any, Any, str, Any], list[int]] = {}
    for i, r in enumerate(rows):
        family = _family(r.get("check_name"))
        if family is not None and r.get("n_flagged") is not None and r.get("n_rows") is not None:
            key = (r.get("table_name"), r.get("analyte"), family, r["n_rows"])
            groups.setdefault(key, []).append(i)
    identities = []
    for (table, analyte, _family_name, n_rows), members in groups.items():
        total = sum(int(rows[i]["n_flagged"]) for i in members)
        if total == int(n_rows):
            identities.append(members)
            continue
        extra = [
            i
            for i, r in enumerate(rows)
            if i not in members
            and r.get("table_name") == table
            and r.get("analyte") == analyte
            and r.get("n_rows") == n_rows
            and r.get("n_flagged") is not None
            and total + int(r["n_flagged"]) == int(n_rows)
        ]
        if extra:
            identities.append([*members, extra[0]])
    return identities


def suppress_quality(
    rows: Sequence[Mapping[str, Any]], threshold: int
) -> list[dict[str, Any]]:
    """Data-quality records (raw ``n_rows``/``n_flagged``) with small counts hidden, the
    complementary ``n_flagged`` cells that would give them back hidden too, and shown counts
    rounded by the count rule (``threshold``: a :class:`~mgca.analysis.privacy.CountRule`)."""
    records = [dict(r) for r in rows]
    small = {
        (i, key)
        for i, r in enumerate(records)
        for key in COUNT_KEYS
        if r.get(key) is not None and is_small(int(r[key]), threshold)
    }
    hidden = set(small)
    identities = quality_identities(records)
    changed = True
    while changed:
        changed = False
        for members in identities:
            cells = [(i, "n_flagged") for i in members]
            if sum(c in hidden for c in cells) != 1:
                continue
            shown = sorted(
                (c for c in cells if c not in hidden and int(records[c[0]]["n_flagged"]) > 0),
                key=lambda c: (int(records[c[0]]["n_flagged"]), c),
            )
            if shown:
                hidden.add(shown[0])
                changed = True
    out = []
    for i, record in enumerate(records):
        why = {key: SMALL if (i, key) in small else COMPLEMENTARY for key in COUNT_KEYS
               if (i, key) in hidden}
        for key in COUNT_KEYS:
            if key not in why and record.get(key) is not None:
                record[key] = suppress_count(int(record[key]), threshold)
        out.append(mark_hidden(record, why, threshold))
    return out

"""Statistical disclosure control: small counts never leave the run's private folder.

The rule (ARCHITECTURE.md): a count from 1 to ``threshold - 1`` is never written as a number
outside ``private/`` and ``cohort.parquet``. JSON carries ``null`` with ``"suppressed": "<11"``
beside it, HTML and figures show ``<11``. Zero is not disclosive and is shown as 0.

Every function here is pure and tiny, in the spirit of OpenSAFELY ehrQL's
``measures/disclosure_control.py``; the tables, figures and report call them rather than
re-implementing the rule. Counts are numbers of rows (episodes, patients, lab results).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

SUPPRESSED_KEY = "suppressed"
NOT_APPLICABLE = "—"
"""Shown for a count that does not apply (e.g. "excluded" on a summary row)."""

DATE_PATTERN = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b")
"""An absolute date (ISO ``YYYY-MM-DD``), with its time of day when one follows."""
DATE_PLACEHOLDER = "[date]"


def scrub_dates(text: Any) -> str:
    """``text`` as a string with every absolute date/time replaced by ``"[date]"``.

    Free text taken from results (reasons, notes, words) goes through this before it is shown:
    a date could identify a patient's stay. ``None`` becomes ``""``.

    >>> scrub_dates("first draw 2150-03-02 08:00:00, then 2150-03-03")
    'first draw [date], then [date]'
    """
    return DATE_PATTERN.sub(DATE_PLACEHOLDER, "" if text is None else str(text))


def is_small(n: int | None, threshold: int) -> bool:
    """True when ``n`` must be hidden: 1 <= n < threshold (``None`` is already hidden)."""
    return n is not None and 1 <= int(n) < threshold


def suppressed_text(threshold: int) -> str:
    """The text shown in place of a hidden count, e.g. ``"<11"``."""
    return f"<{threshold}"


def suppress_count(n: int | None, threshold: int) -> int | None:
    """Return ``n`` unchanged, or ``None`` when 1 <= n < threshold. 0 stays 0.

    >>> suppress_count(5, 11), suppress_count(0, 11), suppress_count(11, 11)
    (None, 0, 11)
    """
    if n is None or pd.isna(n):
        return None
    n = int(n)
    if n < 0:
        raise ValueError(f"a count cannot be negative, got {n}")
    return None if is_small(n, threshold) else n


def display_count(n: float | None, threshold: int) -> str:
    """Count as text for tables and figures: ``"<11"`` when hidden, else the integer.

    ``None`` (a count already suppressed upstream) and NaN (a count that is unknown, e.g. a
    missing value in a pandas column) also show as ``"<11"``: a count that cannot be checked
    against the threshold is never printed as a number.

    >>> display_count(3, 11), display_count(0, 11), display_count(1234, 11)
    ('<11', '0', '1,234')
    >>> display_count(None, 11), display_count(float("nan"), 11)
    ('<11', '<11')
    """
    shown = suppress_count(n, threshold)
    return suppressed_text(threshold) if shown is None else f"{shown:,}"


def display_record_count(record: Mapping[str, Any], key: str, threshold: int) -> str:
    """The count ``record[key]`` of a results.json record as table text.

    A missing value (``None`` or NaN) reads ``"<11"`` only where the record says something
    was suppressed (``"suppressed"`` key); otherwise the count does not apply to that row and
    reads ``"—"``. A present count goes through :func:`display_count`.

    >>> display_record_count({"n": None, "suppressed": "<11"}, "n", 11)
    '<11'
    >>> display_record_count({"n": 40, "n_excluded": None}, "n_excluded", 11)
    '—'
    """
    value = record.get(key)
    if (value is None or pd.isna(value)) and SUPPRESSED_KEY not in record:
        return NOT_APPLICABLE
    return display_count(value, threshold)


def display_counts(counts: Iterable[int | None], threshold: int) -> list[str]:
    """``display_count`` over a sequence, e.g. for matplotlib tick or annotation labels."""
    return [display_count(n, threshold) for n in counts]


def suppress_record(
    record: Mapping[str, Any], count_keys: Sequence[str], threshold: int
) -> dict[str, Any]:
    """Copy of a JSON-bound record with small counts set to ``None``.

    When any of ``count_keys`` is hidden, ``"suppressed": "<threshold>"`` is added beside
    them; the ``None`` values name which counts were hidden (counts are otherwise never null).
    """
    out = dict(record)
    hidden = False
    for key in count_keys:
        if key in out:
            value = out[key]
            shown = suppress_count(value, threshold)
            hidden = hidden or (value is not None and shown is None)
            out[key] = shown
    if hidden:
        out[SUPPRESSED_KEY] = suppressed_text(threshold)
    return out


ESTIMATE_VALUE_KEYS = ("estimate", "se", "ci_low", "ci_high", "p_value")
"""Keys of a results.json estimate entry that summarise the outcome of its episodes."""


def suppress_estimate(
    entry: Mapping[str, Any],
    count_keys: Sequence[str],
    group_keys: Sequence[str],
    threshold: int,
) -> dict[str, Any]:
    """Copy of an estimate entry with small counts hidden (as ``suppress_record``) and, when any
    group size in ``group_keys`` is hidden, its statistics set to ``None`` too: a mean over
    fewer than ``threshold`` episodes is itself disclosive. Adds a ``withheld`` reason then.
    An entry with a ``reason`` (no estimate could be made) has no statistics to withhold.
    """
    out = suppress_record(entry, count_keys, threshold)
    if not entry.get("reason") and any(k in out and out[k] is None for k in group_keys):
        for key in ESTIMATE_VALUE_KEYS:
            if key in out:
                out[key] = None
        if out.get("delta_method"):
            out["delta_method"] = dict.fromkeys(out["delta_method"])
        out["withheld"] = f"an exposure group has fewer than {threshold} episodes"
    return out


def suppress_frame(df: pd.DataFrame, count_columns: Sequence[str], threshold: int) -> pd.DataFrame:
    """Copy of ``df`` with small counts in ``count_columns`` set to missing (nullable Int64).

    A ``suppressed`` column holds ``"<threshold>"`` on rows where anything was hidden and is
    missing elsewhere, so ``df.to_dict("records")`` gives the JSON shape of ARCHITECTURE.md.
    """
    out = df.copy()
    any_hidden = pd.Series(False, index=out.index)
    for col in count_columns:
        values = pd.to_numeric(out[col], errors="raise").astype("Int64")
        small = (values >= 1) & (values < threshold)
        small = small.fillna(False).astype(bool)
        any_hidden |= small
        out[col] = values.mask(small)
    out[SUPPRESSED_KEY] = pd.Series(
        [suppressed_text(threshold) if h else None for h in any_hidden],
        index=out.index,
        dtype="object",
    )
    return out


def display_frame(df: pd.DataFrame, count_columns: Sequence[str], threshold: int) -> pd.DataFrame:
    """Copy of ``df`` with ``count_columns`` turned into display text (``"<11"``, ``"1,234"``)."""
    out = df.copy()
    for col in count_columns:
        out[col] = [display_count(v, threshold) for v in out[col]]
    return out


def suppress_attrition(
    records: Sequence[Mapping[str, Any]], threshold: int
) -> list[dict[str, Any]]:
    """Attrition records (``step``, ``n``, ``n_excluded``, …, in step order) with small counts
    hidden AND the complementary cells that would let a reader recover them by subtraction.

    The table obeys linear identities: each step's ``n`` equals the previous ``n`` minus its
    ``n_excluded`` (rows with a raw ``n_excluded``: the eligibility chain), the first ``n``
    minus the last chain ``n`` equals the sum of exclusions, and the breakdown rows after the
    chain (raw ``n_excluded`` null, e.g. exposed / unexposed) add up to the last chain ``n``.
    Primary suppression hides 1 <= count < threshold; then, while any identity has exactly one
    hidden cell, a second cell of it is hidden too (secondary suppression): an exclusion count
    before a remaining count, never the final analysed ``n`` (it is published with the
    estimates), and the smallest breakdown part. A reader then learns only sums of hidden
    cells, never one of them. Hidden cells are ``None`` with ``"suppressed": "<threshold>"``.
    """
    rows = [dict(r) for r in records]
    chain = [i for i, r in enumerate(rows) if i == 0 or r.get("n_excluded") is not None]
    parts = [i for i in range(len(rows)) if i not in chain and rows[i].get("n") is not None]
    hidden: set[tuple[int, str]] = {
        (i, key)
        for i, r in enumerate(rows)
        for key in ("n", "n_excluded")
        if r.get(key) is not None and is_small(r[key], threshold)
    }
    last_n = (chain[-1], "n") if chain else None
    # Each identity: its cells in order of preference for secondary suppression.
    identities: list[list[tuple[int, str]]] = []
    for prev, cur in itertools.pairwise(chain):
        identities.append([(cur, "n_excluded"), (cur, "n"), (prev, "n")])
    if len(chain) > 1:
        identities.append([(i, "n_excluded") for i in chain[1:]] + [(chain[0], "n"), last_n])
    if parts and last_n is not None:
        by_size = sorted(parts, key=lambda i: (rows[i]["n"], i))
        identities.append([(i, "n") for i in by_size] + [last_n])
    changed = True
    while changed:
        changed = False
        for cells in identities:
            if sum(cell in hidden for cell in cells) != 1:
                continue
            candidates = [c for c in cells if c not in hidden and c != last_n] or [
                c for c in cells if c not in hidden
            ]
            if candidates:
                hidden.add(candidates[0])
                changed = True
    out = []
    for i, row in enumerate(rows):
        row_hidden = False
        for key in ("n", "n_excluded"):
            if (i, key) in hidden:
                row[key] = None
                row_hidden = True
            elif key in row and row[key] is not None:
                row[key] = int(row[key])
        if row_hidden:
            row[SUPPRESSED_KEY] = suppressed_text(threshold)
        out.append(row)
    return out

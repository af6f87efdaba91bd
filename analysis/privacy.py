"""Statistical disclosure control: small counts never leave the run's private folder.

The rule (ARCHITECTURE.md): a count from 1 to ``threshold - 1`` is never written as a number
outside ``private/`` and ``cohort.parquet``. JSON carries ``null`` with ``"suppressed": "<11"``
beside it, HTML and figures show ``<11``. Zero is not disclosive and is shown as 0.

A cell hidden for another reason (complementary suppression: a large count hidden so that a
small one cannot be recovered by subtraction) reads ``"suppressed"``, never ``"<11"``: the
``"suppressed_why"`` map of a record names each hidden key's reason (``"small"`` or
``"complementary"``), and a hidden count whose reason is not recorded reads ``"suppressed"``
too. With ``privacy.rounding: nearest_5`` (OpenSAFELY-style) every shown count is also rounded
to the nearest 5.

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
SUPPRESSED_WHY_KEY = "suppressed_why"
"""Record key: ``{count key: "small" | "complementary"}`` for each hidden count of the record."""
SMALL = "small"
COMPLEMENTARY = "complementary"
HIDDEN_TEXT = "suppressed"
"""Shown for a hidden count that is not known to be small (e.g. complementary suppression)."""
ROUNDING_BASES = {"none": 1, "nearest_5": 5}
"""``privacy.rounding`` values → the base shown counts are rounded to."""
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


class CountRule(int):
    """The run's whole count rule: the small-cell threshold (its ``int`` value) and the
    ``privacy.rounding`` rule it carries.

    It is an ``int`` so that it can be passed wherever a bare threshold was (comparisons such
    as ``n < threshold`` and texts such as ``f"<{threshold}"`` keep working), while every
    function of this module that formats or suppresses a count reads its rounding: a caller
    that passes the rule cannot forget to round. Build it with :func:`count_rule`.

    >>> rule = CountRule(11, "nearest_5")
    >>> rule + 0, rule.rounding, display_count(573, rule), display_count(12, rule)
    (11, 'nearest_5', '575', '15')
    """

    rounding: str

    def __new__(cls, threshold: int, rounding: str = "none") -> CountRule:
        check_rounding(rounding)
        rule = super().__new__(cls, int(threshold))
        rule.rounding = rounding
        return rule

    def __getnewargs__(self) -> tuple[int, str]:  # pickling (Prefect task results, processes)
        return int(self), self.rounding

    # str/repr stay int's: the rule prints as its threshold (f"<{rule}" reads "<11")


def count_rule(config: Any) -> CountRule:
    """The :class:`CountRule` of a study config (anything with ``.privacy``) or of its
    ``privacy`` section (``small_cell_threshold``, ``rounding``)."""
    privacy = getattr(config, "privacy", config)
    return CountRule(privacy.small_cell_threshold, privacy.rounding)


def rounding_of(threshold: int, rounding: str = "none") -> str:
    """The rounding in force: ``rounding`` when given, else the one a :class:`CountRule`
    threshold carries, else ``"none"``."""
    return rounding if rounding != "none" else getattr(threshold, "rounding", "none")


def is_small(n: int | None, threshold: int) -> bool:
    """True when ``n`` must be hidden: 1 <= n < threshold (``None`` is already hidden)."""
    return n is not None and 1 <= int(n) < threshold


def suppressed_text(threshold: int) -> str:
    """The text shown in place of a count hidden because it is small, e.g. ``"<11"``."""
    return f"<{threshold}"


def check_rounding(rounding: str) -> int:
    """The base of a ``privacy.rounding`` value (1: none); ``ValueError`` for an unknown one."""
    try:
        return ROUNDING_BASES[rounding]
    except KeyError:
        raise ValueError(
            f"privacy.rounding must be one of {', '.join(ROUNDING_BASES)}, got {rounding!r}"
        ) from None


def round_count(n: int, rounding: str = "none", threshold: int = 0) -> int:
    """``n`` rounded to the rule's base, halves up (``nearest_5``: 572 → 570, 573 → 575).

    A shown count is never rounded below ``threshold``: ``"<11"`` tells the reader that a
    hidden count is 1 to 10, so a shown 11 or 12 printed as 10 would contradict it. Such a
    count is rounded up instead, to the smallest multiple of the base at or above the
    threshold (threshold 11: 11 to 14 → 15). 0 stays 0. Rounding is idempotent, so an already
    rounded count (e.g. read back from results.json) is shown unchanged.

    >>> round_count(572, "nearest_5"), round_count(573, "nearest_5"), round_count(7, "none")
    (570, 575, 7)
    >>> [round_count(n, "nearest_5", 11) for n in (11, 12, 13, 15, 17, 18)]
    [15, 15, 15, 15, 15, 20]
    """
    base = check_rounding(rounding)
    if base == 1 or int(n) == 0:
        return int(n)
    nearest = base * ((2 * int(n) + base) // (2 * base))
    return max(nearest, -(-int(threshold) // base) * base)


def rule_words(threshold: int, rounding: str = "none") -> str:
    """One sentence stating the disclosure rule in force (shown in the report and artifacts)."""
    words = (
        f"Counts from 1 to {threshold - 1} are shown as {suppressed_text(threshold)}; a count "
        f"hidden only so that a small one cannot be worked out by subtraction reads "
        f"\u201c{HIDDEN_TEXT}\u201d (it may be of any size)"
    )
    rounding = rounding_of(threshold, rounding)
    if check_rounding(rounding) > 1:
        base = ROUNDING_BASES[rounding]
        words += (
            f"; every other count is rounded to the nearest {base}, and never below "
            f"{threshold} ({threshold} to {-(-threshold // base) * base - 1} read "
            f"{-(-threshold // base) * base}); percentages are computed from the rounded counts"
        )
    return words + "."


def suppress_count(n: int | None, threshold: int, rounding: str = "none") -> int | None:
    """Return ``n`` (rounded by ``rounding``), or ``None`` when 1 <= n < threshold. 0 stays 0.

    >>> suppress_count(5, 11), suppress_count(0, 11), suppress_count(11, 11)
    (None, 0, 11)
    """
    if n is None or pd.isna(n):
        return None
    n = int(n)
    if n < 0:
        raise ValueError(f"a count cannot be negative, got {n}")
    rounding = rounding_of(threshold, rounding)
    return None if is_small(n, threshold) else round_count(n, rounding, threshold)


def display_count(n: float | None, threshold: int, rounding: str = "none") -> str:
    """Count as text for tables and figures: ``"<11"`` when small, else the integer.

    ``None`` (a count already hidden upstream, for a reason this function cannot see) and NaN
    (a count that is unknown) read ``"suppressed"``: never a number, and never ``"<11"``,
    which would claim the count is small. Use :func:`display_record_count` where the record
    says why a count was hidden.

    >>> display_count(3, 11), display_count(0, 11), display_count(1234, 11)
    ('<11', '0', '1,234')
    >>> display_count(None, 11), display_count(float("nan"), 11)
    ('suppressed', 'suppressed')
    """
    if n is None or pd.isna(n):
        return HIDDEN_TEXT
    shown = suppress_count(n, threshold, rounding)
    return suppressed_text(threshold) if shown is None else f"{shown:,}"


def display_effective_size(ess: float | None, threshold: int, rounding: str = "none") -> str:
    """A Kish effective sample size (episodes) as table text, under the count rule like the
    counts it is computed from: ``"<11"`` below the threshold (a weighted arm worth a handful
    of episodes is as disclosive as a small count), else rounded to whole episodes and by the
    rule's rounding; ``"—"`` when there is none.

    >>> display_effective_size(8.6, 11), display_effective_size(142.4, 11)
    ('<11', '142')
    >>> display_effective_size(None, 11), display_effective_size(0.4, 11)
    ('—', '0')
    """
    if ess is None or pd.isna(ess):
        return NOT_APPLICABLE
    return display_count(round(float(ess)), threshold, rounding)


def hidden_reason(record: Mapping[str, Any], key: str) -> str | None:
    """Why ``record[key]`` was hidden (``"small"``, ``"complementary"``), ``None`` if unknown."""
    why = record.get(SUPPRESSED_WHY_KEY)
    return why.get(key) if isinstance(why, Mapping) else None


def display_record_count(
    record: Mapping[str, Any], key: str, threshold: int, rounding: str = "none"
) -> str:
    """The count ``record[key]`` of a results.json record as table text.

    A missing value (``None`` or NaN) where the record says something was suppressed
    (``"suppressed"`` key) reads ``"<11"`` only when the record's ``"suppressed_why"`` says
    that count was small, else ``"suppressed"``; without the ``"suppressed"`` key the count
    does not apply to that row and reads ``"—"``. A present count goes through
    :func:`display_count`.

    >>> display_record_count({"n": None, "suppressed": "<11",
    ...                       "suppressed_why": {"n": "small"}}, "n", 11)
    '<11'
    >>> display_record_count({"n": None, "suppressed": "suppressed",
    ...                       "suppressed_why": {"n": "complementary"}}, "n", 11)
    'suppressed'
    >>> display_record_count({"n": 40, "n_excluded": None}, "n_excluded", 11)
    '—'
    """
    value = record.get(key)
    if value is None or pd.isna(value):
        if SUPPRESSED_KEY not in record:
            return NOT_APPLICABLE
        return suppressed_text(threshold) if hidden_reason(record, key) == SMALL else HIDDEN_TEXT
    return display_count(value, threshold, rounding)


def display_counts(
    counts: Iterable[int | None], threshold: int, rounding: str = "none"
) -> list[str]:
    """``display_count`` over a sequence, e.g. for matplotlib tick or annotation labels."""
    return [display_count(n, threshold, rounding) for n in counts]


def mark_hidden(row: dict[str, Any], why: Mapping[str, str], threshold: int) -> dict[str, Any]:
    """Set ``row``'s hidden counts (keys of ``why``) to ``None`` and add the markers: the
    ``"suppressed"`` value is ``"<threshold>"`` when a small count is among them, else
    ``"suppressed"``; ``"suppressed_why"`` maps each hidden key to its reason."""
    if not why:
        return row
    for key in why:
        row[key] = None
    small = any(reason == SMALL for reason in why.values())
    row[SUPPRESSED_KEY] = suppressed_text(threshold) if small else HIDDEN_TEXT
    row[SUPPRESSED_WHY_KEY] = dict(why)
    return row


def hide_complementary(
    record: Mapping[str, Any], keys: Sequence[str], threshold: int
) -> dict[str, Any]:
    """Copy of ``record`` with its shown counts among ``keys`` hidden as ``"complementary"``
    (counts already hidden keep their recorded reason): for counts that would give a hidden
    one back by subtraction.

    >>> hide_complementary({"n": 22, "n_exposed": 17, "n_unexposed": None,
    ...     "suppressed": "<11", "suppressed_why": {"n_unexposed": "small"}},
    ...     ["n_exposed", "n_unexposed"], 11)["suppressed_why"]
    {'n_unexposed': 'small', 'n_exposed': 'complementary'}
    """
    why = {k: COMPLEMENTARY for k in keys if record.get(k) is not None}
    if not why:
        return dict(record)
    return mark_hidden(dict(record), {**(record.get(SUPPRESSED_WHY_KEY) or {}), **why}, threshold)


def suppress_record(
    record: Mapping[str, Any],
    count_keys: Sequence[str],
    threshold: int,
    rounding: str = "none",
) -> dict[str, Any]:
    """Copy of a JSON-bound record with small counts set to ``None`` (others rounded by
    ``rounding``).

    When any of ``count_keys`` is hidden, ``"suppressed": "<threshold>"`` and
    ``"suppressed_why": {key: "small"}`` are added beside them; the ``None`` values name which
    counts were hidden (counts are otherwise never null).
    """
    out = dict(record)
    why: dict[str, str] = {}
    for key in count_keys:
        if key in out:
            value = out[key]
            shown = suppress_count(value, threshold, rounding)
            if value is not None and not pd.isna(value) and shown is None:
                why[key] = SMALL
            out[key] = shown
    return mark_hidden(out, why, threshold)


ESTIMATE_VALUE_KEYS = ("estimate", "se", "ci_low", "ci_high", "p_value")
"""Keys of a results.json estimate entry that summarise the outcome of its episodes."""


def suppress_estimate(
    entry: Mapping[str, Any],
    count_keys: Sequence[str],
    group_keys: Sequence[str],
    threshold: int,
    rounding: str = "none",
) -> dict[str, Any]:
    """Copy of an estimate entry with small counts hidden (as ``suppress_record``) and, when any
    group size in ``group_keys`` is hidden, its statistics set to ``None`` too: a mean over
    fewer than ``threshold`` episodes is itself disclosive. Adds a ``withheld`` reason then
    (an entry that already has one keeps it). The groups of ``group_keys`` other than the
    total ``n`` add up to it: when one group is hidden the others are hidden too
    (``"complementary"``), so that the total minus them cannot give it back. Statistics are
    withheld only when a group is hidden as small (or for a reason not recorded): a group
    hidden as complementary may be of any size.
    An entry with a ``reason`` (no estimate could be made) has no statistics to withhold.
    """
    out = suppress_record(entry, count_keys, threshold, rounding)
    hidden_groups = [k for k in group_keys if k in out and out[k] is None]
    if hidden_groups:
        # the arms add up to ``n``: one arm hidden, the other arm gives it back by subtraction
        out = hide_complementary(out, [k for k in group_keys if k != "n"], threshold)
    why_hidden = out.get(SUPPRESSED_WHY_KEY) or {}
    # statistics over a group hidden only so that another cannot be worked out (a large
    # group) are not disclosive; a group hidden as small, or for an unknown reason, is
    small_group = any(why_hidden.get(k, SMALL) != COMPLEMENTARY for k in hidden_groups)
    if not entry.get("reason") and small_group:
        for key in ESTIMATE_VALUE_KEYS:
            if key in out:
                out[key] = None
        if out.get("delta_method"):
            out["delta_method"] = dict.fromkeys(out["delta_method"])
        # an entry withheld by design keeps its own reason (it had no statistics anyway)
        out["withheld"] = (
            entry.get("withheld") or f"an exposure group has fewer than {threshold} episodes"
        )
    return out


def suppress_frame(df: pd.DataFrame, count_columns: Sequence[str], threshold: int) -> pd.DataFrame:
    """Copy of ``df`` with small counts in ``count_columns`` set to missing (nullable Int64),
    the others rounded when ``threshold`` is a :class:`CountRule` that rounds.

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
        out[col] = pd.array(
            [None if pd.isna(v) else suppress_count(v, threshold) for v in values.mask(small)],
            dtype="Int64",
        )
    out[SUPPRESSED_KEY] = pd.Series(
        [suppressed_text(threshold) if h else None for h in any_hidden],
        index=out.index,
        dtype="object",
    )
    return out


def display_frame(df: pd.DataFrame, count_columns: Sequence[str], threshold: int) -> pd.DataFrame:
    """Copy of ``df`` with ``count_columns`` turned into display text (``"<11"``, ``"1,234"``),
    rounded when ``threshold`` is a :class:`CountRule` that rounds."""
    out = df.copy()
    for col in count_columns:
        out[col] = [display_count(v, threshold) for v in out[col]]
    return out


def recoverable_cells(
    equations: Sequence[Mapping[tuple[int, str], float]], hidden: Iterable[tuple[int, str]]
) -> set[tuple[int, str]]:
    """The hidden cells a reader can work out exactly from linear identities of the table.

    Each equation maps cells to coefficients (sum of coefficient × cell = 0); shown cells are
    known. A hidden cell is recoverable when its unit vector lies in the row space of the
    equations restricted to the hidden cells (some combination of identities leaves it alone).
    """
    import numpy as np

    hidden = sorted(set(hidden))
    if not hidden or not equations:
        return set()
    column = {cell: j for j, cell in enumerate(hidden)}
    a = np.zeros((len(equations), len(hidden)))
    for r, eq in enumerate(equations):
        for cell, coef in eq.items():
            if cell in column:
                a[r, column[cell]] = coef
    rank = np.linalg.matrix_rank(a)
    out = set()
    for cell, j in column.items():
        unit = np.zeros((1, len(hidden)))
        unit[0, j] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, unit])) == rank:
            out.add(cell)
    return out


def attrition_identities(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[int], list[int], list[dict[tuple[int, str], float]]]:
    """The eligibility chain's row indices, the breakdown rows after it, and the table's
    linear identities (cell → coefficient, summing to 0): ``n[prev] − n[cur] − n_excluded[cur]``
    for each chain step, and ``Σ parts − n[last chain step]`` for the breakdown."""
    chain = [i for i, r in enumerate(rows) if i == 0 or r.get("n_excluded") is not None]
    parts = [i for i in range(len(rows)) if i not in chain and rows[i].get("n") is not None]
    equations: list[dict[tuple[int, str], float]] = [
        {(prev, "n"): 1.0, (cur, "n"): -1.0, (cur, "n_excluded"): -1.0}
        for prev, cur in itertools.pairwise(chain)
    ]
    if parts and chain:
        equations.append({**{(i, "n"): 1.0 for i in parts}, (chain[-1], "n"): -1.0})
    return chain, parts, equations


def suppress_attrition(
    records: Sequence[Mapping[str, Any]], threshold: int, rounding: str = "none"
) -> list[dict[str, Any]]:
    """Attrition records (``step``, ``n``, ``n_excluded``, …, in step order) with small counts
    hidden AND the complementary cells that would let a reader recover them by subtraction.

    The table obeys linear identities: each step's ``n`` equals the previous ``n`` minus its
    ``n_excluded`` (rows with a raw ``n_excluded``: the eligibility chain), the first ``n``
    minus the last chain ``n`` equals the sum of exclusions, and the breakdown rows after the
    chain (raw ``n_excluded`` null, e.g. exposed / unexposed) add up to the last chain ``n``.
    Primary suppression hides 1 <= count < threshold; then, while any identity has exactly one
    hidden cell, a second cell of it is hidden too (secondary suppression): an exclusion count
    before a remaining count, a headline step's ``n`` (the source, the eligible episodes
    before the last step, the analysed episodes) only when the identity has no other cell, and
    never the final analysed ``n`` (it is published with the estimates) unless it is the
    last cell left; in the breakdown, the smallest part. Last, while any hidden cell can still be
    worked out from a combination of identities (:func:`recoverable_cells`), another cell of
    an identity holding it is hidden. A reader then learns only sums of hidden cells, never
    one of them. Hidden cells are ``None``; ``"suppressed_why"`` says ``"small"`` (shown as
    ``<threshold``) or ``"complementary"`` (shown as ``suppressed``: it may be large). Shown
    counts are rounded by ``rounding``.
    """
    rows = [dict(r) for r in records]
    chain, parts, equations = attrition_identities(rows)
    small: set[tuple[int, str]] = {
        (i, key)
        for i, r in enumerate(rows)
        for key in ("n", "n_excluded")
        if r.get(key) is not None and is_small(r[key], threshold)
    }
    hidden = set(small)
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

    # The headline steps a reader looks for first (source → eligible → analysed): a cell of
    # them is hidden only when an identity offers no other (an exclusion count, or a
    # remaining count between them, is hidden instead).
    headline = {(chain[0], "n"), last_n} | ({(chain[-2], "n")} if len(chain) > 2 else set())

    def hide_another(cells: Sequence[tuple[int, str]]) -> bool:
        candidates = (
            [c for c in cells if c not in hidden and c not in headline]
            or [c for c in cells if c not in hidden and c != last_n]
            or [c for c in cells if c not in hidden]
        )
        if candidates:
            hidden.add(candidates[0])
        return bool(candidates)

    changed = True
    while changed:
        changed = False
        for cells in identities:
            if sum(cell in hidden for cell in cells) == 1:
                changed = hide_another(cells) or changed
        if not changed:
            for cell in sorted(recoverable_cells(equations, hidden)):
                holding = [c for c in identities if cell in c and any(x not in hidden for x in c)]
                if holding and hide_another(holding[0]):
                    changed = True
                    break
    out = []
    for i, row in enumerate(rows):
        why = {
            key: SMALL if (i, key) in small else COMPLEMENTARY
            for key in ("n", "n_excluded")
            if (i, key) in hidden
        }
        for key in ("n", "n_excluded"):
            if key not in why and row.get(key) is not None:
                row[key] = round_count(int(row[key]), rounding_of(threshold, rounding), threshold)
        out.append(mark_hidden(row, why, threshold))
    return out

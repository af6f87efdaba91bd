"""Numbers, p-values, intervals and figures as report text: one formatter for each.

Estimates and interval bounds are in the unit of their results.json entry (mmol/L for the
primary contrasts); ``"—"`` stands for a number that is missing. Counts are not formatted
here: they go through the disclosure-control rule (``mgca.analysis.privacy.display_count``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

MISSING = "—"
"""Shown where a number is missing (not estimated, or withheld)."""

_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def format_number(x: Any, digits: int = 2, signed: bool = False) -> str:
    """``x`` with ``digits`` decimals (a ``+`` for positives when ``signed``), or ``"—"``.

    At two decimals a value that rounds to zero reads ``"0.00"``, never ``"-0.00"`` or
    ``"+0.00"``: the sign of a difference too small to show is not news.

    >>> format_number(0.123, signed=True), format_number(-0.001, signed=True)
    ('+0.12', '0.00')
    >>> format_number(None), format_number(1.23456, 3)
    ('—', '1.235')
    """
    if x is None:
        return MISSING
    s = f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"
    return "0.00" if digits == 2 and s in ("+0.00", "-0.00") else s


def format_p_value(p: float | None) -> str:
    """Two-sided p-value with three decimals, ``"<0.001"`` below that, ``"—"`` when missing."""
    if p is None:
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_ci(entry: Mapping[str, Any], digits: int = 2, signed: bool = True) -> str:
    """``"<ci_low> to <ci_high>"`` of a results.json entry, or ``"—"`` without both bounds."""
    if entry.get("ci_low") is None or entry.get("ci_high") is None:
        return MISSING
    low = format_number(entry["ci_low"], digits, signed)
    return f"{low} to {format_number(entry['ci_high'], digits, signed)}"


def inline_svg(svg: str | None) -> Markup | None:
    """Our own matplotlib SVG, trusted, for inlining in HTML: from ``<svg`` on, without the
    namespace declarations (HTML needs none, and the report holds no external URL)."""
    if not svg:
        return None
    return Markup(_XMLNS.sub("", svg[svg.index("<svg") :]))

"""A CONSORT-style flow diagram of the attrition table, as geometry for an inline SVG.

``consort_diagram(attrition, threshold)`` turns the results.json ``attrition`` records (step,
n, n_excluded, exclusion_reason; small counts already ``None`` with ``"suppressed"``) into
boxes and arrows in SVG user units (px); the report template ``_consort.html.j2`` draws them
(jinja autoescapes the text). Main boxes run down the left for every eligibility step, a side
box to the right of each arrow says how many left at that step and why, and the final
exposure split (rows with neither ``n_excluded`` nor a reason) is drawn as two boxes side by
side at the bottom. Counts below the threshold show as ``<threshold``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mgca.analysis.privacy import SUPPRESSED_KEY, display_record_count

WIDTH = 680
MAIN_X, MAIN_W = 10, 330
SIDE_X, SIDE_W = 380, 290
LINE_H = 15
PAD = 8
GAP = 26  # vertical space between main boxes when there is no exclusion box


@dataclass(frozen=True)
class Box:
    """One box: top-left corner, size and its text lines (first line bold when ``kind`` is
    ``"main"``)."""

    x: float
    y: float
    w: float
    h: float
    lines: tuple[str, ...]
    kind: str  # "main", "excluded" or "split"


@dataclass(frozen=True)
class Arrow:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Diagram:
    """Boxes and arrows of the flow diagram and the SVG canvas height (px)."""

    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    height: float = 0.0


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(str(text), width) or [""]


def _sentence(text: Any) -> str:
    """First letter upper case, the rest as written (``Mg``, ``hypoCa`` stay)."""
    text = str(text or "")
    return text[:1].upper() + text[1:]


def _box(x: float, y: float, w: float, lines: list[str], kind: str) -> Box:
    return Box(x, y, w, PAD * 2 + LINE_H * len(lines), tuple(lines), kind)


def _is_split(record: Mapping[str, Any], position: int) -> bool:
    """The exposure split rows: after the first, with no exclusion count and no reason (an
    eligibility step whose exclusion count is hidden still names its reason)."""
    return position > 0 and record.get("n_excluded") is None and not record.get("exclusion_reason")


def consort_diagram(attrition: Sequence[Mapping[str, Any]], threshold: int) -> Diagram | None:
    """Layout of the flow diagram; ``None`` when there is no attrition table."""
    if not attrition:
        return None
    steps = [r for i, r in enumerate(attrition) if not _is_split(r, i)]
    splits = [r for i, r in enumerate(attrition) if _is_split(r, i)]
    diagram = Diagram()
    y = 10.0
    previous: Box | None = None
    for record in steps:
        excluded = record.get("n_excluded")
        has_exclusion = previous is not None and (
            (excluded is None and SUPPRESSED_KEY in record) or (excluded or 0) > 0
        )
        if previous is not None and has_exclusion:
            reason = record.get("exclusion_reason") or "excluded"
            side_lines = [
                f"Excluded (n = {display_record_count(record, 'n_excluded', threshold)}):"
            ]
            side_lines += _wrap(reason, 44)
            side = _box(SIDE_X, y, SIDE_W, side_lines, "excluded")
            diagram.boxes.append(side)
            mid = side.y + side.h / 2
            diagram.arrows.append(Arrow(MAIN_X + MAIN_W / 2, mid, SIDE_X, mid))
            y = side.y + side.h + 12
        elif previous is not None:
            y += GAP
        lines = _wrap(_sentence(record.get("step", "")), 50)
        lines.append(f"n = {display_record_count(record, 'n', threshold)}")
        box = _box(MAIN_X, y, MAIN_W, lines, "main")
        if previous is not None:
            x = MAIN_X + MAIN_W / 2
            diagram.arrows.append(Arrow(x, previous.y + previous.h, x, box.y))
        diagram.boxes.append(box)
        previous = box
        y = box.y + box.h + 12
    if splits and previous is not None:
        y += GAP
        width = (WIDTH - 30) / 2
        tallest = 0.0
        for k, record in enumerate(splits[:2]):
            lines = _wrap(_sentence(record.get("step", "")), 42)
            lines.append(f"n = {display_record_count(record, 'n', threshold)}")
            box = _box(10 + k * (width + 10), y, width, lines, "split")
            diagram.boxes.append(box)
            diagram.arrows.append(
                Arrow(MAIN_X + MAIN_W / 2, previous.y + previous.h, box.x + box.w / 2, box.y)
            )
            tallest = max(tallest, box.h)
        y += tallest + 12
    diagram.height = y
    return diagram

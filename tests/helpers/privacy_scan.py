"""Scan a run's shareable outputs for what must never leave the private folder.

Used by ``tests/ops/test_privacy_guard.py`` on identifiable-looking fixture data, and usable on any
run folder before sharing it: every finding names the file and what was found (an id, an
absolute date, or a count from 1 to threshold − 1 shown as a number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{2})[-/.](\d{2})(?!\d)")
_COUNT_KEY = re.compile(r"^n($|_)")
_HTML_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.S)
_HTML_CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
_TAG = re.compile(r"<[^>]+>")
_LEADING_COUNT = re.compile(r"^\s*(\d[\d,]*)(?:\s*\(|\s*$)")


def dates_in(text: str) -> set[str]:
    """Every ``YYYY-MM-DD`` (or ``/``, ``.`` separated) date written in ``text``, normalised."""
    return {f"{y}-{m}-{d}" for y, m, d in _DATE.findall(text)}


def identifier_findings(
    name: str, text: str, id_pattern: re.Pattern[str], patient_dates: set[str]
) -> list[str]:
    """Ids matching ``id_pattern`` and any of ``patient_dates`` found in ``text``."""
    found = [f"{name}: identifier {m!r}" for m in sorted(set(id_pattern.findall(text)))[:5]]
    leaked = sorted(dates_in(text) & patient_dates)
    found += [f"{name}: patient date {d}" for d in leaked[:5]]
    return found


def _small(value: Any, threshold: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < threshold


def small_counts_in_results(results: Mapping[str, Any], threshold: int) -> list[str]:
    """Counts 1..threshold−1 written as numbers in results.json (keys ``n``/``n_*``, and
    Table 1 cells of count rows such as ``Female, n (%)``). The config echo is skipped."""
    findings: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "config" and where == "":
                    continue
                if _COUNT_KEY.match(str(key)) and _small(value, threshold):
                    findings.append(f"results.json{where}.{key} = {value}")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(results, "")
    for i, row in enumerate(results.get("table_one") or []):
        label = str(row.get("characteristic", ""))
        if ", n" not in label:
            continue
        for key, value in row.items():
            if key in ("characteristic", "smd") or not isinstance(value, str):
                continue
            match = _LEADING_COUNT.match(value)
            if match and _small(int(match.group(1).replace(",", "")), threshold):
                findings.append(f"results.json.table_one[{i}] {label!r} {key} = {value!r}")
    return findings


def small_counts_in_html(html: str, threshold: int) -> list[str]:
    """Count cells 1..threshold−1 in the report's tables: numeric cells (``class="num"``) and
    the cells of rows labelled as counts (``…, n`` / ``n (%)``)."""
    findings = []
    for row in _HTML_ROW.findall(html):
        cells = _HTML_CELL.findall(row)
        texts = [_TAG.sub("", c).strip() for c in cells]
        count_row = bool(texts) and ", n" in texts[0]
        for text in texts:
            numeric = 'class="num"' in row and re.fullmatch(r"[\d,]+", text or "x")
            if not (numeric or count_row):
                continue
            match = _LEADING_COUNT.match(text)
            if match and _small(int(match.group(1).replace(",", "")), threshold):
                findings.append(f"report.html: count {text!r} in row {texts[0]!r}")
    return findings


def scan_files(
    files: Iterable[Path], id_pattern: re.Pattern[str], patient_dates: set[str]
) -> list[str]:
    """Identifier and date findings over files read as bytes (any format, incl. SQLite)."""
    findings = []
    for path in files:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
        findings += identifier_findings(str(path), text, id_pattern, patient_dates)
    return findings


def load_results(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))

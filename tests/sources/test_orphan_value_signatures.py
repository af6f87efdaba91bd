"""Orphan codes without a name (MEDS ``LAB//<itemid>//<unit>``, ``LOINC/<code>``): found by unit
and value range (sql/reference/sources/orphan_value_signatures.csv), and codes the study leaves
out on purpose (lab_codes_left_out.csv) said to be known, not unmapped. Real MEDS shards through
the MEDS adapter and DuckDB; no mocks."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import duckdb
from helpers.source_fixtures import MEDS_SHAPES_ROWS, write_meds

from mgca.analysis.report.quality_section import orphan_status
from mgca.config import load_config
from mgca.sources.adapters import ORPHAN_CODES_FILE, meds

# serum Mg in mg/dL from 1.2 to 2.6: what a magnesium itemid the list does not know looks like
MG_VALUES = [1.2, 1.4, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.3, 2.6]


def _orphans(rows: list[tuple], tmp_path: Path) -> dict[tuple[str, str], dict]:
    src = write_meds(tmp_path / "meds", rows)
    meds.check(src)
    target = tmp_path / "canonical"
    target.mkdir()
    meds.to_canonical(src, target, load_config(), lambda _m: None)
    rel = duckdb.sql(f"SELECT * FROM '{target / ORPHAN_CODES_FILE}'")
    names = [d[0] for d in rel.description]
    records = [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
    return {(r["code"], r["looks_like"]): r for r in records}


def _lab_rows(code: str, values: list[float]) -> list[tuple]:
    return [
        (1, f"2150-03-0{2 + i // 5} {8 + i % 5:02d}:00:00", code, v, 20001)
        for i, v in enumerate(values)
    ]


def test_an_unlisted_nameless_code_with_magnesium_values_is_a_possible_magnesium(
    tmp_path: Path,
) -> None:
    rows = [*MEDS_SHAPES_ROWS, *_lab_rows("LAB//99901//mg/dL", MG_VALUES)]
    orphans = _orphans(rows, tmp_path)
    assert set(orphans) == {("LAB//99901", "magnesium")}  # not phosphate, not total calcium
    row = orphans[("LAB//99901", "magnesium")]
    assert (row["matched_by"], row["n_rows"], row["unit"]) == ("unit_value", 10, "mg/dL")
    assert row["left_out_why"] is None
    # stay 20001 has a mapped Mg (LOINC/2601-3), so listing the itemid adds no stay
    assert (row["n_stays"], row["n_stays_added"]) == (1, 0)
    assert orphan_status(row).startswith("unmapped (possible: matched by unit and value range")


def test_a_listed_code_with_the_same_values_never_shows(tmp_path: Path) -> None:
    # 50960 is MIMIC-IV's serum magnesium (mimic_lab_items.csv)
    rows = [*MEDS_SHAPES_ROWS, *_lab_rows("LAB//50960//mg/dL", MG_VALUES)]
    assert _orphans(rows, tmp_path) == {}


def test_values_outside_every_signature_are_not_guessed(tmp_path: Path) -> None:
    # a nameless mg/dL code from 20 to 140 (glucose-like) fits no study analyte
    rows = [*MEDS_SHAPES_ROWS, *_lab_rows("LAB//99902//mg/dL", [20.0 + 12 * i for i in range(10)])]
    assert _orphans(rows, tmp_path) == {}


def test_a_code_left_out_on_purpose_says_so(tmp_path: Path) -> None:
    # pH-adjusted ionized calcium: known, deliberately not analysed
    rows = [*MEDS_SHAPES_ROWS, *_lab_rows("LOINC/19072-8", [1.1, 1.15, 1.2, 1.25])]
    orphans = _orphans(rows, tmp_path)
    assert set(orphans) == {("LOINC/19072-8", "calcium_ionized")}
    row = orphans[("LOINC/19072-8", "calcium_ionized")]
    assert row["matched_by"] == "left_out_list" and "pH-adjusted" in row["left_out_why"]
    assert orphan_status(row).startswith("known, left out on purpose:")


def _reference(name: str) -> list[dict[str, str]]:
    ref = resources.files("mgca.sql").joinpath("reference", "sources", name)
    with resources.as_file(ref) as path, open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_left_out_codes_are_not_in_the_code_list_and_say_why() -> None:
    listed = {r["code"] for r in _reference("lab_codes.csv")}
    for row in _reference("lab_codes_left_out.csv"):
        assert row["code"] not in listed and row["why"] and row["verification_source"], row
    for row in _reference("orphan_value_signatures.csv"):
        assert float(row["value_low"]) < float(row["value_high"]) and row["note"], row

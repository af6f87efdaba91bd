"""One code list per vocabulary, as data: every adapter reads the same LOINC list, and every
row says how it was verified."""

from __future__ import annotations

import csv
import re
from importlib import resources

import pytest

from mgca.sources.adapters import ADAPTERS, adapter_module

SOURCES = resources.files("mgca.sql").joinpath("reference", "sources")


def _rows(name: str) -> list[dict[str, str]]:
    with resources.as_file(SOURCES.joinpath(name)) as path, open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_there_is_one_loinc_list_and_every_adapter_that_reads_loinc_reads_it() -> None:
    lists = [e.name for e in SOURCES.iterdir() if "loinc" in e.name.lower()]
    assert lists == [], f"a second LOINC list appeared: {lists}"
    for kind in ("omop", "fhir", "meds", "csv"):
        assert "lab_codes" in adapter_module(kind).REFERENCE_STEMS, kind
    for kind in ADAPTERS:
        for sql in resources.files("mgca.sql").joinpath("sources", kind).iterdir():
            assert "loinc_analytes" not in sql.read_text("utf-8"), (kind, sql.name)


def test_every_lab_code_is_unique_has_a_unit_and_says_how_it_was_verified() -> None:
    rows = _rows("lab_codes.csv")
    keys = [(r["vocabulary"], r["code"]) for r in rows]
    assert len(keys) == len(set(keys))
    analytes = {r["analyte"] for r in _rows_bounds()}
    for row in rows:
        assert row["analyte"] in analytes, row
        assert row["unit"], row
        assert row["status"] in {"checked", "unverified"}, row
        assert row["verification_source"], row
        if row["vocabulary"] == "LOINC":
            assert re.fullmatch(r"\d{1,6}-\d", row["code"]), row


def _rows_bounds() -> list[dict[str, str]]:
    ref = resources.files("mgca.sql").joinpath("reference", "analyte_bounds.csv")
    with resources.as_file(ref) as path, open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("analyte", "codes"),
    [
        # every code in common use per analyte, with method and unit variants
        ("albumin", {"1751-7", "61151-7", "61152-5"}),  # unspecified, BCG, BCP
        ("calcium_total", {"17861-6", "2000-8"}),  # mass, substance
        ("calcium_ionized", {"1994-3", "1995-0"}),  # blood, serum/plasma
        ("magnesium", {"19123-9", "2601-3"}),  # mass, substance
        ("pth", {"2731-8"}),
    ],
)
def test_the_list_holds_the_codes_in_common_use(analyte: str, codes: set[str]) -> None:
    listed = {r["code"] for r in _rows("lab_codes.csv") if r["analyte"] == analyte}
    assert codes <= listed


@pytest.mark.parametrize(
    ("name", "key", "target"),
    [
        ("mimic_lab_items.csv", "itemid", "analyte"),
        ("mimic_input_items.csv", "itemid", "ingredient"),
    ],
)
def test_mimic_itemids_are_kept_in_the_same_data_style(name: str, key: str, target: str) -> None:
    rows = _rows(name)
    assert len({r[key] for r in rows}) == len(rows)
    for row in rows:
        assert row["status"] in {"checked", "unverified"}, row
        assert row["verification_source"], row
        assert row[target] or row["exclude_reason"], row  # mapped, or excluded with a reason
    if name == "mimic_lab_items.csv":
        assert all(r["unit"] for r in rows)

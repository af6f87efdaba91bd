"""Orphan codes from the adapter to results.json and the report's data-quality section:
loaded as table source_orphan_codes, suppressed like every count, shown in the partial."""

from __future__ import annotations

from pathlib import Path

import duckdb
from helpers.source_fixtures import write_omop_shapes

from mgca.analysis.report.quality_section import data_quality_view, orphan_code_records
from mgca.analysis.report.render import _environment
from mgca.config import load_config
from mgca.engine import registry
from mgca.engine.database import load_source_rows
from mgca.sources.adapters import omop


def _orphan_table(tmp_path: Path):
    target = tmp_path / "canonical"
    target.mkdir()
    omop.to_canonical(write_omop_shapes(tmp_path / "cdm.duckdb"), target, load_config(),
                      lambda _m: None)
    con = duckdb.connect()
    load_source_rows(con, target, {})
    return con.execute(registry.table("source_orphan_codes").select()).df()


def test_orphan_codes_reach_results_suppressed_and_the_report(tmp_path: Path) -> None:
    frame = _orphan_table(tmp_path)
    # stable order: domain, look-alike, rows (most first), code; magnesium citrate is listed
    assert list(frame["code"]) == ["LOINC:2862-1 (OMOP 990001)"]
    assert list(frame["matched_by"]) == ["name"] and frame["left_out_why"].isna().all()
    shown = orphan_code_records(frame, threshold=1)
    assert shown[0]["n_rows"] == 2 and shown[0]["value_p50"] == 3.25
    hidden = orphan_code_records(frame, threshold=11)
    assert hidden[0]["n_rows"] is None and hidden[0]["suppressed"] == "<11"
    assert hidden[0]["value_p50"] is None and hidden[0]["n_stays_added"] == 0
    view = data_quality_view({"orphan_codes": hidden}, None, 11)
    assert view["orphan_codes"][0]["n"] == "<11" and view["orphan_codes"][0]["values"] == (
        "— / — / —"
    )
    assert view["orphan_codes"][0]["status"] == "unmapped (matched by name)"
    html = _environment().get_template("_data_quality.html.j2").render(quality=view)
    assert "in no code list" in html and "LOINC:2862-1 (OMOP 990001)" in html
    assert "unmapped (matched by name)" in html
    assert "3.25" not in html


def test_a_source_without_orphan_diagnostics_loads_an_empty_table(tmp_path: Path) -> None:
    con = duckdb.connect()
    load_source_rows(con, tmp_path, {"lab_results": 3})
    frame = con.execute(registry.table("source_orphan_codes").select()).df()
    assert frame.empty and "n_stays_added" in frame.columns
    assert orphan_code_records(frame, 11) == []
    html = _environment().get_template("_data_quality.html.j2").render(
        quality=data_quality_view({}, None, 11)
    )
    assert "in no code list" not in html

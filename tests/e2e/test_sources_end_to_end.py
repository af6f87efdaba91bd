"""`mgca run --source mimic|meds|csv` end to end as a user types them (real CLI, real Prefect
temporary server, real DuckDB), and a streaming check on a multi-million-row labevents.csv.gz."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from helpers.mimic_fixture import HEADERS, write_mimic
from helpers.source_fixtures import long_format_config as csv_config
from helpers.source_fixtures import write_extract, write_meds

pytestmark = pytest.mark.slow


def _mgca_run(source: str, path: Path, out: Path, config: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "mgca.cli", "run", "--source", source, "--path", str(path),
         "--out", str(out), "--config", str(config)],
        capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def _config(tmp_path: Path, extra: dict | None = None) -> Path:
    """Threshold 1 so the tiny fixtures' counts are visible in results.json."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"privacy": {"small_cell_threshold": 1}, **(extra or {})}))
    return path


def _source_rows(results: dict) -> pd.DataFrame:
    return pd.DataFrame(results["source_rows"])


def test_mimic_end_to_end(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic")
    results = _mgca_run("mimic", src, tmp_path / "run", _config(tmp_path))
    assert results["provenance"]["source"] == "mimic"
    rows = _source_rows(results)
    assert rows.groupby("source_table")["n_rows"].sum()["hosp/labevents"] == 29
    cohort = pd.read_parquet(tmp_path / "run" / "cohort.parquet")
    exposed = dict(zip(cohort["encounter_id"], cohort["exposed"], strict=True))
    # eMAR Administered -> exposed; ICU MgSO4 -> exposed; 20002 (MgSO4 Not Given / Held, then
    # obstetric MgSO4 4 h after index) is excluded at the obstetric step, never unexposed
    assert exposed == {"20001": True, "20003": True}
    steps = {a["step"]: a["n"] for a in results["attrition"]}
    assert steps["encounters in source"] == 3
    excluded = {a["step"]: a["n_excluded"] for a in results["attrition"]}
    assert excluded["no obstetric MgSO4 by the end of the grace period"] == 1


def test_meds_end_to_end(tmp_path: Path) -> None:
    src = write_meds(tmp_path / "meds")
    results = _mgca_run("meds", src, tmp_path / "run", _config(tmp_path))
    assert _source_rows(results)["n_rows"].sum() == 14
    cohort = pd.read_parquet(tmp_path / "run" / "cohort.parquet")
    assert len(cohort) <= 1  # one stay; no creatinine in the fixture, so attrition may drop it
    steps = {a["step"]: a["n"] for a in results["attrition"]}
    assert steps["encounters in source"] == 1


def test_long_format_end_to_end(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "extract")
    lf = csv_config().long_format.model_dump(mode="json")
    results = _mgca_run("csv", src, tmp_path / "run", _config(tmp_path, {"long_format": lf}))
    totals = _source_rows(results).groupby("source_table")["n_rows"].sum().to_dict()
    assert totals == {"labs": 6, "medications": 4, "encounters": 2}
    assert results["config"]["long_format"]["labs"]["value"] == "result"


def test_bad_mimic_input_exits_2_naming_file_and_column(tmp_path: Path) -> None:
    src = write_mimic(tmp_path / "mimic")
    header = HEADERS["hosp/admissions"].replace("dischtime", "disch_time")
    (src / "hosp" / "admissions.csv.gz").write_bytes(gzip.compress(f"{header}\n".encode()))
    result = subprocess.run(
        [sys.executable, "-m", "mgca.cli", "run", "--source", "mimic", "--path", str(src),
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "admissions.csv.gz" in result.stderr and "'dischtime'" in result.stderr
    assert "Traceback" not in result.stderr


STREAM_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, tempfile, tracemalloc
    from pathlib import Path
    from mgca.sources.adapters import mimic
    from mgca.config import MgcaConfig
    cfg = MgcaConfig.model_validate({"engine": {"duckdb_memory_limit": "200MB"}})
    target = Path(tempfile.mkdtemp())
    tracemalloc.start()
    mimic.to_canonical(Path(sys.argv[1]), target, cfg, lambda m: None)
    python_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"python_peak_mb": python_peak_mb, "peak_mb": peak_mb,
                      "target": str(target)}))
    """
)


def test_labevents_streams_without_holding_the_file(tmp_path: Path, record_property) -> None:
    """4 million labevents rows (~365 MB as CSV text; ~650 MB even as a compact pandas 3
    frame) map without being held in Python memory: DuckDB streams the gzip file. The bound is
    on Python's own allocations (tracemalloc), which is what the issue asks; process RSS is
    printed beside it but not asserted, because DuckDB's native RSS under a 200 MB memory limit
    varied from 0.24 to 4.4 GB between quiet and busy 2-core runs (an open question)."""
    src = write_mimic(tmp_path / "mimic", skip=("hosp/labevents",))
    n = 4_000_000
    labs = src / "hosp" / "labevents.csv.gz"
    duckdb.sql(
        f"""COPY (SELECT i AS labevent_id, 10001 + i % 3 AS subject_id, 20001 + i % 3 AS hadm_id,
            i AS specimen_id, [50960, 50893, 50862, 51221, 50971][(i % 5) + 1] AS itemid,
            NULL AS order_provider_id,
            TIMESTAMP '2150-03-01 09:00:00' + to_minutes(i % 10000) AS charttime,
            NULL AS storetime, CASE WHEN i % 97 = 0 THEN '___' ELSE '1.5' END AS value,
            CASE WHEN i % 97 = 0 THEN NULL ELSE 1.5 END AS valuenum, 'mg/dL' AS valueuom,
            1.6 AS ref_range_lower, 2.6 AS ref_range_upper, 'abnormal' AS flag,
            'ROUTINE' AS priority,
            CASE WHEN i % 97 = 0 THEN 'HEMOLYZED SPECIMEN' END AS comments
        FROM range({n}) t(i)) TO '{labs}' (FORMAT csv, HEADER, COMPRESSION gzip)"""
    )
    with gzip.open(labs, "rb") as handle:
        text_bytes = sum(len(block) for block in iter(lambda: handle.read(1 << 24), b""))
    result = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, str(src)], capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    text_mb = text_bytes / 2**20
    # what the obvious pandas.read_csv would hold: a 100,000-row sample, scaled up
    sample = pd.read_csv(labs, nrows=100_000)
    pandas_mb = sample.memory_usage(deep=True).sum() / 2**20 * n / len(sample)
    record_property(
        "streaming_table", f"labevents {n:,} rows, {text_mb:.0f} MB as text, "
        f"~{pandas_mb:.0f} MB as a pandas frame; adapter peak Python allocations "
        f"{measured['python_peak_mb']:.1f} MB, process peak RSS {measured['peak_mb']:.0f} MB",
    )
    assert measured["python_peak_mb"] < 64 < pandas_mb / 4, (measured, pandas_mb)
    counts = duckdb.sql(
        f"SELECT status, reason, sum(n_rows) FROM '{measured['target']}/source_rows.parquet' "
        "WHERE source_table = 'hosp/labevents' GROUP BY ALL"
    ).fetchall()
    assert sum(c[2] for c in counts) == n

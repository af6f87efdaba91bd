"""Privacy guard: a real run on identifiable-looking data shares no id, date or small count.

The fixture is a synthetic hospital rewritten to look real: subject ids ``MRN-…``, encounter
ids ``ENC-…`` and dates in 2019–2021 (not MIMIC's shifted 2150s). After a real `mgca run`
(subprocess, its own Prefect home), every shareable output is scanned: report.html,
results.json, config.yaml, the console log, and Prefect's own database (flow parameters,
task inputs, logs, artifacts: everything the Prefect server stored). Any subject id,
encounter id or patient date fails the test, and so does any count from 1 to 10 written as
a number. cohort.parquet and private/ hold ids by design; the report must say they are private.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import duckdb
import pytest
from helpers.privacy_scan import (
    load_results,
    scan_files,
    small_counts_in_html,
    small_counts_in_results,
)
from helpers.run_helpers import mgca

from mgca.analysis.privacy import suppress_attrition
from mgca.synthetic import generate

IDS = re.compile(r"(?:MRN|ENC)-\d+")
THRESHOLD = 11


def identifiable_fixture(folder: Path) -> set[str]:
    """Canonical folder with real-looking ids and dates; returns every patient date in it."""
    raw = folder.parent / "raw"
    generate(raw, n_stays=1200, world="effect", seed=3)
    folder.mkdir()
    shift = "INTERVAL 131 YEAR"  # 2150 → 2019
    selects = {
        "persons": "SELECT * REPLACE ('MRN-' || subject_id AS subject_id)",
        "encounters": f"SELECT * REPLACE ('MRN-' || subject_id AS subject_id, "
        f"'ENC-' || encounter_id AS encounter_id, admit_time - {shift} AS admit_time, "
        f"discharge_time - {shift} AS discharge_time)",
        "lab_results": f"SELECT * REPLACE ('MRN-' || subject_id AS subject_id, "
        f"'ENC-' || encounter_id AS encounter_id, time - {shift} AS time)",
        "medication_administrations": f"SELECT * REPLACE ('MRN-' || subject_id AS subject_id, "
        f"'ENC-' || encounter_id AS encounter_id, time - {shift} AS time)",
    }
    dates: set[str] = set()
    with duckdb.connect() as con:
        for table, select in selects.items():
            src, dst = raw / f"{table}.parquet", folder / f"{table}.parquet"
            con.execute(f"COPY ({select} FROM read_parquet(?)) TO '{dst}' (FORMAT parquet)",
                        [str(src)])
        for table, column in (("encounters", "admit_time"), ("encounters", "discharge_time"),
                              ("lab_results", "time"), ("medication_administrations", "time")):
            rows = con.execute(
                f"SELECT DISTINCT strftime({column}, '%Y-%m-%d') FROM read_parquet(?)",
                [str(folder / f"{table}.parquet")],
            ).fetchall()
            dates |= {d for (d,) in rows}
    assert min(dates) >= "2018" and max(dates) < "2023", (min(dates), max(dates))
    return dates


@pytest.mark.slow
def test_shared_outputs_and_prefect_records_carry_no_ids_dates_or_small_counts(
    tmp_path: Path,
) -> None:
    data = tmp_path / "identifiable"
    patient_dates = identifiable_fixture(data)
    home = tmp_path / "prefect-home"
    out = tmp_path / "run"
    done = mgca(["run", "--source", "canonical", "--path", str(data), "--out", str(out)], home)
    assert done.returncode == 0, done.stdout[-3000:]
    log = tmp_path / "console.log"
    log.write_text(done.stdout)

    # The private side really holds ids (so the scan below is not vacuous).
    cohort_text = (out / "cohort.parquet").read_bytes().decode("utf-8", "replace")
    assert IDS.search(cohort_text)

    prefect_files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in prefect_files), prefect_files
    shared = [out / "report.html", out / "results.json", out / "config.yaml", log]
    shared += [p for p in (tmp_path / "index.html", tmp_path / "history.json") if p.exists()]
    shared.append(tmp_path / "mgca-run.log")  # Prefect's log of the run (mgca.cli.RUN_LOG)
    assert shared[-1].is_file()
    findings = scan_files(shared + prefect_files, IDS, patient_dates)

    results = load_results(out / "results.json")
    findings += small_counts_in_results(results, THRESHOLD)
    html = (out / "report.html").read_text(encoding="utf-8")
    findings += small_counts_in_html(html, THRESHOLD)
    assert not findings, "\n".join(findings)

    # The report says where the ids are and that they stay private.
    assert "cohort.parquet" in html and "private" in html
    # Shareable files are exactly those; ids live only in cohort.parquet and private/.
    assert sorted(p.name for p in out.iterdir()) == [
        "cohort.parquet", "config.yaml", "private", "report.html", "results.json"
    ]


def test_scanner_finds_what_it_must() -> None:
    """The scanners themselves catch an id, a date and small counts (so the guard can fail)."""
    from helpers.privacy_scan import identifier_findings

    text = 'row MRN-0042 drawn 2019/03/02 08:00, "n": 7'
    assert identifier_findings("x", text, IDS, {"2019-03-02"}) == [
        "x: identifier 'MRN-0042'",
        "x: patient date 2019-03-02",
    ]
    assert small_counts_in_results({"attrition": [{"n": 7}], "config": {"n_x": 3}}, 11) == [
        "results.json.attrition[0].n = 7"
    ]
    row = '<tr><td>Female, n (%)</td><td>4 (12%)</td></tr><tr><td class="num">9</td></tr>'
    assert len(small_counts_in_html(f"<table>{row}</table>", 11)) == 2


def test_attrition_small_exclusion_cannot_be_recovered_by_subtraction() -> None:
    raw = [
        {"step": "encounters in source", "n": 300, "n_excluded": 0},
        {"step": "with Mg and Ca", "n": 298, "n_excluded": 2},
        {"step": "index event", "n": 48, "n_excluded": 250},
        {"step": "adults", "n": 48, "n_excluded": 0},
        {"step": "analysed episodes", "n": 35, "n_excluded": 13},
        {"step": "analysed episodes: exposed", "n": 30, "n_excluded": None},
        {"step": "analysed episodes: unexposed", "n": 5, "n_excluded": None},
    ]
    shown = suppress_attrition(raw, THRESHOLD)
    # no small count is shown
    assert not small_counts_in_results({"attrition": shown}, THRESHOLD)
    # every chain identity n_prev = n + n_excluded has 0 or >= 2 hidden cells
    chain = shown[:5]
    for prev, cur in itertools.pairwise(chain):
        hidden = [v is None for v in (prev["n"], cur["n"], cur["n_excluded"])]
        assert sum(hidden) != 1, (prev, cur)
    hidden_excl = [r for r in chain[1:] if r["n_excluded"] is None]
    assert len(hidden_excl) != 1  # the total of exclusions cannot reveal a lone hidden one
    # the breakdown (exposed + unexposed = analysed) hides a complement, never analysed n
    assert shown[4]["n"] == 35
    assert shown[5]["n"] is None and shown[6]["n"] is None
    assert shown[0]["n"] == 300 and shown[2]["n_excluded"] in (None, 250)

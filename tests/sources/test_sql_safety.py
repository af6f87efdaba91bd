"""SQL safety: config values reach SQL only as bound parameters or validated identifiers.

Hostile strings in every config field that touches SQL (long-format column and file names,
the delimiter, the DuckDB memory limit, numeric thresholds) are either rejected when the
config is loaded (ConfigError naming the key) or travel as data, never as SQL text: a file
named like an injection is read as a file, a threshold is a bound parameter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from mgca.config import ConfigError, MgcaConfig, load_config
from mgca.engine.database import open_database, write_study_config
from mgca.sources.resolve import SourceError

CORPUS = Path(__file__).parent / "bad_inputs"
INJECTIONS = [
    "pid\"; DROP TABLE lab_results; --",
    "pid' OR '1'='1",
    "x) AS a; COPY (SELECT 1) TO '/tmp/pwned.csv'; --",
    "subject_id\x00",
    "\"",
]


def _yaml_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("hostile", INJECTIONS)
def test_hostile_column_names_are_rejected_with_the_key(hostile: str, tmp_path: Path) -> None:
    escaped = hostile.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", "\\0")
    path = _yaml_config(
        tmp_path, f'long_format:\n  labs:\n    file: labs.csv\n    subject_id: "{escaped}"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "subject_id" in str(info.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("engine:\n  duckdb_memory_limit", "'4GB''; DROP TABLE x; --'"),
        ("study:\n  mg_low_mmol_l", "'0.7; DROP TABLE study_config'"),
        ("study:\n  grace_hours", "'6 OR 1=1'"),
        ("privacy:\n  small_cell_threshold", "'11); DELETE FROM attrition; --'"),
    ],
)
def test_hostile_engine_and_threshold_values_are_rejected(
    key: str, value: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_yaml_config(tmp_path, f"{key}: {value}\n"))
    assert key.split(":\n  ")[-1] in str(info.value)


def test_thresholds_travel_as_bound_parameters(tmp_path: Path) -> None:
    """study_config holds exactly the configured numbers (no SQL text is built from them)."""
    config = MgcaConfig.model_validate({"study": {"mg_low_mmol_l": 0.65, "grace_hours": 8}})
    con = open_database(tmp_path / "db.duckdb", config)
    write_study_config(con, config)
    row = con.execute("SELECT mg_low_mmol_l, grace_hours FROM study_config").fetchone()
    con.close()
    assert row == (0.65, 8)


def test_file_name_that_looks_like_sql_is_read_as_a_file(tmp_path: Path) -> None:
    """A quote-laden file name reaches DuckDB as an escaped string literal: read, not run."""
    from test_bad_input_corpus import corpus_config, run_case

    case = tmp_path / "extract"
    shutil.copytree(CORPUS / "valid", case)
    hostile = "labs'); DROP TABLE lab_results; --.csv"
    (case / "labs.csv").rename(case / hostile)
    config = corpus_config(hostile)
    assert config.long_format.labs.file == hostile  # allowed: any file name
    import test_bad_input_corpus as corpus

    original = corpus.corpus_config
    corpus.corpus_config = lambda _labs="labs.csv": config  # run_case picks the labs file
    try:
        db = run_case(case, tmp_path / "run")
    finally:
        corpus.corpus_config = original
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM lab_results").fetchone() == (16,)
    assert not Path("/tmp/pwned.csv").exists()


def test_quote_or_newline_delimiter_is_rejected_by_the_config() -> None:
    for delimiter in ['"', "\n", "\x00"]:
        with pytest.raises(ValueError, match="delimiter"):
            MgcaConfig.model_validate({"long_format": {"delimiter": delimiter}})


@pytest.mark.parametrize("delimiter", ["'", ";"])
def test_hostile_delimiter_is_data_not_sql(delimiter: str, tmp_path: Path) -> None:
    """A quote as delimiter either reads or stops with the file named (never a SQL error)."""
    import test_bad_input_corpus as corpus
    from test_bad_input_corpus import run_case

    base = corpus.corpus_config()
    config = base.model_copy(
        update={"long_format": base.long_format.model_copy(update={"delimiter": delimiter})}
    )
    original = corpus.corpus_config
    corpus.corpus_config = lambda _labs="labs.csv": config
    try:
        with pytest.raises(SourceError) as info:
            run_case(CORPUS / "valid", tmp_path)
    finally:
        corpus.corpus_config = original
    assert "labs.csv" in str(info.value) and "delimit" in str(info.value)


def test_report_title_is_escaped() -> None:
    from markupsafe import escape

    title = "<script>alert(1)</script>"
    config = MgcaConfig.model_validate({"report": {"title": title}})
    assert config.report.title == title
    assert "<script>" not in str(escape(title))

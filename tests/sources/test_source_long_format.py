"""--source csv: plain long-format extracts mapped by the config's long_format section."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from helpers.source_fixtures import LONG_FORMAT_LABS, write_extract
from helpers.source_fixtures import long_format_config as config

from mgca.config import ConfigError, MgcaConfig, load_config
from mgca.sources.adapters import long_format
from mgca.sources.resolve import SourceError


def _run(src: Path, tmp_path: Path, cfg: MgcaConfig) -> tuple[Path, tuple[str, ...]]:
    target = tmp_path / "canonical"
    target.mkdir()
    return target, long_format.to_canonical(src, target, cfg, lambda m: None).warnings


def test_maps_with_config_columns_and_counts_rows(tmp_path: Path) -> None:
    target, warnings = _run(write_extract(tmp_path / "x"), tmp_path, config())
    assert any("persons" in w for w in warnings)
    counts = dict(
        duckdb.sql(
            f"SELECT source_table, sum(n_rows) FROM '{target}/source_rows.parquet' GROUP BY 1"
        ).fetchall()
    )
    assert counts == {"labs": 6, "medications": 4, "encounters": 2}
    reasons = dict(duckdb.sql(f"SELECT reason, n_rows FROM '{target}/source_rows.parquet'")
                   .fetchall())
    assert reasons["analyte not recognised"] == 1
    assert reasons["time missing or unparseable"] == 1
    assert reasons["no numeric value"] == 1
    assert reasons["given flag missing or not recognised"] == 1
    assert reasons["ingredient not in ingredients.csv"] == 1
    assert reasons["discharge_time before admit_time"] == 1
    ca = duckdb.sql(
        f"SELECT unit, source_code FROM '{target}/lab_results.parquet' "
        "WHERE analyte = 'calcium_total' AND value IS NOT NULL"
    ).fetchall()
    assert ca == [("mg/dL", "LOINC:17861-6")]
    given = duckdb.sql(
        f"SELECT given FROM '{target}/medication_administrations.parquet' ORDER BY time"
    ).fetchall()
    assert given == [(True,), (False,)]
    assert duckdb.sql(f"SELECT * FROM '{target}/persons.parquet'").fetchall() == [("1", "U", None)]


def test_parquet_extract(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "x")
    duckdb.sql(f"COPY (SELECT * FROM '{src}/labs.csv') TO '{src}/labs.parquet' (FORMAT parquet)")
    cfg = config(labs={**config().long_format.labs.model_dump(), "file": "labs.parquet"})
    target, _ = _run(src, tmp_path, cfg)
    assert duckdb.sql(f"SELECT count(*) FROM '{target}/lab_results.parquet'").fetchall() == [(4,)]


def test_missing_configured_column(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "x")
    (src / "labs.csv").write_text(LONG_FORMAT_LABS.replace("result", "res"))
    with pytest.raises(SourceError) as err:
        _run(src, tmp_path, config())
    message = str(err.value)
    assert "labs.csv" in message and "'result'" in message and "long_format.labs.value" in message


def test_wrong_delimiter(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "x")
    (src / "labs.csv").write_text(LONG_FORMAT_LABS.replace(",", ";"))
    with pytest.raises(SourceError, match="delimited"):
        _run(src, tmp_path, config())


def test_missing_labs_file_and_optional_medications(tmp_path: Path) -> None:
    src = write_extract(tmp_path / "x")
    (src / "meds.csv").unlink()
    _, warnings = _run(src, tmp_path, config())
    assert any("medications" in w and "unexposed" in w for w in warnings)
    (src / "labs.csv").unlink()
    with pytest.raises(SourceError, match=r"long_format\.labs\.file"):
        long_format.to_canonical(src, tmp_path / "t2", config(), lambda m: None)


def test_config_rejects_unsafe_column_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('long_format:\n  labs:\n    value: \'x"; DROP TABLE y; --\'\n')
    with pytest.raises(ConfigError, match=r"long_format\.labs\.value"):
        load_config(bad)

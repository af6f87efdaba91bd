"""Delta tables without delta-spark (``mgca.sources.delta_snapshot``) and URL inputs
(``mgca.sources.resolve``), on real Delta tables written by delta-rs; no Spark here
(tests/engine/test_spark_engine.py reads them on Spark).

- the snapshot lists exactly the active files (stale files of later commits are left out)
  with their partition values, and its fingerprint follows the table version;
- tables that a plain Parquet read would get wrong are refused with the location, the
  feature and the fix: a real deletion vector, column mapping, an unknown reader feature;
- a URL ``--path`` is kept as typed for the Spark engine and refused clearly for DuckDB.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

deltalake = pytest.importorskip("deltalake", reason="Delta input needs pip install 'mgca[spark]'")

from helpers.delta_tables import (  # noqa: E402
    add_deletion_vector,
    junk_rows,
    parquet_rows_in_folder,
    snapshot_rows,
    write_canonical_delta,
)

from mgca.cli import main  # noqa: E402
from mgca.config import MgcaConfig  # noqa: E402
from mgca.sources.delta_snapshot import (  # noqa: E402
    DeltaInputError,
    read_snapshot,
    snapshot_versions,
    versions_fingerprint,
)
from mgca.sources.resolve import SourceError, check_source, resolve_source  # noqa: E402


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mgca.synthetic import generate

    return Path(generate(tmp_path_factory.mktemp("delta-src") / "syn", n_stays=12, seed=5))


@pytest.fixture(scope="module")
def delta_dir(canonical: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_canonical_delta(canonical, tmp_path_factory.mktemp("delta") / "tables")


def _config(**engine: str) -> MgcaConfig:
    return MgcaConfig.model_validate({"engine": engine})


def test_snapshot_lists_only_the_active_files_with_partition_values(
    canonical: Path, delta_dir: Path
) -> None:
    labs_dir = delta_dir / "lab_results"
    snapshot = read_snapshot(str(labs_dir))
    assert snapshot.version == 1 and snapshot.partition_columns == ("analyte",)
    paths = [p for group in snapshot.groups for p in group.paths]
    active = [pq.ParquetFile(p).read() for p in paths]
    original = pq.read_table(canonical / "lab_results.parquet")
    # the folder still holds the files the DELETE replaced; the snapshot does not
    assert parquet_rows_in_folder(labs_dir) > original.num_rows
    assert sum(t.num_rows for t in active) == original.num_rows == snapshot_rows(labs_dir)
    assert sum(junk_rows(t) for t in active) == 0
    # the partition column is not in the data files: its value comes from the log
    assert all("analyte" not in t.column_names for t in active)
    analytes = {dict(group.partition_values)["analyte"] for group in snapshot.groups}
    assert analytes == set(original["analyte"].to_pylist())
    for group in snapshot.groups:
        value = dict(group.partition_values)["analyte"]
        assert all(f"/analyte={value}/" in p for p in group.paths)
    encounters = read_snapshot(str(delta_dir / "encounters"))
    assert encounters.version == 1 and encounters.n_files == 1


def test_fingerprint_names_table_ids_and_versions(delta_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(delta_dir, copy)
    tables = {name: str(copy / name) for name in ("persons", "lab_results")}
    before = snapshot_versions(tables)
    assert before["lab_results"][1] == 1
    assert versions_fingerprint(before) == versions_fingerprint(snapshot_versions(tables))
    persons = deltalake.DeltaTable(copy / "persons")
    deltalake.write_deltalake(persons, persons.to_pyarrow_table().slice(0, 1), mode="append")
    after = snapshot_versions(tables)
    assert after["persons"][1] == before["persons"][1] + 1
    assert versions_fingerprint(after) != versions_fingerprint(before)


def test_deletion_vectors_are_refused_only_when_a_file_has_one(tmp_path: Path) -> None:
    location = tmp_path / "persons"
    rows = pa.table({"subject_id": ["p1", "p2", "p3", "p4"], "sex": ["f", "m", "f", "m"]})
    deltalake.write_deltalake(
        location, rows, configuration={"delta.enableDeletionVectors": "true"}
    )
    # the feature alone changes nothing: every row of the file is live
    assert "deletionVectors" in deltalake.DeltaTable(location).protocol().reader_features
    assert read_snapshot(str(location)).n_files == 1
    add_deletion_vector(location, [1])
    # delta-rs itself reads the vector: row 1 of the file is deleted
    [vector] = pa.table(deltalake.DeltaTable(location).deletion_vectors()).to_pylist()
    assert vector["selection_vector"] == [True, False, True, True]
    with pytest.raises(DeltaInputError) as info:
        read_snapshot(str(location))
    message = str(info.value)
    assert str(location) in message and "deletion vectors on 1 active file" in message
    assert "delta-spark" in message and "REORG TABLE" in message and "PURGE" in message
    # the version before the vector still reads
    assert read_snapshot(str(location), version=0).n_files == 1


def test_column_mapping_is_refused(tmp_path: Path) -> None:
    location = tmp_path / "encounters"
    deltalake.write_deltalake(
        location,
        pa.table({"encounter_id": ["e1"]}),
        configuration={"delta.columnMapping.mode": "name"},
    )
    with pytest.raises(DeltaInputError, match=r"column mapping \(delta.columnMapping.mode") as info:
        read_snapshot(str(location))
    assert str(location) in str(info.value) and "delta-spark" in str(info.value)


def test_a_reader_feature_outside_the_plain_parquet_list_is_refused(tmp_path: Path) -> None:
    location = tmp_path / "lab_results"
    deltalake.write_deltalake(location, pa.table({"value": [1.0]}))
    protocol = {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": ["typeWidening"],
        "writerFeatures": ["typeWidening"],
    }
    commit = [{"commitInfo": {"timestamp": 1, "operation": "ALTER"}}, {"protocol": protocol}]
    (location / "_delta_log" / f"{1:020d}.json").write_text(
        "\n".join(json.dumps(action) for action in commit) + "\n"
    )
    with pytest.raises(DeltaInputError, match="reader feature 'typeWidening'") as info:
        read_snapshot(str(location))
    assert str(location) in str(info.value) and "DROP FEATURE typeWidening" in str(info.value)


def test_a_folder_that_is_no_delta_table_names_itself(tmp_path: Path) -> None:
    with pytest.raises(DeltaInputError, match="cannot be opened as a Delta table"):
        read_snapshot(str(tmp_path / "missing"))


def test_url_path_is_kept_for_spark_and_refused_for_duckdb(tmp_path: Path) -> None:
    url = "s3a://lake/mgca/canonical"
    with pytest.raises(SourceError, match="is a URL, but the DuckDB engine reads a local folder"):
        check_source("canonical", url, _config(name="duckdb"))
    check_source("canonical", url, _config(name="spark"))  # Spark checks it when it reads
    with pytest.raises(SourceError, match="--source synthetic reads a local folder"):
        check_source("synthetic", url, _config(name="spark"))
    resolved = resolve_source("canonical", url, tmp_path, _config(name="spark"), lambda _m: None)
    assert resolved.data_dir == url and resolved.data_format == "parquet"
    assert resolved.fingerprint and resolved.fingerprint.startswith("uncached-")


def test_local_delta_folder_resolves_to_its_versions(delta_dir: Path, tmp_path: Path) -> None:
    config = _config(name="spark", spark_format="delta")
    resolved = resolve_source("canonical", str(delta_dir), tmp_path, config, lambda _m: None)
    assert resolved.data_format == "delta"
    assert resolved.delta_versions == {
        "persons": 0,
        "encounters": 1,
        "lab_results": 1,
        "medication_administrations": 0,
    }
    assert resolved.fingerprint == versions_fingerprint(
        snapshot_versions({t: str(delta_dir / t) for t in resolved.delta_versions})
    )
    # generated or adapter data stays Parquet whatever engine.spark_format says
    with pytest.raises(SourceError, match=r"missing persons\.parquet"):
        check_source("synthetic", delta_dir, config)
    (tmp_path / "half").mkdir()
    shutil.copytree(delta_dir / "persons", tmp_path / "half" / "persons")
    with pytest.raises(SourceError, match="no Delta table encounters, lab_results"):
        check_source("canonical", tmp_path / "half", config)


def test_cli_refuses_a_url_for_duckdb_naming_it_as_typed() -> None:
    result = CliRunner().invoke(
        main, ["run", "--source", "canonical", "--path", "abfss://c@acct.dfs.core.windows.net/x"]
    )
    assert result.exit_code == 2, result.output
    assert "--path abfss://c@acct.dfs.core.windows.net/x is a URL" in result.output
    assert "--engine spark" in result.output and "Traceback" not in result.output


def test_serve_keeps_a_url_path_as_typed(tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(
        "engine:\n  name: spark\n"
        "schedule:\n  source: canonical\n  path: hdfs://namenode:8020/mgca/canonical\n"
    )
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["parameters"]["path"] == "hdfs://namenode:8020/mgca/canonical"

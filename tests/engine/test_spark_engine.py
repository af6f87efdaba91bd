"""The SQL derivation on PySpark (local mode) gives the DuckDB engine's tables row for row.

One dataset of patient stories (written with tests/stories.py's pipe tables: qualifying
stays treated and untreated, an unlinked lab attached by time, a repeated result, a unit
spelled differently, a missing unit, an ionized calcium, no albumin, a prior Mg dose, a
minor, an implausible value) plus a small seeded synthetic hospital, derived once by each
engine through the real ``mgca.run.study`` entry points. The tables Spark pulls back must equal
DuckDB's: same columns and types, same rows (sorted), floats within 1e-9.

Spark derives from the same data stored as Delta tables (tests/delta_tables.py: real
delta-rs tables whose folders also hold the stale files of later commits, lab_results
partitioned by analyte), read through a ``file://`` URL without delta-spark; DuckDB derives
from the Parquet files. A second test shows that Spark's canonical views from the Delta
tables equal its views from the Parquet files row for row, so the derivation (which reads
only those views) covers the Parquet input too, at the cost of one Spark derivation.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from helpers.stories import _rows, _write_parquet

from mgca.config import MgcaConfig, load_config
from mgca.engine.database import CANONICAL_TABLES
from mgca.engine.derive import SQL_STEPS, read_sql
from mgca.run import study

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs pip install 'mgca[spark]'")
pytest.importorskip("sqlglot")
deltalake = pytest.importorskip("deltalake")

from helpers.delta_tables import (  # noqa: E402
    add_deletion_vector,
    parquet_rows_in_folder,
    snapshot_rows,
    write_canonical_delta,
)

from mgca.cli import main  # noqa: E402
from mgca.engine import registry  # noqa: E402
from mgca.engine import spark as spark_engine  # noqa: E402
from mgca.engine.database import CanonicalSchemaError  # noqa: E402
from mgca.engine.duckdb_engine import DuckDBEngine  # noqa: E402
from mgca.sources.delta_snapshot import read_snapshot  # noqa: E402

pytestmark = pytest.mark.slow

ENCOUNTERS = """
encounter_id | subject_id | admit_time | discharge_time | age_years
e1           | p1         | d1 00:00   | d9 00:00       | 70
e2           | p2         | d1 00:00   | d9 00:00       | 55
e3           | p3         | d1 00:00   | d9 00:00       | 80
e4           | p4         | d1 00:00   | d9 00:00       | 16
e5           | p5         | d1 00:00   | d9 00:00       | 64
e6           | p6         | d1 00:00   | d9 00:00       | 45
"""

LABS = """
subject_id | encounter_id | time     | analyte         | value | unit
p1         | e1           | d1 06:00 | creatinine      | 90    | umol/L
p1         | e1           | d1 08:00 | magnesium       | 0.55  | mmol/L
p1         | e1           | d1 10:00 | calcium_total   | 1.90  | mmol/L
p1         | e1           | d1 10:00 | albumin         | 30    | g/L
p1         | e1           | d3 10:00 | calcium_total   | 2.20  | mmol/L
p1         | e1           | d3 10:00 | albumin         | 30    | g/L
p2         | e2           | d1 08:00 | magnesium       | 1.5   | mg/dL
p2         | e2           | d1 08:00 | magnesium       | 1.5   | MG/DL
p2         | -            | d1 09:00 | calcium_total   | 7.6   | mg/dL
p2         | e2           | d1 09:00 | albumin         | 3.0   | g/dL
p2         | e2           | d3 09:30 | calcium_total   | 8.4   | mg/dL
p2         | e2           | d3 09:00 | albumin         | 3.1   | g/dL
p2         | e2           | d3 10:00 | potassium       | 3.1   | mmol/L
p3         | e3           | d1 08:00 | magnesium       | 0.60  | mmol/L
p3         | e3           | d1 08:30 | calcium_ionized | 0.98  | mmol/L
p3         | e3           | d1 08:30 | calcium_total   | 1.90  | mmol/L
p3         | e3           | d1 08:30 | albumin         | 30    | g/L
p3         | e3           | d1 07:00 | creatinine      | 1.1   | mg/dL
p2         | e2           | d1 07:00 | creatinine      | 100   | umol/L
p5         | e5           | d2 07:00 | creatinine      | 80    | umol/L
p6         | e6           | d1 07:00 | creatinine      | 70    | µmol/L
p3         | e3           | d2 08:00 | pth             | 20    | pg/mL
p3         | e3           | d3 08:30 | calcium_ionized | 1.10  | mmol/L
p3         | e3           | d3 08:30 | calcium_total   | 2.10  | -
p4         | e4           | d1 08:00 | magnesium       | 0.50  | mmol/L
p4         | e4           | d1 09:00 | calcium_total   | 1.80  | mmol/L
p4         | e4           | d1 09:00 | albumin         | 35    | g/L
p5         | e5           | d2 08:00 | magnesium       | 0.58  | mmol/L
p5         | e5           | d2 09:00 | calcium_total   | 1.80  | mmol/L
p5         | e5           | d2 09:00 | albumin         | 28    | g/L
p5         | e5           | d4 09:00 | calcium_total   | 2.05  | mmol/L
p5         | e5           | d4 09:00 | albumin         | 28    | g/L
p6         | e6           | d1 08:00 | magnesium       | 0.62  | mmol/L
p6         | e6           | d1 08:00 | magnesium       | 45    | mmol/L
p6         | e6           | d1 11:00 | calcium_total   | 1.85  | mmol/L
p6         | e6           | d1 11:00 | albumin         | 30    | g/L
p6         | e6           | d3 11:00 | calcium_total   | 2.15  | mmol/L
p6         | e6           | d3 11:00 | albumin         | 30    | g/L
p6         | e6           | d3 11:00 | sodium          | 140   | furlongs
"""

MEDS = """
subject_id | encounter_id | time     | ingredient         | dose | dose_unit | route | given
p1         | e1           | d1 12:00 | magnesium_sulfate  | 2    | g         | iv    | true
p2         | e2           | d1 10:00 | magnesium_sulfate  | 4    | g         | iv    | true
p3         | e3           | d1 20:00 | magnesium_oxide    | 400  | mg        | oral  | true
p5         | e5           | d1 08:00 | magnesium_sulfate  | 2    | g         | iv    | true
p6         | e6           | d1 12:00 | calcium_gluconate  | 1    | g         | iv    | true
p6         | e6           | d1 13:00 | magnesium_sulfate  | 2    | g         | iv    | false
"""


def _write_stories(folder: Path) -> Path:
    folder.mkdir(parents=True)
    tables = {
        "encounters": _rows("encounters", ENCOUNTERS),
        "lab_results": _rows("lab_results", LABS),
        "medication_administrations": _rows("medication_administrations", MEDS),
    }
    subjects = sorted({row["subject_id"] for rows in tables.values() for row in rows})
    tables["persons"] = _rows("persons", [{"subject_id": s} for s in subjects])
    for table, rows in tables.items():
        _write_parquet(folder, table, rows)
    return folder


def _config(engine: str, spark_format: str = "parquet", **study: Any) -> MgcaConfig:
    raw = load_config().model_dump(mode="json")
    raw["engine"]["name"] = engine
    raw["engine"]["spark_master"] = "local[2]"
    raw["engine"]["spark_format"] = spark_format
    raw["study"].update(study)
    return MgcaConfig.model_validate(raw)


def _table(db: Path, table: str) -> tuple[list[tuple[str, str]], list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = [(row[0], row[1]) for row in con.execute(f'DESCRIBE "{table}"').fetchall()]
        rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
    finally:
        con.close()
    return columns, sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    return a == b


def _assert_same_tables(duck_db: Path, spark_db: Path) -> dict[str, int]:
    counts = {}
    for table in registry.engine_outputs():
        duck_columns, duck_rows = _table(duck_db, table)
        spark_columns, spark_rows = _table(spark_db, table)
        assert spark_columns == duck_columns, table
        assert len(spark_rows) == len(duck_rows), table
        for number, (s_row, d_row) in enumerate(zip(spark_rows, duck_rows, strict=True)):
            wrong = [
                (name, s, d)
                for (name, _), s, d in zip(duck_columns, s_row, d_row, strict=True)
                if not _same_value(s, d)
            ]
            assert not wrong, f"{table} row {number}: (column, spark, duckdb) {wrong}"
        counts[table] = len(duck_rows)
    return counts


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stories plus a small seeded synthetic hospital, in one canonical folder (one
    derivation per engine keeps the Spark test short)."""
    from mgca.synthetic import generate

    base = tmp_path_factory.mktemp("spark-data")
    stories = _write_stories(base / "stories")
    synthetic = Path(generate(base / "synthetic", n_stays=60, world="effect", seed=11))
    both = base / "both"
    both.mkdir()
    for table, columns in CANONICAL_TABLES.items():
        names = [c.name for c in columns]
        story_table = pq.read_table(stories / f"{table}.parquet").select(names)
        synthetic_table = pq.read_table(synthetic / f"{table}.parquet").select(names)
        pq.write_table(
            pa.concat_tables([story_table.cast(synthetic_table.schema), synthetic_table]),
            both / f"{table}.parquet",
        )
    return both


@pytest.fixture(scope="module")
def delta_dataset(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dataset`` as Delta tables whose current snapshots equal its Parquet files, with
    stale files of replaced commits in the lab_results and encounters folders."""
    return write_canonical_delta(dataset, tmp_path_factory.mktemp("spark-delta") / "tables")


def _spark_rows(spark: Any, table: str) -> list[tuple]:
    rows = [tuple(r) for r in spark.table(table).collect()]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def test_every_sql_file_translates_to_create_table_statements() -> None:
    for sql_file in SQL_STEPS:
        statements = spark_engine.translate(read_sql(sql_file), sql_file)
        assert statements, sql_file
        for statement in statements:
            assert " QUALIFY " not in statement.query.upper()


def test_spark_run_equals_duckdb_row_for_row(
    dataset: Path, delta_dataset: Path, tmp_path: Path, prefect_harness: None
) -> None:
    """A whole ``mgca run --spark-master local[2]`` (real CLI, Prefect flow, Delta input at a
    file:// URL) derives on Spark, pulls back only episode-level and aggregate tables, and
    fits every model, sensitivity windows included; its tables equal the DuckDB engine's."""
    # infer_missing_units on: the missing-unit path runs too
    duck_db = tmp_path / "duck.duckdb"
    n_duck = study.build_database(dataset, duck_db, _config("duckdb", infer_missing_units=True))
    spark_config = _config("spark", "delta", infer_missing_units=True)
    config_file = tmp_path / "spark.yaml"
    config_file.write_text("engine:\n  spark_format: delta\nstudy:\n  infer_missing_units: true\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "run", "--source", "canonical", "--path", delta_dataset.as_uri(),
            "--config", str(config_file), "--spark-master", "local[2]", "--out", str(run),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    spark_db = run / "private" / "mgca.duckdb"
    results = json.loads((run / "results.json").read_text())
    windows = [
        e for e in results["sensitivity"]["analyses"] if e["name"].startswith(("grace", "horizon"))
    ]
    assert [e["name"] for e in windows] == ["grace_3h", "grace_12h", "horizon_24h", "horizon_72h"]
    assert all(e["reason"] is None or "not available" not in e["reason"] for e in windows)
    # the Delta versions read are on record: lab_results and encounters had later commits
    versions = results["provenance"]["delta_versions"]
    assert versions == {
        t: deltalake.DeltaTable(delta_dataset / t).version() for t in CANONICAL_TABLES
    }
    assert versions["lab_results"] > 0
    n_spark = study.read_cohort(spark_db).shape[0]
    assert n_spark == n_duck
    counts = _assert_same_tables(duck_db, spark_db)
    # the stories alone analyse p1 and p2 (treated; p2 in mg/dL with an unlinked calcium)
    # and p6 (untreated: its Mg order was never given); the synthetic stays add more
    assert counts["analytic_cohort"] >= 3
    pulled = duckdb.connect(str(spark_db), read_only=True)
    try:
        story_stays = {
            e for (e,) in pulled.execute("SELECT encounter_id FROM analytic_cohort").fetchall()
        } & {"e1", "e2", "e3", "e4", "e5", "e6"}
        tables = {r[0] for r in pulled.execute("SHOW TABLES").fetchall()}
    finally:
        pulled.close()
    assert story_stays >= {"e1", "e2", "e6"}
    assert "lab_results" not in tables and "lab_harmonised" not in tables
    # the sensitivity windows' cohorts, derived on Spark while the lab-level tables were
    # there, equal the DuckDB engine's re-derivation from its own tables
    windows = spark_config.sensitivity_configs()
    assert len(windows) == 4
    for name, _, alt in windows:
        table = f"{spark_engine.ALTERNATIVE_COHORT_PREFIX}{name}"
        assert table in tables
        duck = DuckDBEngine().alternative_cohort(duck_db, name, alt, tmp_path)
        spark = study.cohort_for("spark", spark_db, tmp_path)(name, alt)
        assert len(duck) > 0, name
        pd.testing.assert_frame_equal(spark, duck, check_exact=False, atol=1e-9, obj=name)


def test_bad_canonical_input_on_spark_names_file_and_column(tmp_path: Path) -> None:
    folder = _write_stories(tmp_path / "bad")
    labs = pq.read_table(folder / "lab_results.parquet").drop(["analyte"])
    pq.write_table(labs, folder / "lab_results.parquet")
    with pytest.raises(ValueError, match=r"lab_results.parquet: column 'analyte' is missing"):
        study.load_database(folder, tmp_path / "x.duckdb", _config("spark"))


def test_delta_tables_read_as_their_snapshot_equal_the_parquet_input(
    dataset: Path, delta_dataset: Path
) -> None:
    spark = spark_engine.spark_session("local[2]")
    parquet_counts = spark_engine.register_canonical(spark, str(dataset), _config("spark"))
    from_parquet = {table: _spark_rows(spark, table) for table in CANONICAL_TABLES}
    messages: list[str] = []
    url = delta_dataset.as_uri()  # file:///...: passed to Spark as typed
    delta_counts = spark_engine.register_canonical(
        spark, url, _config("spark", "delta"), progress=messages.append
    )
    for table in CANONICAL_TABLES:
        assert delta_counts[table] == snapshot_rows(delta_dataset / table), table
        assert _spark_rows(spark, table) == from_parquet[table], table
    assert delta_counts == parquet_counts
    # the stale files are still in the folders: a folder read would count them
    for table in ("lab_results", "encounters"):
        assert parquet_rows_in_folder(delta_dataset / table) != delta_counts[table]
    # this Spark has no delta-spark: the snapshot was resolved by delta-rs, and says so
    assert "no delta data source" in messages[0] and "lab_results v1" in messages[0]
    # a pinned older version reads that version (encounters v0 held half the stays)
    old = spark_engine.register_canonical(
        spark, url, _config("spark", "delta"), delta_versions={"encounters": 0}
    )
    assert old["encounters"] == max(1, delta_counts["encounters"] // 2)


def test_delta_partition_values_come_back_typed_with_nulls(tmp_path: Path) -> None:
    persons = pa.table(
        {
            "subject_id": ["p1", "p2", "p3", "p4"],
            "sex": ["f", "m", None, "f"],
            "year_of_birth": pa.array([1950, 1950, None, 1988], pa.int32()),
        }
    )
    deltalake.write_deltalake(tmp_path / "persons", persons, partition_by=["year_of_birth", "sex"])
    spark = spark_engine.spark_session("local[2]")
    snapshot = read_snapshot(str(tmp_path / "persons"))
    frame = spark_engine.read_delta_files(spark, snapshot, "persons")
    assert dict(frame.dtypes)["year_of_birth"] == "int"
    got = sorted(tuple(r) for r in frame.select("subject_id", "sex", "year_of_birth").collect())
    assert got == sorted(zip(*persons.to_pydict().values(), strict=True))


def test_delta_table_with_deletion_vectors_is_refused_on_spark(
    delta_dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "tables"
    shutil.copytree(delta_dataset, folder)
    persons = deltalake.DeltaTable(folder / "persons").to_pyarrow_table()
    shutil.rmtree(folder / "persons")
    deltalake.write_deltalake(
        folder / "persons", persons, configuration={"delta.enableDeletionVectors": "true"}
    )
    add_deletion_vector(folder / "persons", [0])
    with pytest.raises(CanonicalSchemaError) as info:
        spark_engine.register_canonical(
            spark_engine.spark_session("local[2]"), str(folder), _config("spark", "delta")
        )
    message = str(info.value)
    assert f"{folder}/persons: the Delta table has deletion vectors on 1 active file" in message
    assert "put the delta-spark package on the Spark cluster" in message
    assert "REORG TABLE ... APPLY (PURGE)" in message


def test_cli_passes_a_file_url_through_the_flow_to_spark(
    delta_dataset: Path, tmp_path: Path, prefect_harness: None
) -> None:
    """The real CLI and Prefect flow with a file:// URL and Delta tables: the URL reaches
    Spark as typed (a pathlib.Path would print file:/...), and a bad Delta table stops the
    run at the load with the canonical-schema message (exit 2; Prefect's own log of the
    failed task still carries its traceback)."""
    folder = tmp_path / "lake" / "canonical"
    shutil.copytree(delta_dataset, folder)
    labs = deltalake.DeltaTable(folder / "lab_results").to_pyarrow_table().drop(["unit"])
    deltalake.write_deltalake(
        folder / "lab_results", labs, mode="overwrite", schema_mode="overwrite"
    )
    config = tmp_path / "study.yaml"
    config.write_text("engine:\n  spark_format: delta\n")
    url = folder.as_uri()
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--source",
            "canonical",
            "--path",
            url,
            "--config",
            str(config),
            "--spark-master",
            "local[2]",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"error: canonical input in {url} does not match the contract" in result.output
    assert "lab_results: column 'unit' is missing" in result.output

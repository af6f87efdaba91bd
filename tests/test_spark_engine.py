"""The SQL derivation on PySpark (local mode) gives the DuckDB engine's tables row for row.

One dataset of patient stories (written with tests/stories.py's pipe tables: qualifying
stays treated and untreated, an unlinked lab attached by time, a repeated result, a unit
spelled differently, a missing unit, an ionized calcium, no albumin, a prior Mg dose, a
minor, an implausible value) plus a small seeded synthetic hospital, derived once by each
engine through the real ``mgca.study`` entry points. The tables Spark pulls back must equal
DuckDB's: same columns and types, same rows (sorted), floats within 1e-9.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stories import _rows, _write_parquet

from mgca import study
from mgca.config import MgcaConfig, load_config
from mgca.database import CANONICAL_TABLES
from mgca.derive import SQL_STEPS, read_sql

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs pip install 'mgca[spark]'")
pytest.importorskip("sqlglot")

from mgca import spark_engine  # noqa: E402

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


def _config(engine: str, **study: Any) -> MgcaConfig:
    raw = load_config().model_dump(mode="json")
    raw["engine"]["name"] = engine
    raw["engine"]["spark_master"] = "local[2]"
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
    for table in spark_engine.PULLED_BACK_TABLES:
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


def test_every_sql_file_translates_to_create_table_statements() -> None:
    for sql_file in SQL_STEPS:
        statements = spark_engine.translate(read_sql(sql_file), sql_file)
        assert statements, sql_file
        for statement in statements:
            assert " QUALIFY " not in statement.query.upper()


def test_spark_derivation_equals_duckdb_row_for_row(dataset: Path, tmp_path: Path) -> None:
    # infer_missing_units on: the missing-unit path runs too
    duck_db, spark_db = tmp_path / "duck.duckdb", tmp_path / "spark.duckdb"
    n_duck = study.build_database(dataset, duck_db, _config("duckdb", infer_missing_units=True))
    n_spark = study.build_database(dataset, spark_db, _config("spark", infer_missing_units=True))
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


def test_bad_canonical_input_on_spark_names_file_and_column(tmp_path: Path) -> None:
    folder = _write_stories(tmp_path / "bad")
    labs = pq.read_table(folder / "lab_results.parquet").drop(["analyte"])
    pq.write_table(labs, folder / "lab_results.parquet")
    with pytest.raises(ValueError, match=r"lab_results.parquet: column 'analyte' is missing"):
        study.load_database(folder, tmp_path / "x.duckdb", _config("spark"))

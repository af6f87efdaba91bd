"""Run the SQL derivation of ``mgca.sql`` on Apache Spark instead of DuckDB.

One source of truth: the SQL files are written for DuckDB and translated to Spark SQL by
sqlglot (``read="duckdb", write="spark"``) when the run starts; there is no second copy. Each
file is a list of ``CREATE OR REPLACE TABLE name AS <query>`` statements: the query runs on
Spark, its result is persisted (memory, spilling to disk) and registered as the temporary
view ``name`` for the steps after it.

Inputs on Spark:

- the four canonical tables, read by the cluster directly from ``<path>/<table>.parquet``
  (or the Delta table ``<path>/<table>``), checked against the canonical schema (same rules
  and messages as :func:`mgca.engine.database.load_canonical`) and cast to the canonical types.
  ``<path>`` is a local folder or a URL the cluster reads (``s3a://``, ``abfss://``,
  ``hdfs://``, ``file://``), passed to Spark as typed. Delta tables are read at the
  versions the run resolved when it started: with Spark's own ``delta`` data source when
  delta-spark is on the cluster; otherwise (Spark answers DATA_SOURCE_NOT_FOUND) delta-rs
  lists the snapshot's active Parquet files (:mod:`mgca.sources.delta_snapshot`) and Spark reads
  exactly those, with the table schema and the partition values from the log
  (:func:`read_delta_files`); tables whose files a plain Parquet read would get wrong
  (deletion vectors on a file, column mapping, other reader features) are refused;
- the reference tables and ``study_config``/``study_outcome_horizons``, built and validated in
  the run's DuckDB exactly as for the DuckDB engine and shipped to Spark from there (small).

Each table is kept with ``localCheckpoint`` (executor memory, spilling to disk; lost with an
executor, in which case the run fails and is re-run). Only
:func:`mgca.engine.registry.engine_outputs` (the
analytic table, one row per episode, and the aggregate tables the report reads) come back
into the run's DuckDB file, with the column names and types the DuckDB engine gives them, so
models and report run unchanged. Lab rows never leave Spark.

Portability rules for SQL in ``sql/`` (checked by tests/engine/test_spark_engine.py):
every statement is ``CREATE OR REPLACE TABLE name AS SELECT ...``; no DuckDB-only syntax or
functions (QUALIFY, ASOF JOIN, ``range``/``generate_series`` table functions, ``arg_min``,
``list``/struct functions, ``GROUP BY ALL``, ``EXCLUDE``, ``::`` casts are fine, interval
arithmetic such as ``time + INTERVAL (h) HOUR``); time differences with
``date_diff('second', a, b)``; no window ordered over a whole table (``ROW_NUMBER() OVER
(ORDER BY ...)`` without PARTITION BY runs in a single Spark task); no reliance on integer
overflow, division by zero or NaN ordering.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from mgca.config import MgcaConfig
from mgca.engine import registry
from mgca.engine.base import CohortUnavailable, Progress, SourceTables
from mgca.engine.database import (
    CANONICAL_TABLES,
    UNIQUE_KEYS,
    CanonicalSchemaError,
    _schema_problems,
    create_care_events_table,
    load_reference_tables,
    open_database,
    write_run_inputs,
    write_study_config,
)
from mgca.engine.derive import (
    DerivationError,
    derive,
    read_sql,
    settings_changed,
    steps_to_rerun,
)
from mgca.engine.registry import SQL_STEPS
from mgca.sources.delta_snapshot import (
    DeltaInputError,
    DeltaSnapshot,
    read_snapshot,
    snapshot_versions,
)

if TYPE_CHECKING:  # pyspark is an optional dependency (extra "spark")
    from pyspark.sql import DataFrame, SparkSession

# Canonical (DuckDB) type -> Spark SQL type for the explicit casts.
_SPARK_TYPES = {
    "VARCHAR": "STRING",
    "INTEGER": "INT",
    "DOUBLE": "DOUBLE",
    "TIMESTAMP": "TIMESTAMP_NTZ",  # the source's own clock, no time zone (as in DuckDB)
    "BOOLEAN": "BOOLEAN",
}


class SparkUnavailableError(RuntimeError):
    """pyspark (or Java) is not installed: the message says how to install it."""


def _duckdb_type_name(spark_type: Any) -> str:
    """A Spark column type as the DuckDB type name the canonical schema check expects."""
    from pyspark.sql import types as T

    simple = {
        T.StringType: "VARCHAR",
        T.ByteType: "TINYINT",
        T.ShortType: "SMALLINT",
        T.IntegerType: "INTEGER",
        T.LongType: "BIGINT",
        T.FloatType: "FLOAT",
        T.DoubleType: "DOUBLE",
        T.BooleanType: "BOOLEAN",
        T.TimestampType: "TIMESTAMP",
        T.TimestampNTZType: "TIMESTAMP",
        T.NullType: '"NULL"',
    }
    for kind, name in simple.items():
        if isinstance(spark_type, kind):
            return name
    if isinstance(spark_type, T.DecimalType):
        return f"DECIMAL({spark_type.precision},{spark_type.scale})"
    return spark_type.simpleString().upper()


# ---------------------------------------------------------------------------------------------
# session

_SESSION_LOCK = threading.Lock()


def spark_session(master: str, app_name: str = "mgca") -> SparkSession:
    """The process's Spark session for ``master`` (created once, then reused).

    Local masters bind the driver to 127.0.0.1; the Spark UI is off. ANSI mode is off so that
    SQL semantics match DuckDB's (e.g. x / 0 is NULL, not an error). Times are naive: the
    session time zone is UTC and the canonical times are cast to TIMESTAMP_NTZ.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "the Spark engine needs pyspark and sqlglot: pip install 'mgca[spark]' "
            "(and Java 17 or later on the PATH)"
        ) from exc
    with _SESSION_LOCK:
        builder = (
            SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.ansi.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true")
        )
        if master.startswith("local"):
            builder = (
                builder.config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.driver.memory", "2g")
            )
        return builder.getOrCreate()


# ---------------------------------------------------------------------------------------------
# translation


@dataclass(frozen=True)
class SparkStatement:
    """One ``CREATE OR REPLACE TABLE table AS <query>`` translated to Spark SQL.

    ``ctes`` are its WITH clauses, each its own query over the views before it (renamed
    ``_cte_<table>_<name>`` so names never collide across files); ``query`` is the final
    SELECT. Spark inlines a CTE at every reference, so chains of CTEs used twice each grow
    the plan exponentially; run as persisted views they are computed once.
    """

    table: str
    ctes: tuple[tuple[str, str], ...]
    query: str


def _rename_tables(node: Any, names: dict[str, str]) -> Any:
    """Point references to CTE ``names`` at their views (keeping the name as the alias)."""
    from sqlglot import exp

    def rename(n: Any) -> Any:
        if isinstance(n, exp.Table) and not n.args.get("db") and n.name in names:
            alias = n.alias or n.name
            return exp.to_table(names[n.name]).as_(alias)
        return n

    return node.transform(rename)


def translate(sql: str, sql_file: str = "<sql>") -> list[SparkStatement]:
    """The Spark SQL of each ``CREATE OR REPLACE TABLE table AS <query>`` of a DuckDB SQL
    file; anything else raises :class:`DerivationError` naming the file."""
    import sqlglot
    from sqlglot import exp

    statements: list[SparkStatement] = []
    for tree in sqlglot.parse(sql, read="duckdb"):
        if tree is None:
            continue
        query = tree.expression if isinstance(tree, exp.Create) else None
        if (
            not isinstance(tree, exp.Create)
            or tree.kind != "TABLE"
            or not isinstance(query, exp.Query)
        ):
            raise DerivationError(
                f"{sql_file}: only 'CREATE OR REPLACE TABLE name AS SELECT ...' statements "
                f"run on Spark; found: {tree.sql(dialect='duckdb')[:120]}",
                sql_file,
            )
        table = tree.this.find(exp.Table)
        if table is None:
            raise DerivationError(f"{sql_file}: CREATE TABLE without a table name", sql_file)
        query = query.copy()
        with_ = query.args.get("with_") or query.args.get("with")
        names: dict[str, str] = {}
        ctes: list[tuple[str, str]] = []
        if with_ is not None:
            for cte in with_.expressions:
                body = _rename_tables(cte.this.copy(), names)
                view = f"_cte_{table.name}_{cte.alias}"
                ctes.append((view, body.sql(dialect="spark")))
                names[cte.alias] = view
            query.set("with_" if "with_" in query.args else "with", None)
            query = _rename_tables(query, names)
        statements.append(SparkStatement(table.name, tuple(ctes), query.sql(dialect="spark")))
    return statements


# ---------------------------------------------------------------------------------------------
# inputs


def _location(data_dir: str, table: str, fmt: str) -> str:
    base = data_dir.rstrip("/")
    return f"{base}/{table}" if fmt == "delta" else f"{base}/{table}.parquet"


def _missing_data_source(exc: BaseException) -> bool:
    """Whether ``exc`` is Spark's "no such data source" error (condition DATA_SOURCE_NOT_FOUND,
    raised at ``load()`` when no jar on the classpath registers the format)."""
    condition = getattr(exc, "getCondition", None)
    if callable(condition) and condition() == "DATA_SOURCE_NOT_FOUND":
        return True
    # pyspark 4 passes SparkClassNotFoundException through as a Py4JJavaError
    return "[DATA_SOURCE_NOT_FOUND]" in str(exc)


#: Most distinct partition values of a Delta table read without delta-spark: each is its own
#: Parquet read, unioned, and Spark's planning time grows with their number (500: ~15 s on
#: 2 cores).
MAX_DELTA_PARTITIONS = 500


def read_delta_files(spark: SparkSession, snapshot: DeltaSnapshot, table: str) -> DataFrame:
    """The canonical columns of ``snapshot`` (a Delta table resolved by delta-rs) read by
    Spark as Parquet: exactly its active files, with the table schema (columns that older
    files lack read as NULL) and the partition values of canonical partition columns added
    back from the log (Delta keeps them out of the data files).

    Files are read once per distinct value of the canonical partition columns (partitions
    on other columns are merged); more than :data:`MAX_DELTA_PARTITIONS` of those raise
    :class:`DeltaInputError`.
    """
    from functools import reduce

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    wanted = {column.name for column in CANONICAL_TABLES[table]}
    fields = {
        spec["name"]: T.StructField.fromJson(spec)
        for spec in snapshot.schema_fields
        if spec["name"] in wanted
    }
    partitions = [name for name in snapshot.partition_columns if name in fields]
    data_schema = T.StructType([f for name, f in fields.items() if name not in partitions])
    groups: dict[tuple[Any, ...], list[str]] = {}
    for group in snapshot.groups:
        values = dict(group.partition_values)
        key = tuple(values.get(name) for name in partitions)
        groups.setdefault(key, []).extend(group.paths)
    if len(groups) > MAX_DELTA_PARTITIONS:
        raise DeltaInputError(
            f"{snapshot.location}: the Delta table has {len(groups):,} partitions on "
            f"{', '.join(partitions)}; without delta-spark each is read separately, and more "
            f"than {MAX_DELTA_PARTITIONS} make Spark's plan too large. Fix: put the "
            "delta-spark package on the Spark cluster, or write the table partitioned by a "
            "column that is not canonical (e.g. a load date) or not at all."
        )
    parts: list[DataFrame] = []
    for key, paths in groups.items():
        frame = spark.read.schema(data_schema).parquet(*paths)
        if partitions:
            frame = frame.select(
                "*",
                *[
                    F.lit(value).cast(fields[name].dataType).alias(name)
                    for name, value in zip(partitions, key, strict=True)
                ],
            )
        parts.append(frame)
    if not parts:  # a table with no rows has no files
        return spark.createDataFrame([], T.StructType(list(fields.values())))
    return reduce(lambda a, b: a.unionByName(b), parts)


@dataclass
class _DeltaReader:
    """Reads Delta tables natively when Spark has the ``delta`` data source (delta-spark on
    the cluster), otherwise through :func:`mgca.sources.delta_snapshot.read_snapshot`."""

    spark: SparkSession
    versions: Mapping[str, int]
    native: bool = True
    snapshots: list[str] = field(default_factory=list)

    def load(self, table: str, location: str) -> DataFrame:
        version = self.versions.get(table)
        if self.native:
            reader = self.spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            try:
                return reader.load(location)
            except Exception as exc:
                if not _missing_data_source(exc):
                    raise
                self.native = False
        snapshot = read_snapshot(location, version)
        self.snapshots.append(f"{table} v{snapshot.version} ({snapshot.n_files} files)")
        return read_delta_files(self.spark, snapshot, table)


def register_canonical(
    spark: SparkSession,
    data_dir: str,
    config: MgcaConfig,
    data_format: str | None = None,
    delta_versions: Mapping[str, int] | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Read the four canonical tables on Spark as temporary views with the canonical types,
    after checking their columns and types; return the rows of each table.

    ``data_dir`` is a local folder or a URL the cluster reads (``s3a://``, ``abfss://``,
    ``hdfs://``, ``file://``), passed to Spark unchanged. ``data_format`` ("parquet" or
    "delta"; default ``config.engine.spark_format``) says how the tables are stored.
    Delta tables are read at ``delta_versions[table]`` when given (the versions the run's
    input fingerprint names), else at their latest version: natively when Spark has the
    ``delta`` data source, else as the snapshot's active Parquet files resolved by delta-rs
    (:mod:`mgca.sources.delta_snapshot`, which refuses tables a plain Parquet read would get wrong).

    Raises :class:`CanonicalSchemaError` naming the file, column and fix (the DuckDB loader's
    rules and messages), including null ids and repeated keys.
    """
    fmt = data_format or config.engine.spark_format
    delta = _DeltaReader(spark, delta_versions or {})
    frames: dict[str, DataFrame] = {}
    problems: list[str] = []
    for table in CANONICAL_TABLES:
        location = _location(data_dir, table, fmt)
        try:
            if fmt == "delta":
                frame = delta.load(table, location)
            else:
                frame = spark.read.format("parquet").load(location)
        except DeltaInputError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # AnalysisException: path missing or unreadable
            problems.append(
                f"{Path(location).name}: cannot be read by Spark from {location} "
                f"({str(exc).splitlines()[0][:200]}). Fix: point --path at the folder a "
                "source adapter wrote, reachable from every Spark executor."
            )
            continue
        schema = {f.name: _duckdb_type_name(f.dataType) for f in frame.schema.fields}
        problems += _schema_problems(table, Path(location), schema)
        frames[table] = frame
    if problems:
        raise CanonicalSchemaError(
            f"canonical input in {data_dir} does not match the contract:\n  "
            + "\n  ".join(problems)
        )
    if progress is not None and delta.snapshots:
        progress(
            "Spark has no delta data source (delta-spark): read the Delta snapshots' active "
            "Parquet files resolved by delta-rs: " + ", ".join(delta.snapshots)
        )
    counts: dict[str, int] = {}
    for table, columns in CANONICAL_TABLES.items():
        present = set(frames[table].columns)
        frames[table].createOrReplaceTempView(f"_raw_{table}")
        select = ", ".join(
            f"CAST({'`' + c.name + '`' if c.name in present else 'NULL'} AS "
            f"{_SPARK_TYPES[c.type]}) AS `{c.name}`"
            for c in columns
        )
        view = spark.sql(f"SELECT {select} FROM `_raw_{table}`")
        view.createOrReplaceTempView(table)
        checks = ["COUNT(*) AS n_rows"] + [
            f"SUM(CASE WHEN `{c.name}` IS NULL THEN 1 ELSE 0 END) AS `null_{c.name}`"
            for c in columns
            if not c.nullable
        ]
        key = UNIQUE_KEYS.get(table)
        if key:
            checks.append(f"COUNT(*) - COUNT(DISTINCT `{key}`) AS repeated_key")
        row = spark.sql(f"SELECT {', '.join(checks)} FROM `{table}`").first()
        values = row.asDict() if row is not None else {}
        counts[table] = int(values.get("n_rows") or 0)
        for column in columns:
            n_null = int(values.get(f"null_{column.name}") or 0)
            if not column.nullable and n_null:
                problems.append(
                    f"{table}: column '{column.name}' has {n_null} null value(s); expected "
                    "NOT NULL. Fix: drop or repair those rows in the source adapter."
                )
        if key and values.get("repeated_key"):
            problems.append(
                f"{table}: column '{key}' has {values['repeated_key']} repeated value(s); "
                f"expected unique. Fix: write one row per {key} in the source adapter."
            )
    if problems:
        raise CanonicalSchemaError(
            f"canonical input in {data_dir} breaks the contract:\n  " + "\n  ".join(problems)
        )
    return counts


def register_small_inputs(spark: SparkSession, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Ship the reference tables (every ``sql/reference`` CSV) and the study config from the
    run's DuckDB to Spark views; return their names."""
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    loaded = {t.name for t in registry.TABLES if t.written_by == "load"}  # not SQL inputs
    shipped = sorted(
        name for name in present if name not in CANONICAL_TABLES and name not in loaded
    )
    missing = [name for name in registry.small_inputs() if name not in present]
    if missing:
        raise DerivationError(f"the run's database lacks the input table(s) {missing}")
    for table in shipped:
        _ship_to_spark(spark, con, table)
    return shipped


# ---------------------------------------------------------------------------------------------
# derivation and pull-back


def derive_on_spark(
    spark: SparkSession, progress: Progress | None = None, steps: list[str] | None = None
) -> list[str]:
    """Run the files ``steps`` (default every file of :data:`mgca.engine.derive.SQL_STEPS`), in
    order and translated, on Spark; return the tables created (each persisted and registered
    as a temporary view, replacing a view of the same name)."""
    from pyspark.storagelevel import StorageLevel

    created: list[str] = []
    steps = SQL_STEPS if steps is None else steps
    n_steps = len(steps)
    for number, sql_file in enumerate(steps, start=1):
        if progress is not None:
            progress(f"derive (spark) {number}/{n_steps}: {sql_file}")
        for statement in translate(read_sql(sql_file), sql_file):
            parts: list[DataFrame] = []
            try:
                for view, cte_query in statement.ctes:
                    part = spark.sql(cte_query).persist(StorageLevel.MEMORY_AND_DISK)
                    part.createOrReplaceTempView(view)
                    parts.append(part)
                # computed now (a failure names this file) and cut from its lineage, so later
                # steps see a plain scan and dropping the CTE views never recomputes it
                frame = spark.sql(statement.query).localCheckpoint(eager=True)
            except Exception as exc:
                raise DerivationError(
                    f"SQL step {number}/{n_steps} {sql_file} (table {statement.table}) failed "
                    f"on Spark: {str(exc).splitlines()[0][:400]}",
                    sql_file,
                ) from exc
            frame.createOrReplaceTempView(statement.table)
            for (view, _), part in zip(statement.ctes, parts, strict=True):
                part.unpersist()
                spark.catalog.dropTempView(view)
            created.append(statement.table)
    return created


def duckdb_schemas(config: MgcaConfig, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Column names and DuckDB types of ``tables`` as the DuckDB engine derives them (from a
    derivation on empty canonical tables), so pulled-back tables match them exactly."""
    con = open_database(":memory:", config)
    try:
        for table, columns in CANONICAL_TABLES.items():
            con.execute(
                f'CREATE TABLE "{table}" ('
                + ", ".join(f'"{c.name}" {c.type}' for c in columns)
                + ")"
            )
        create_care_events_table(con)
        load_reference_tables(con)
        write_study_config(con, config)
        derive(con)
        return {table: con.execute(f'DESCRIBE "{table}"').fetchall() for table in tables}
    finally:
        con.close()


def pull_back(
    spark: SparkSession,
    con: duckdb.DuckDBPyConnection,
    config: MgcaConfig,
    tables: tuple[str, ...] | None = None,
) -> dict[str, int]:
    """Copy ``tables`` (default :func:`mgca.engine.registry.engine_outputs`) from Spark into
    ``con`` with the DuckDB engine's columns and types; return rows copied per table."""
    tables = registry.engine_outputs() if tables is None else tables
    schemas = duckdb_schemas(config, tables)
    return {table: _copy_to_duckdb(spark, con, table, table, schemas[table]) for table in tables}


def _copy_to_duckdb(
    spark: SparkSession,
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    columns: list[tuple],
) -> int:
    """Copy the Spark view ``source`` into the DuckDB table ``target`` with ``columns``
    (``DESCRIBE`` rows: name, DuckDB type, ...); return the rows copied."""
    frame = spark.table(source).select(*[name for name, *_ in columns])
    con.register("_mgca_pulled_back", frame.toArrow())
    try:
        select = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind, *_ in columns)
        con.execute(f'CREATE OR REPLACE TABLE "{target}" AS SELECT {select} FROM _mgca_pulled_back')
    finally:
        con.unregister("_mgca_pulled_back")
    [(n_rows,)] = con.execute(f'SELECT count(*) FROM "{target}"').fetchall()
    return int(n_rows)


def _ship_to_spark(spark: SparkSession, con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Register the (small) DuckDB table ``table`` of ``con`` as the Spark view ``table``."""
    arrow = con.sql(f'SELECT * FROM "{table}"').to_arrow_table()
    spark.createDataFrame(arrow).createOrReplaceTempView(table)


ALTERNATIVE_COHORT_PREFIX = "alternative_cohort__"
"""Pulled-back analytic table of a sensitivity window: ``alternative_cohort__<name>`` with the
name of :meth:`mgca.config.MgcaConfig.sensitivity_configs` (e.g. ``grace_12h``)."""


def derive_alternative_cohorts(
    spark: SparkSession,
    con: duckdb.DuckDBPyConnection,
    config: MgcaConfig,
    progress: Progress | None = None,
) -> dict[str, int]:
    """The analytic table of each alternative window of the sensitivity analyses, derived on
    Spark while the run's tables are there, pulled back into ``con`` as
    ``alternative_cohort__<name>``; returns rows per table.

    For each window the alternative study config is shipped to Spark and only the steps the
    changed settings reach are re-run (:func:`mgca.engine.derive.steps_to_rerun`, as
    :meth:`mgca.engine.duckdb_engine.DuckDBEngine.alternative_cohort` does), then the run's
    own study config is shipped back. Call after :func:`pull_back` (the re-run steps replace
    the views
    of the run's tables up to ``analytic_cohort``). Because they replace them, "changed" is
    measured against the window derived just before, not the run: after a longer grace
    period, a horizon window must re-run the exposure step too, or it would read the
    previous window's exposure table."""
    # the run's analytic table, just pulled back, has the DuckDB engine's columns and types
    columns = con.execute('DESCRIBE "analytic_cohort"').fetchall()
    counts: dict[str, int] = {}
    derived_with = config  # the config the current Spark views were derived with
    try:
        for name, _, alt in config.sensitivity_configs():
            steps = steps_to_rerun(settings_changed(derived_with, alt), registry.LAST_COHORT_STEP)
            _ship_study_config(spark, alt)
            derive_on_spark(spark, progress, steps)
            derived_with = alt
            table = f"{ALTERNATIVE_COHORT_PREFIX}{name}"
            counts[table] = _copy_to_duckdb(spark, con, "analytic_cohort", table, columns)
    finally:
        _ship_study_config(spark, config)
    return counts


def _ship_study_config(spark: SparkSession, config: MgcaConfig) -> None:
    """Replace the Spark views ``study_config`` and ``study_outcome_horizons`` with
    ``config``'s (built by :func:`mgca.engine.database.write_study_config`, as for the run)."""
    con = duckdb.connect(":memory:")
    try:
        write_study_config(con, config)
        for table in ("study_config", "study_outcome_horizons"):
            _ship_to_spark(spark, con, table)
    finally:
        con.close()


def unpersist_all(spark: SparkSession) -> None:
    """Free what the derivation cached on the cluster."""
    spark.catalog.clearCache()


class SparkEngine:
    """Runs the SQL on Spark (see the module docstring and :class:`mgca.engine.base.Engine`).

    The session is the process's session for ``config.engine.spark_master``. The sensitivity
    windows' cohorts are derived while the run's tables are on Spark (:func:`derive` calls
    :func:`derive_alternative_cohorts`) and read back from the run's DuckDB afterwards.
    """

    name = "spark"
    reads_in_place = True

    def default_format(self, config: MgcaConfig) -> str:
        return config.engine.spark_format

    def pin(self, source: SourceTables) -> SourceTables:
        if source.data_format != "delta" or source.delta_versions:
            return source
        base = source.location.rstrip("/")
        found = snapshot_versions({t: f"{base}/{t}" for t in registry.canonical_inputs()})
        versions = {table: version for table, (_, version) in found.items()}
        return SourceTables(source.location, source.data_format, versions)

    @staticmethod
    def _require_location(source: SourceTables) -> None:
        if not source.location:
            raise ValueError("the Spark engine needs the canonical data folder (data_dir)")

    def load(
        self,
        source: SourceTables,
        db_path: Path,
        config: MgcaConfig,
        progress: Progress | None = None,
    ) -> dict[str, int]:

        self._require_location(source)
        spark = spark_session(config.engine.spark_master)
        counts = register_canonical(
            spark,
            source.location,
            config,
            source.data_format,
            source.delta_versions,
            progress,
        )
        con = open_database(db_path, config)
        try:
            write_run_inputs(con, Path(source.location), counts, config)
        finally:
            con.close()
        return counts

    def derive(
        self,
        source: SourceTables,
        db_path: Path,
        config: MgcaConfig,
        progress: Progress | None = None,
    ) -> int:
        self._require_location(source)
        spark = spark_session(config.engine.spark_master)
        con = open_database(db_path, config)
        try:
            register_canonical(
                spark, source.location, config, source.data_format, source.delta_versions
            )
            register_small_inputs(spark, con)
            try:
                derive_on_spark(spark, progress)
                pull_back(spark, con, config)
                # the sensitivity windows need the lab-level tables, which stay on Spark
                derive_alternative_cohorts(spark, con, config, progress)
            finally:
                unpersist_all(spark)
            row = con.execute(f"SELECT count(*) FROM {registry.ANALYTIC_COHORT}").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    def alternative_cohort(
        self, db_path: Path, name: str, config: MgcaConfig, work_dir: Path
    ) -> pd.DataFrame:
        """The cohort :func:`derive_alternative_cohorts` pulled back as
        ``alternative_cohort__<name>``."""
        target = f"{ALTERNATIVE_COHORT_PREFIX}{name}"
        order = registry.table(registry.ANALYTIC_COHORT).order_by
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            present = {
                t
                for (t,) in con.execute(
                    "SELECT table_name FROM information_schema.tables"
                ).fetchall()
            }
            if target not in present:
                raise CohortUnavailable(
                    "the run's database holds the analytic table but not the tables it was "
                    "derived from (a Spark-engine run), and no cohort for this window was "
                    "pulled back from Spark; run again with --no-cache"
                )
            return con.execute(f'SELECT * FROM "{target}" ORDER BY {order}').df()
        finally:
            con.close()

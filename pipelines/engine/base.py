"""The engine interface: what runs the SQL of ``mgca.sql`` over a run's canonical tables.

Every engine leaves the same thing behind: the run's DuckDB file (``private/mgca.duckdb``)
holding the study config, the reference tables, the source row counts and every table of
:func:`mgca.engine.registry.engine_outputs`, with the DuckDB engine's columns and types. The
models and the report read only that file, so they never know which engine ran.

- :class:`mgca.engine.duckdb_engine.DuckDBEngine` (the embedded default) loads the canonical
  tables into the file and runs every step there.
- :class:`mgca.engine.spark.SparkEngine` reads the canonical tables on a Spark cluster, runs
  the same SQL translated by sqlglot, and brings back only the registry's outputs.

:func:`engine_for` is the one place that picks an engine by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from mgca.config import MgcaConfig
from mgca.engine.registry import Table

Progress = Callable[[str], None]
"""Called with one line of progress, e.g. before each SQL step ``"derive 4/22:
low_value_episodes.sql"``; lines carry aggregates only."""


@dataclass(frozen=True)
class SourceTables:
    """Where a run's four canonical tables are.

    ``location`` is a local folder, or with the Spark engine a URL the cluster reads;
    ``data_format`` is ``"parquet"`` or ``"delta"``; ``delta_versions`` pins each Delta
    table's version (the run reads one snapshot from its start to its end).
    """

    location: str
    data_format: str = "parquet"
    delta_versions: Mapping[str, int] | None = field(default=None)


class CohortUnavailable(LookupError):
    """A re-derived cohort cannot be had from this run's database (the message says why and
    what to do)."""


class Engine(Protocol):
    """What a run needs from an engine (see the module docstring)."""

    name: str
    reads_in_place: bool
    """True when the engine reads the canonical tables where they are (a folder or URL its
    workers reach, stored as ``engine.spark_format``) instead of copying them into the run's
    DuckDB file from a local folder of Parquet files."""

    def default_format(self, config: MgcaConfig) -> str:
        """How this engine expects the canonical tables stored when the run does not say
        (``"parquet"``, or with Spark ``engine.spark_format``)."""
        ...

    def pin(self, source: SourceTables) -> SourceTables:
        """``source`` with every table's version fixed (Delta: the version current now), so
        load and derive read one snapshot."""
        ...

    def load(
        self,
        source: SourceTables,
        db_path: Path,
        config: MgcaConfig,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        """Check the canonical tables and create ``db_path`` with what the SQL reads that is
        made in Python (study config, reference tables, source row counts); the DuckDB engine
        also copies the canonical tables in. Returns the rows of each canonical table."""
        ...

    def derive(
        self,
        source: SourceTables,
        db_path: Path,
        config: MgcaConfig,
        progress: Progress | None = None,
    ) -> int:
        """Run every SQL step and export every registry output table into ``db_path``;
        return the number of analysed episodes. ``progress`` gets one line per step."""
        ...

    def alternative_cohort(
        self, db_path: Path, name: str, config: MgcaConfig, work_dir: Path
    ) -> pd.DataFrame:
        """The analytic table re-derived by the same SQL under ``config`` (the sensitivity
        window ``name`` of :meth:`MgcaConfig.sensitivity_configs`), in the registry's order.
        Raises :class:`CohortUnavailable` when this run's database cannot give it."""
        ...


def read_table(db_path: Path, table: Table | str) -> pd.DataFrame:
    """A registered table (or any query, given as SQL text) from a run's database, read-only,
    in its stable order."""
    sql = table.select() if isinstance(table, Table) else table
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def engine_for(name: str) -> Engine:
    """The engine called ``name`` in the config's ``engine.name`` (``duckdb`` or ``spark``)."""
    from mgca.engine.duckdb_engine import DuckDBEngine
    from mgca.engine.spark import SparkEngine

    engines: dict[str, Callable[[], Engine]] = {"duckdb": DuckDBEngine, "spark": SparkEngine}
    try:
        return engines[name]()
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose one of {sorted(engines)}") from None

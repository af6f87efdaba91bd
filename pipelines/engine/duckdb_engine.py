"""The embedded default engine: the canonical tables are copied into the run's DuckDB file,
except the lab rows, read from their Parquet file in place until ``lab_harmonised`` holds them
(:data:`mgca.engine.database.IN_PLACE_TABLES`), and every step of ``mgca.sql`` runs there."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from mgca.config import MgcaConfig
from mgca.engine import registry
from mgca.engine.base import CohortUnavailable, Progress, SourceTables
from mgca.engine.database import (
    IN_PLACE_TABLES,
    load_canonical,
    open_database,
    write_run_inputs,
    write_study_config,
)
from mgca.engine.derive import derive, read_sql, settings_changed_from_run, steps_to_rerun


class DuckDBEngine:
    """Runs the SQL in the run's own DuckDB file (see :class:`mgca.engine.base.Engine`)."""

    name = "duckdb"
    reads_in_place = False

    def default_format(self, config: MgcaConfig) -> str:
        return "parquet"

    def pin(self, source: SourceTables) -> SourceTables:
        return source  # local Parquet files: the input fingerprint pins them

    def load(
        self,
        source: SourceTables,
        db_path: Path,
        config: MgcaConfig,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        data_dir = Path(source.location)
        con = open_database(db_path, config)
        try:
            counts = load_canonical(con, data_dir, in_place=IN_PLACE_TABLES)
            write_run_inputs(con, data_dir, counts, config)
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
        con = open_database(db_path, config)
        try:
            derive(con, progress=progress)
            row = con.execute(f"SELECT count(*) FROM {registry.ANALYTIC_COHORT}").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    def alternative_cohort(
        self, db_path: Path, name: str, config: MgcaConfig, work_dir: Path
    ) -> pd.DataFrame:
        """Re-derived from the run's database: a new database in ``work_dir`` (deleted
        afterwards) attaches ``db_path`` read-only, gets ``config``'s study_config, and re-runs
        only the steps up to :data:`mgca.engine.registry.LAST_COHORT_STEP` that the changed
        settings reach (:func:`mgca.engine.derive.steps_to_rerun`: from the first step that
        reads one of them); unqualified table names resolve to the new database first and to
        the run's second, so the steps before read the run's tables as they are. Nothing is
        copied and the run's own database is never changed. At 1e7 lab rows a changed grace
        period re-runs 5 of the 12 cohort steps, on episode-sized tables."""
        cohort = registry.table(registry.ANALYTIC_COHORT)
        with tempfile.TemporaryDirectory(prefix="sensitivity-", dir=work_dir) as folder:
            con = open_database(Path(folder) / "alternative.duckdb", config)
            try:
                con.execute("ATTACH ? AS run (READ_ONLY)", [str(db_path)])
                present = {
                    t
                    for (t,) in con.execute(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_catalog = 'run'"
                    ).fetchall()
                }
                if "index_events" not in present:
                    raise CohortUnavailable(
                        "the run's database holds the analytic table but not the tables it "
                        "was derived from; run again with --no-cache"
                    )
                changed = settings_changed_from_run(con, config, "run")
                con.execute("SET search_path = 'alternative.main,run.main'")
                write_study_config(con, config)
                for step in steps_to_rerun(changed, registry.LAST_COHORT_STEP):
                    con.execute(read_sql(step))
                return con.execute(cohort.select()).df()
            finally:
                con.close()

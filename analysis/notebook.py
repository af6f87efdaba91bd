"""A Python API for analysts working in a notebook on a finished run folder.

    from mgca.api import open_run

    run = open_run("reports/run-20261124T220101Z-3fa2c1")
    run.results["estimates"][0]                       # results.json, as written
    cohort = run.cohort()                             # analytic table, pandas (ids: private)
    cohort_pl = run.cohort(kind="polars")
    run.table("attrition")                            # any derived table of the run's DuckDB
    run.sql("SELECT exposed, count(*) AS n FROM analytic_cohort GROUP BY exposed")
    refit = run.refit(covariates=[*run.adjustment_set, "baseline_potassium_mmol_l"])
    fig = run.figure_trajectory()                     # a matplotlib Figure

Everything is read-only: the run's ``private/mgca.duckdb`` is opened with
``read_only=True`` and nothing in the run folder is changed. Estimates come from the same
functions the pipeline uses (``mgca.analysis.estimation.models``), never a re-implementation, so a
refit with the default covariates reproduces the run's primary estimate.

Privacy: ``cohort()``, ``table()`` and ``sql()`` return patient-level rows with subject and
encounter ids, as the run's ``private/`` folder does. Keep notebooks that show them inside
the environment that holds the data; share aggregates only (``mgca.analysis.privacy``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from mgca.analysis.estimation.models import ADJUSTMENT_SET, fit_primary
from mgca.analysis.privacy import count_rule
from mgca.analysis.report.figures import calcium_trajectory_plot
from mgca.config import MgcaConfig, load_config
from mgca.engine import registry
from mgca.ops.history import list_runs
from mgca.run.outputs import PRIVATE_DB

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RunFolderError(ValueError):
    """A folder that is not a complete mgca run folder; the message names what is missing."""


class Run:
    """One finished run folder, opened read-only. Use as a context manager or call ``close``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        for name in ("results.json", "config.yaml", PRIVATE_DB):
            if not (self.folder / name).is_file():
                raise RunFolderError(
                    f"{self.folder} has no {name}; open a folder written by `mgca run` "
                    "(for example reports/run-<UTC time>-<id>)"
                )
        self.results: dict[str, Any] = json.loads(
            (self.folder / "results.json").read_text(encoding="utf-8")
        )
        self.config: MgcaConfig = load_config(self.folder / "config.yaml")
        self._con: duckdb.DuckDBPyConnection | None = None

    # -- database --------------------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A read-only DuckDB connection to the run's database (opened on first use)."""
        if self._con is None:
            self._con = duckdb.connect(str(self.folder / PRIVATE_DB), read_only=True)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        """Names of the tables in the run's database (ARCHITECTURE.md describes them)."""
        return [r[0] for r in self.con.execute("SHOW TABLES").fetchall()]

    def sql(self, query: str, kind: Literal["pandas", "polars"] = "pandas") -> Any:
        """Run a read-only SQL query against the run's database."""
        result = self.con.sql(query)
        return result.pl() if kind == "polars" else result.df()

    def table(self, name: str, kind: Literal["pandas", "polars"] = "pandas") -> Any:
        """A whole table of the run's database, e.g. ``"attrition"`` or ``"lab_harmonised"``."""
        if not _IDENTIFIER.match(name) or name not in self.tables():
            raise KeyError(f"no table {name!r} in this run; tables: {', '.join(self.tables())}")
        return self.sql(f'SELECT * FROM "{name}"', kind)

    def cohort(self, kind: Literal["pandas", "polars"] = "pandas") -> Any:
        """The analytic table (one row per analysed episode, with ids), in a stable order."""
        return self.sql(registry.table(registry.ANALYTIC_COHORT).select(), kind)

    # -- results ---------------------------------------------------------------------------
    @property
    def estimates(self) -> pd.DataFrame:
        """results.json ``estimates`` as a frame (one row per estimate)."""
        return pd.DataFrame(self.results.get("estimates", []))

    @property
    def primary(self) -> dict[str, Any] | None:
        return next((e for e in self.results.get("estimates", []) if e["name"] == "primary"), None)

    @property
    def adjustment_set(self) -> list[str]:
        """The primary model's adjustment set (cohort column names)."""
        return list(ADJUSTMENT_SET)

    def refit(self, covariates: Sequence[str] | None = None) -> dict[str, Any]:
        """Refit the primary outcome model with other ``covariates`` (cohort columns).

        Uses ``mgca.analysis.estimation.models.fit_primary`` (regression adjustment with exposure ×
        covariate interaction, patient-clustered SEs), so ``refit()`` with no covariates given
        reproduces the run's primary estimate. Baseline Mg and corrected Ca get splines,
        creatinine a log, sex a factor, every other column enters linearly (booleans as 0/1).
        Returns the estimate entry (estimand, estimate, CI, n, adjustment set, notes); counts
        are not suppressed here (private).
        """
        return fit_primary(self.cohort(), self.config.study, adjustment_set=covariates)

    def figure_trajectory(self) -> Any:
        """The report's calcium trajectory figure as a matplotlib ``Figure`` (aggregates from
        ``calcium_trajectory_summary``; bins below the small-cell threshold not drawn)."""
        summary = self.sql(registry.table("calcium_trajectory_summary").select())
        return calcium_trajectory_plot(
            summary, count_rule(self.config), self.config.study
        )

    def __repr__(self) -> str:
        p = self.primary
        est = "no estimate" if not p or p.get("estimate") is None else f"{p['estimate']:+.3f}"
        return f"<mgca Run {self.folder.name}: primary {est} mmol/L>"


def open_run(folder: str | Path) -> Run:
    """Open a run folder written by `mgca run` (read-only)."""
    return Run(Path(folder))


def latest_run(reports_root: str | Path = "reports") -> Run:
    """Open the most recent run folder under ``reports_root`` (by run start time)."""
    runs = list_runs(Path(reports_root))
    if not runs:
        raise RunFolderError(f"no run folders under {reports_root}; run `mgca run` first")
    return open_run(Path(reports_root) / runs[0]["run_id"])


__all__ = ["Run", "RunFolderError", "latest_run", "open_run"]

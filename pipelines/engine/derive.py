"""Run the SQL of ``mgca.sql`` that derives every table from the loaded canonical data.

Public API: :data:`SQL_STEPS` (file names in run order), :func:`derive` and
:class:`DerivationError`. Before :func:`derive`, load the inputs with
:mod:`mgca.engine.database`: ``load_canonical``, ``write_study_config`` and
``load_reference_tables``. Each file creates its tables with ``CREATE OR REPLACE TABLE``, so
running :func:`derive` again on the same database gives the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from importlib import resources

import duckdb

# File names in run order; each file's header names the tables it reads and writes.
SQL_STEPS: list[str] = [
    "lab_harmonised.sql",  # lab_harmonised
    "calcium_corrected.sql",  # calcium_corrected
    "calcium_status.sql",  # calcium_status
    "low_value_episodes.sql",  # low_value_episodes, hypo{magnesaemia,calcaemia,kalaemia}_episodes
    "hypocalcaemia_pth_status.sql",  # hypocalcaemia_pth_status
    "medication_harmonised.sql",  # medication_harmonised, mg_repletion, calcium_supplementation
    "index_events.sql",  # index_events
    "index_exposure.sql",  # index_exposure
    "index_covariates.sql",  # index_covariates
    "index_outcome.sql",  # index_outcome_horizons, index_outcome
    "cohort_eligibility.sql",  # eligibility_steps, cohort_eligibility
    "analytic_cohort.sql",  # analytic_cohort, cohort_outcomes
    "attrition.sql",  # attrition
    "episode_calcium_measures.sql",  # episode_calcium_measures
    "calcium_trajectory_summary.sql",  # calcium_trajectory_summary
    "analyte_trajectory_summary.sql",  # analyte_trajectory_summary
    "trajectory_sample.sql",  # trajectory_sample
    "data_quality.sql",  # data_quality
    # secondary and sensitivity analyses (issue 4): per-episode, read by mgca.analysis
    "calcium_correction_time.sql",  # index_calcium_correction
    "pth_response.sql",  # index_pth_response
    "calcium_trajectory_points.sql",  # calcium_trajectory_points (row level, private)
    "kidney_function.sql",  # index_kidney_function
]

# Tables the SQL reads but does not create, and the call that provides each.
REQUIRED_INPUTS: dict[str, str] = {
    "persons": "mgca.engine.database.load_canonical",
    "encounters": "mgca.engine.database.load_canonical",
    "lab_results": "mgca.engine.database.load_canonical",
    "medication_administrations": "mgca.engine.database.load_canonical",
    "study_config": "mgca.engine.database.write_study_config",
    "study_outcome_horizons": "mgca.engine.database.write_study_config",
    "unit_conversions": "mgca.engine.database.load_reference_tables",
    "analyte_bounds": "mgca.engine.database.load_reference_tables",
    "ingredients": "mgca.engine.database.load_reference_tables",
    "ctcae_grades": "mgca.engine.database.load_reference_tables",
}

Progress = Callable[[str], None]
"""Called before each step with a line such as ``"derive 4/15: low_value_episodes.sql"``."""


class DerivationError(RuntimeError):
    """A derivation step failed; ``sql_file`` names the file (None: inputs missing)."""

    def __init__(self, message: str, sql_file: str | None = None) -> None:
        super().__init__(message)
        self.sql_file = sql_file


def read_sql(sql_file: str) -> str:
    """The text of one SQL file of the ``mgca.sql`` package."""
    return resources.files("mgca.sql").joinpath(sql_file).read_text(encoding="utf-8")


_COMMENT_OR_LITERAL = re.compile(r"('(?:[^']|'')*')|--[^\n]*")
_CONFIG_COLUMN = re.compile(r"\bcfg\.([a-z_][a-z0-9_]*)")
_CONFIG_TABLE = re.compile(r"\bstudy_config\b(?!\s+AS\s+cfg\b)")


def config_inputs(sql_file: str, sql: str | None = None) -> frozenset[str]:
    """The ``study_config`` columns a step reads, plus ``"study_outcome_horizons"`` when it
    reads that table: what a changed setting must reach for the step's tables to change.
    ``sql`` is the file's text (default: read from ``mgca.sql``).

    Every step reads ``study_config`` under the alias ``cfg`` (``... JOIN study_config AS
    cfg`` and ``cfg.<column>``); a step that reads it any other way raises ValueError, so a
    new file cannot slip past this analysis (tests/test_derive_dependencies.py runs it on
    every file).
    """
    # comments and text literals name settings they do not read (a '--' inside a literal
    # does not start a comment): both are blanked before the search
    text = _COMMENT_OR_LITERAL.sub(
        lambda m: "''" if m.group(1) else "", read_sql(sql_file) if sql is None else sql
    )
    if _CONFIG_TABLE.search(text):
        raise ValueError(
            f"{sql_file} reads study_config without the alias cfg; write "
            "'CROSS JOIN study_config AS cfg' and cfg.<column>"
        )
    inputs = set(_CONFIG_COLUMN.findall(text))
    if re.search(r"\bstudy_outcome_horizons\b", text):
        inputs.add("study_outcome_horizons")
    return frozenset(inputs)


def steps_to_rerun(changed: Iterable[str], last_step: str) -> list[str]:
    """The steps of :data:`SQL_STEPS` up to ``last_step`` to re-run after the settings
    ``changed`` (``study_config`` columns, or ``"study_outcome_horizons"``) changed: from the
    first step that reads one of them to ``last_step``. Every later step is re-run because it
    may read a table an earlier re-run step rewrote; the steps before it give the same tables
    as before and are kept."""
    changed = set(changed)
    steps = SQL_STEPS[: SQL_STEPS.index(last_step) + 1]
    for position, sql_file in enumerate(steps):
        if config_inputs(sql_file) & changed:
            return steps[position:]
    return []


def _check_inputs(con: duckdb.DuckDBPyConnection) -> None:
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    missing = [name for name in REQUIRED_INPUTS if name not in present]
    if missing:
        hints = sorted({REQUIRED_INPUTS[name] for name in missing})
        raise DerivationError(
            f"derive needs the input table(s) {', '.join(missing)}; "
            f"call {' and '.join(hints)} first"
        )
    (n_config_rows,) = con.execute("SELECT count(*) FROM study_config").fetchone()
    if n_config_rows != 1:
        raise DerivationError(
            f"study_config must hold exactly one row, it holds {n_config_rows}; "
            "write it with mgca.engine.database.write_study_config"
        )


def derive(con: duckdb.DuckDBPyConnection, progress: Progress | None = None) -> None:
    """Run every file of :data:`SQL_STEPS` in order on ``con``.

    Raises :class:`DerivationError` naming the SQL file when DuckDB rejects a step.
    """
    _check_inputs(con)
    n_steps = len(SQL_STEPS)
    for number, sql_file in enumerate(SQL_STEPS, start=1):
        if progress is not None:
            progress(f"derive {number}/{n_steps}: {sql_file}")
        try:
            sql = read_sql(sql_file)
        except OSError as exc:
            raise DerivationError(
                f"SQL step {number}/{n_steps} {sql_file}: cannot be read from mgca.sql ({exc})",
                sql_file,
            ) from exc
        try:
            con.execute(sql)
        except duckdb.Error as exc:
            raise DerivationError(
                f"SQL step {number}/{n_steps} {sql_file} failed: {exc}", sql_file
            ) from exc

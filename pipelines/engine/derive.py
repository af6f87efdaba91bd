"""Run the SQL of ``mgca.sql`` that derives every table from the loaded canonical data.

Public API: :data:`SQL_STEPS` (file names in run order), :func:`derive` and
:class:`DerivationError`. Before :func:`derive`, load the inputs with
:mod:`mgca.engine.database`: ``load_canonical``, ``write_study_config`` and
``load_reference_tables``. Each file creates its tables with ``CREATE OR REPLACE TABLE``, so
running :func:`derive` again on the same database gives the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import duckdb

from mgca.config import MgcaConfig
from mgca.engine import registry
from mgca.engine.base import Progress
from mgca.engine.database import (
    lab_results_from_harmonised,
    study_config_values,
    study_outcome_horizons,
)
from mgca.engine.registry import SQL_STEPS, read_sql


class DerivationError(RuntimeError):
    """A derivation step failed; ``sql_file`` names the file (None: inputs missing)."""

    def __init__(self, message: str, sql_file: str | None = None) -> None:
        super().__init__(message)
        self.sql_file = sql_file


_COMMENT_OR_LITERAL = re.compile(r"('(?:[^']|'')*')|--[^\n]*")
_CONFIG_COLUMN = re.compile(r"\bcfg\.([a-z_][a-z0-9_]*)")
_CONFIG_TABLE = re.compile(r"\bstudy_config\b(?!\s+AS\s+cfg\b)")


def config_inputs(sql_file: str, sql: str | None = None) -> frozenset[str]:
    """The ``study_config`` columns a step reads, plus ``"study_outcome_horizons"`` when it
    reads that table: what a changed setting must reach for the step's tables to change.
    ``sql`` is the file's text (default: read from ``mgca.sql``).

    Every step reads ``study_config`` under the alias ``cfg`` (``... JOIN study_config AS
    cfg`` and ``cfg.<column>``); a step that reads it any other way raises ValueError, so a
    new file cannot slip past this analysis (tests/engine/test_derive_dependencies.py runs it on
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
    steps = list(SQL_STEPS[: SQL_STEPS.index(last_step) + 1])
    for position, sql_file in enumerate(steps):
        if config_inputs(sql_file) & changed:
            return steps[position:]
    return []


def _differences(
    values: dict[str, Any], horizons: list[tuple[int, bool]], config: MgcaConfig
) -> set[str]:
    """Study-config columns whose value differs from ``config``'s, plus
    ``"study_outcome_horizons"`` when the horizon rows differ."""
    wanted = study_config_values(config)
    changed = {
        name for name in values.keys() | wanted.keys() if values.get(name) != wanted.get(name)
    }
    if horizons != study_outcome_horizons(config):
        changed.add("study_outcome_horizons")
    return changed


def settings_changed(base: MgcaConfig, alternative: MgcaConfig) -> set[str]:
    """The settings (``study_config`` columns, ``"study_outcome_horizons"``) that differ
    between two configs: what :func:`steps_to_rerun` needs."""
    return _differences(study_config_values(base), study_outcome_horizons(base), alternative)


def settings_changed_from_run(
    con: duckdb.DuckDBPyConnection, config: MgcaConfig, catalog: str
) -> set[str]:
    """The settings whose value in ``catalog`` (the run's database, attached: what its tables
    were derived with) differs from ``config``'s."""
    cursor = con.execute(f"SELECT * FROM {catalog}.main.study_config")
    names = [d[0] for d in cursor.description]
    stored = dict(zip(names, cursor.fetchone(), strict=True))
    horizons = con.execute(
        f"SELECT horizon_hours, is_primary FROM {catalog}.main.study_outcome_horizons "
        "ORDER BY horizon_hours"
    ).fetchall()
    return _differences(stored, [tuple(row) for row in horizons], config)


def _check_inputs(con: duckdb.DuckDBPyConnection) -> None:
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    missing = [name for name in registry.INPUTS if name not in present]
    if missing:
        hints = sorted({registry.input_provider(name) for name in missing})
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
    """Run every file of :data:`SQL_STEPS` in order on ``con``; then, when ``lab_results``
    reads the source's Parquet file in place, re-point it at ``lab_harmonised``
    (:func:`mgca.engine.database.lab_results_from_harmonised`).

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
    lab_results_from_harmonised(con)

"""The table registry: every SQL step, the inputs the SQL reads, and every derived table the
rest of mgca reads, each tagged with how private it is.

One place for these facts. The DuckDB engine runs :data:`SQL_STEPS` in order; the Spark engine
runs the same steps and pulls back exactly :func:`engine_outputs`; the run stores
:func:`report_tables` in its cache entry for the report; the secondary analyses read
:func:`secondary_tables`. Which tables a step writes is read from the SQL itself (its
``CREATE OR REPLACE TABLE`` statements), so the registry cannot drift from the files
(tests/engine/test_registry.py checks every name here against them).

Privacy tags (ARCHITECTURE.md, "Privacy"):

- ``aggregate``: counts and summaries, or a de-identified display sample with no id and no
  date; may reach results.json and the report (small counts are suppressed there);
- ``episode``: one row per episode with subject and encounter ids and index times; stays in
  the run folder's private files (cohort.parquet, private/mgca.duckdb);
- ``private``: row-level lab data (several rows per episode); read by the analyses inside a
  run, never written to a shared output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Privacy = Literal["aggregate", "episode", "private"]

SQL_STEPS: tuple[str, ...] = (
    "lab_harmonised.sql",
    "calcium_corrected.sql",
    "calcium_status.sql",
    "low_value_episodes.sql",
    "medication_harmonised.sql",
    "hypocalcaemia_pth_status.sql",
    "index_events.sql",
    "index_exposure.sql",
    "index_covariates.sql",
    "index_severity.sql",
    "index_outcome.sql",
    "cohort_eligibility.sql",
    "analytic_cohort.sql",
    "eligible_episodes.sql",
    "attrition.sql",
    "episode_calcium_measures.sql",
    "calcium_trajectory_summary.sql",
    "analyte_trajectory_summary.sql",
    "trajectory_sample.sql",
    "data_quality.sql",
    "post_grace_deviations.sql",
    "per_protocol_followup.sql",
    # per-episode tables of the secondary and sensitivity analyses
    "calcium_correction_time.sql",
    "pth_response.sql",
    "calcium_trajectory_points.sql",
    "kidney_function.sql",
    # the negative controls' outcomes and exposure (README "Methods: negative controls")
    "negative_control_outcomes.sql",
    "negative_control_exposure.sql",
    "calcium_correction_fixed_looks.sql",
    "effect_modifiers.sql",
)
"""The files of ``mgca.sql`` in run order (each file's header names what it reads and writes)."""

LAST_COHORT_STEP = "analytic_cohort.sql"
"""The step that writes the analytic table: re-deriving a cohort under another config (the
sensitivity windows) re-runs the steps up to and including this one."""

LOADERS: dict[str, str] = {
    "canonical": "mgca.engine.database.load_canonical",
    "config": "mgca.engine.database.write_study_config",
    "reference": "mgca.engine.database.load_reference_tables",
    "care": "mgca.engine.database.load_care_events",
}

INPUTS: dict[str, str] = {
    "persons": "canonical",
    "encounters": "canonical",
    "lab_results": "canonical",
    "medication_administrations": "canonical",
    "care_events": "care",
    "study_config": "config",
    "study_outcome_horizons": "config",
    "unit_conversions": "reference",
    "analyte_bounds": "reference",
    "ingredients": "reference",
    "ctcae_grades": "reference",
    "egfr_ckd_epi_2021": "reference",
}
"""Tables the SQL reads but does not create → which loader (:data:`LOADERS`) provides each.
The reference tables are one per CSV of ``sql/reference/``. ``care_events`` (ICU stays,
dialysis) is optional in a source folder: loaded empty when the source does not record it,
and small enough to ship to a distributed engine like the reference tables."""


def input_provider(table: str) -> str:
    """The call that provides the input ``table`` (e.g. ``mgca.engine.database.load_canonical``)."""
    return LOADERS[INPUTS[table]]


def canonical_inputs() -> tuple[str, ...]:
    """The four canonical tables every source produces."""
    return tuple(name for name, kind in INPUTS.items() if kind == "canonical")


def small_inputs() -> tuple[str, ...]:
    """Inputs made in the run's DuckDB (reference tables, study config): small, and shipped
    to a distributed engine rather than read there."""
    return tuple(name for name, kind in INPUTS.items() if kind != "canonical")


@dataclass(frozen=True)
class Table:
    """A table the rest of mgca reads after the SQL has run.

    ``order_by`` is the SQL ``ORDER BY`` that gives it a stable order; ``report_name`` is the
    name the run stores it under for the report (``<report_name>.parquet`` in the cache
    entry), ``None`` when the report does not read it; ``secondary`` marks the per-episode
    inputs of the secondary and sensitivity analyses; ``written_by`` is ``"sql"`` (a step of
    :data:`SQL_STEPS`) or ``"load"`` (written while loading the source).
    """

    name: str
    privacy: Privacy
    order_by: str
    report_name: str | None = None
    secondary: bool = False
    written_by: Literal["sql", "load"] = "sql"

    def select(self) -> str:
        """The query that reads the whole table in its stable order."""
        return f'SELECT * FROM "{self.name}" ORDER BY {self.order_by}'


COHORT_ORDER = "subject_id, encounter_id, index_time"

TABLES: tuple[Table, ...] = (
    Table("analytic_cohort", "episode", COHORT_ORDER),
    Table("cohort_outcomes", "episode", f"{COHORT_ORDER}, horizon_hours, calcium_measure"),
    Table("attrition", "aggregate", "step_order", report_name="attrition"),
    Table(
        "episode_calcium_measures",
        "aggregate",
        "role, CASE calcium_measure WHEN 'ionized' THEN 1 WHEN 'corrected_same_day_albumin' "
        "THEN 2 WHEN 'corrected_lookback_albumin' THEN 3 ELSE 4 END",
        report_name="calcium_measures",
    ),
    Table(
        "data_quality", "aggregate", "table_name, check_name, analyte", report_name="data_quality"
    ),
    Table(
        "calcium_trajectory_summary",
        "aggregate",
        "exposed, hours_bin_start",
        report_name="trajectory",
    ),
    Table(
        "analyte_trajectory_summary",
        "aggregate",
        "measure, exposed, hours_bin_start",
        report_name="analyte_trajectory",
    ),
    # de-identified: hours from index and pseudonymous sample numbers, no id, no date
    Table(
        "trajectory_sample",
        "aggregate",
        "exposed, sample_number, measure, hours_from_index, value",
        report_name="trajectory_sample",
    ),
    Table(
        "post_grace_deviations",
        "aggregate",
        "exposed DESC",
        report_name="post_grace_deviations",
    ),
    Table(
        "source_row_counts",
        "aggregate",
        "source_table, canonical_table NULLS LAST, status, reason NULLS FIRST",
        report_name="source_rows",
        written_by="load",
    ),
    Table(
        "source_orphan_codes",
        "aggregate",
        "domain, looks_like, n_rows DESC, code",
        report_name="orphan_codes",
        written_by="load",
    ),
    Table("index_calcium_correction", "episode", "ALL", secondary=True),
    Table("index_pth_response", "episode", "ALL", secondary=True),
    Table("calcium_trajectory_points", "private", "ALL", secondary=True),
    Table("index_kidney_function", "episode", "ALL", secondary=True),
    Table("eligible_episodes", "episode", COHORT_ORDER, secondary=True),
    Table(
        "per_protocol_followup",
        "private",
        "subject_id, encounter_id, index_time, interval_number",
        secondary=True,
    ),
    Table("per_protocol_clones", "episode", f"{COHORT_ORDER}, clone", secondary=True),
    Table("negative_control_outcomes", "episode", "ALL", secondary=True),
    Table("negative_control_exposure", "episode", "ALL", secondary=True),
    Table("index_calcium_fixed_looks", "episode", "ALL", secondary=True),
    Table("index_effect_modifiers", "episode", "ALL", secondary=True),
)
"""Every derived table read outside the SQL, in one list."""

ANALYTIC_COHORT = "analytic_cohort"


def table(name: str) -> Table:
    """The registry entry of ``name`` (KeyError names the registered tables)."""
    for entry in TABLES:
        if entry.name == name:
            return entry
    raise KeyError(f"{name} is not a registered table; registered: {[t.name for t in TABLES]}")


def report_tables() -> tuple[Table, ...]:
    """The aggregate tables the report reads, stored with each cache entry."""
    return tuple(t for t in TABLES if t.report_name is not None)


def secondary_tables() -> tuple[Table, ...]:
    """The per-episode inputs of the secondary and sensitivity analyses (ids!)."""
    return tuple(t for t in TABLES if t.secondary)


def engine_outputs() -> tuple[str, ...]:
    """Tables a distributed engine must bring back into the run's DuckDB: every registered
    table the SQL writes (one row per episode at most, or aggregates; lab rows stay there)."""
    return tuple(t.name for t in TABLES if t.written_by == "sql")


_CREATE = re.compile(r"\bCREATE\s+OR\s+REPLACE\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)", re.I)
_COMMENT = re.compile(r"--[^\n]*")


def read_sql(sql_file: str) -> str:
    """The text of one SQL file of the ``mgca.sql`` package."""
    return resources.files("mgca.sql").joinpath(sql_file).read_text(encoding="utf-8")


@cache
def step_writes(sql_file: str) -> tuple[str, ...]:
    """The tables ``sql_file`` creates, in order, read from its statements."""
    return tuple(_CREATE.findall(_COMMENT.sub("", read_sql(sql_file))))


def writer_of(name: str) -> str:
    """The step of :data:`SQL_STEPS` that writes table ``name``."""
    for sql_file in SQL_STEPS:
        if name in step_writes(sql_file):
            return sql_file
    raise KeyError(f"no SQL step writes {name}")

"""The table registry (mgca.engine.registry) agrees with the SQL files, the reference CSVs,
the loaders and pyproject.toml: a name added in one place and not the other fails here."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from mgca.engine import registry
from mgca.engine.database import CANONICAL_TABLES, REFERENCE_KEYS, REFERENCE_SCHEMAS
from mgca.run import cache

REPO = Path(__file__).resolve().parents[2]

_LITERAL_OR_COMMENT = re.compile(r"('(?:[^']|'')*')|--[^\n]*")
_CTE = re.compile(r"\b([A-Za-z_]\w*)\s+AS\s*\(", re.I)
_READ = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)\b(?!\s*\()", re.I)


def _reads(sql_file: str) -> set[str]:
    """Tables a step reads: names after FROM/JOIN that are not its own CTEs."""
    text = _LITERAL_OR_COMMENT.sub("''", registry.read_sql(sql_file))
    text = re.sub(r"\bDISTINCT\s+FROM\b", "DISTINCT_FROM", text, flags=re.I)
    return set(_READ.findall(text)) - set(_CTE.findall(text))


def test_every_step_reads_only_inputs_and_tables_of_earlier_steps() -> None:
    available = set(registry.INPUTS)
    for sql_file in registry.SQL_STEPS:
        writes = set(registry.step_writes(sql_file))
        assert writes, f"{sql_file} creates no table"
        unknown = _reads(sql_file) - available - writes
        assert not unknown, f"{sql_file} reads {sorted(unknown)}: no input or earlier step"
        assert not writes & available, f"{sql_file} rewrites {sorted(writes & available)}"
        available |= writes


def test_the_steps_are_every_sql_file_and_the_last_cohort_step_is_one() -> None:
    files = {p.name for p in resources.files("mgca.sql").iterdir() if p.name.endswith(".sql")}
    assert files == set(registry.SQL_STEPS)
    assert registry.LAST_COHORT_STEP in registry.SQL_STEPS
    assert registry.writer_of(registry.ANALYTIC_COHORT) == registry.LAST_COHORT_STEP


def test_every_registered_table_is_written_by_a_step_or_the_loader() -> None:
    names = [t.name for t in registry.TABLES]
    assert len(names) == len(set(names))
    for table in registry.TABLES:
        if table.written_by == "sql":
            assert registry.writer_of(table.name) in registry.SQL_STEPS
        else:
            with pytest.raises(KeyError):
                registry.writer_of(table.name)


def test_inputs_are_the_canonical_tables_the_reference_csvs_and_the_config() -> None:
    assert set(registry.canonical_inputs()) == set(CANONICAL_TABLES)
    reference = {
        p.name.removesuffix(".csv")
        for p in resources.files("mgca.sql").joinpath("reference").iterdir()
        if p.name.endswith(".csv")
    }
    listed = {name for name, kind in registry.INPUTS.items() if kind == "reference"}
    assert listed == reference == set(REFERENCE_SCHEMAS) == set(REFERENCE_KEYS)
    assert set(registry.LOADERS) == set(registry.INPUTS.values())


def test_what_may_leave_the_engine_is_episode_level_at_most() -> None:
    outputs = set(registry.engine_outputs())
    assert registry.ANALYTIC_COHORT in outputs
    assert "lab_harmonised" not in outputs and "lab_results" not in outputs
    for table in registry.report_tables():
        assert table.privacy == "aggregate", table.name  # the report shows aggregates only
    for table in registry.secondary_tables():
        assert table.privacy in ("episode", "private"), table.name


def test_the_cache_key_hashes_every_package_pyproject_ships() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    assert set(cache.code_packages()) == set(setuptools["packages"])
    assert set(cache.PACKAGE_ROOTS) == set(setuptools["package-dir"])


def test_the_cache_key_covers_orchestration_engines_adapters_sql_and_templates() -> None:
    names = {name for name, _ in cache.code_files()}
    for expected in (
        "mgca/run/flow.py",
        "mgca/run/runner.py",
        "mgca/engine/spark.py",
        "mgca/sources/adapters/omop.py",
        "mgca/sql/index_events.sql",
        "mgca/sql/reference/ingredients.csv",
        "mgca/templates/report.html.j2",
        "mgca/default_config.yaml",
        "mgca/analysis/estimation/models.py",
    ):
        assert expected in names, expected
    assert not [n for n in names if "__pycache__" in n]

"""The command line: help on every sub-command, config printing and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mgca.cli import main
from mgca.config import MgcaConfig


@pytest.mark.parametrize("args", [[], ["run"], ["synth"], ["config"]])
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 5


def test_run_help_names_the_output_contract() -> None:
    text = CliRunner().invoke(main, ["run", "--help"]).output
    for name in ("report.html", "results.json", "cohort.parquet", "--source", "--path", "--out"):
        assert name in text


def test_synth_help_names_worlds_and_requires_out() -> None:
    runner = CliRunner()
    assert "effect" in runner.invoke(main, ["synth", "--help"]).output
    result = runner.invoke(main, ["synth"])
    assert result.exit_code == 2
    assert "--out" in result.output


def test_config_prints_valid_yaml() -> None:
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert MgcaConfig.model_validate(yaml.safe_load(result.output)) == MgcaConfig()


def test_config_validate_reports_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("study:\n  grace_hours: -3\n")
    result = CliRunner().invoke(main, ["config", "--validate", str(bad)])
    assert result.exit_code == 2
    assert "study.grace_hours" in result.output


def test_run_with_missing_path_fails_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--source",
            "canonical",
            "--path",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_synth_regime_ward_is_offered_and_recorded(tmp_path: Path) -> None:
    from mgca.synthetic import REGIMES

    text = CliRunner().invoke(main, ["synth", "--help"]).output
    assert "--regime" in text and "ward" in text
    choices = next(p for p in main.commands["synth"].params if p.name == "regime").type.choices
    assert list(choices) == list(REGIMES)
    out = tmp_path / "ward"
    result = CliRunner().invoke(
        main, ["synth", "--regime", "ward", "--stays", "30", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "regime=ward" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["regime"] == "ward"
    assert manifest["parameters"]["albumin_schedule"] == "admission_and_interval"
    bad = CliRunner().invoke(main, ["synth", "--regime", "icu", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


def test_run_generates_the_configured_regime(tmp_path: Path) -> None:
    """`mgca run` without --path generates from the config's synthetic section, regime too."""
    from mgca.sources.resolve import resolve_source

    config = MgcaConfig.model_validate({"synthetic": {"stays": 20, "seed": 1, "regime": "ward"}})
    messages: list[str] = []
    resolved = resolve_source("synthetic", None, tmp_path, config, messages.append)
    assert resolved.manifest["regime"] == "ward"
    assert any("regime=ward" in m for m in messages)


def test_prefect_failures_go_to_the_log_file_not_the_console(tmp_path: Path) -> None:
    """A task failing on bad input: Prefect logs it at ERROR with the traceback; under
    `mgca run` that goes to mgca-run.log, and the console keeps only mgca's one-line error."""
    import io
    import logging

    from mgca.cli import prefect_log_file

    console = io.StringIO()
    screen = logging.StreamHandler(console)
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(screen)
    flow_logger = logging.getLogger("prefect.flow_runs")
    try:
        with prefect_log_file(tmp_path / "mgca-run.log") as log:
            flow_logger.warning("Beginning flow run")
            try:
                raise ValueError("column 'unit' is missing")
            except ValueError:
                flow_logger.error("Encountered exception during execution", exc_info=True)
            flow_logger.warning("Finished in state Failed('ValueError: column')")
        flow_logger.error("after the run: shown again")
    finally:
        prefect_logger.removeHandler(screen)
    shown, written = console.getvalue(), log.read_text()
    assert "Beginning flow run" in shown and "after the run: shown again" in shown
    assert "Traceback" not in shown and "Encountered exception" not in shown
    assert "in state Failed" not in shown
    assert "Traceback" in written and "column 'unit' is missing" in written

"""The command line: help on every sub-command, config printing and validation."""

from __future__ import annotations

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

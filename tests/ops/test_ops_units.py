"""Operations without a flow run: schedule config, `mgca serve --dry-run`, cache keys, run
history (comparison, index.html, history.json) and the artifact text."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from mgca.cli import main
from mgca.config import (
    MgcaConfig,
    ReportConfig,
    ScheduleConfig,
    SensitivityConfig,
    StudyConfig,
)
from mgca.ops import history
from mgca.ops.artifacts import attrition_table, estimates_table, summary_markdown
from mgca.run import cache


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("cron", "61 * * * *", "not a valid cron expression"),
        ("cron", "* * *", "five fields"),
        ("cron", "H 2 * * *", "five fields"),
        ("timezone", "Mars/Olympus", "IANA time zone"),
        ("deployment_name", "has space", "deployment_name"),
    ],
)
def test_schedule_config_rejects_bad_values(field: str, value: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        ScheduleConfig(**{field: value})
    assert words in str(info.value)


def test_serve_dry_run_prints_the_deployment(tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(
        "schedule:\n  cron: '30 6 * * 1'\n  timezone: Europe/London\n"
        f"  deployment_name: weekly\n  reports_root: {tmp_path / 'out'}\n"
    )
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)
    assert spec["deployment"] == "mgca-study/weekly"
    assert spec["cron"] == "30 6 * * 1"
    assert spec["timezone"] == "Europe/London"
    assert spec["parameters"]["reports_root"] == str(tmp_path / "out")
    assert spec["parameters"]["config_path"] == str(config.resolve())
    assert len(spec["next_runs"]) == 3
    assert all("T06:30:00" in t for t in spec["next_runs"])


def test_serve_with_a_bad_cron_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text("schedule:\n  cron: 'every day'\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(config), "--dry-run"])
    assert result.exit_code == 2
    assert "schedule.cron" in result.output and "five fields" in result.output
    assert "Traceback" not in result.output


def test_cache_key_follows_input_analysis_config_not_cosmetics() -> None:
    base = MgcaConfig()
    key = cache.cache_key("a" * 64, base)
    assert key == cache.cache_key("a" * 64, MgcaConfig())
    assert key != cache.cache_key("b" * 64, base)
    changed = MgcaConfig(study=StudyConfig(mg_low_mmol_l=0.71))
    assert key != cache.cache_key("a" * 64, changed)
    # other sensitivity windows change the sensitivity estimates: a cached entry must not
    # answer for them
    windows = MgcaConfig(sensitivity=SensitivityConfig(grace_hours=(3,), horizons_hours=()))
    assert key != cache.cache_key("a" * 64, windows)
    cosmetic = MgcaConfig(report=ReportConfig(title="x"), schedule=ScheduleConfig(cron="0 3 * * *"))
    assert key == cache.cache_key("a" * 64, cosmetic)


def test_cache_stage_commit_is_idempotent_and_pruned(tmp_path: Path) -> None:
    entry = cache.entry_dir(tmp_path, "k1")
    for content in ("first", "second"):
        work = cache.stage_workdir(entry)
        (work / "x.txt").write_text(content)
        cache.commit_stage(work, entry, "derive")
    assert cache.is_complete(entry, "derive")
    assert (entry / "x.txt").read_text() == "first"  # the first complete stage wins
    assert not list(entry.parent.glob(".building-*"))
    for name in ("k2", "k3"):
        cache.entry_dir(tmp_path, name).mkdir()
    assert len(cache.prune(tmp_path, keep=2)) == 1


def _results(n: int | None, estimate: float | None, config_sha: str = "c1") -> dict[str, Any]:
    primary: dict[str, Any] = {
        "name": "primary",
        "estimate": estimate,
        "ci_low": None if estimate is None else estimate - 0.05,
        "ci_high": None if estimate is None else estimate + 0.05,
        "n": n,
        "n_exposed": n,
        "horizon_hours": 48,
    }
    analysed = {"step": "analysed episodes (outcome measured)", "n": n, "n_excluded": 3}
    if n is None:
        primary["suppressed"] = analysed["suppressed"] = "<11"
        primary["suppressed_why"] = {"n": "small", "n_exposed": "small"}
        analysed["suppressed_why"] = {"n": "small"}
    return {
        "estimates": [primary],
        "attrition": [{"step": "encounters in source", "n": 500, "n_excluded": 0}, analysed],
        "config": {"privacy": {"small_cell_threshold": 11}},
        "provenance": {
            "source": "synthetic",
            "config_sha256": config_sha,
            "input_fingerprint": "f1",
            "mgca_version": "0.1.0",
            "git_commit": "abc",
        },
    }


def _publish(root: Path, name: str, started: str, results: dict[str, Any]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    results["provenance"]["started_at_utc"] = started
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_comparison_and_index_over_two_runs(tmp_path: Path) -> None:
    _publish(tmp_path, "run-a", "2026-01-01T00:00:00Z", _results(120, 0.10))
    second = _results(150, 0.25, config_sha="c2")
    second["provenance"]["started_at_utc"] = "2026-01-02T00:00:00Z"
    cmp = history.compare_with_previous(tmp_path, tmp_path / "run-b", second)
    assert cmp is not None
    assert cmp["previous_run"] == "run-a"
    assert cmp["primary_estimate_change"] == pytest.approx(0.15)
    assert cmp["ci_overlap"] is False and cmp["estimate_outside_previous_ci"] is True
    assert cmp["n_analysed_change"] == 30 and cmp["cohort_changed"] is True
    assert cmp["attrition_steps_changed"] == ["analysed episodes (outcome measured)"]
    assert cmp["config_changed"] is True and cmp["input_changed"] is False
    second["comparison_with_previous"] = cmp
    _publish(tmp_path, "run-b", "2026-01-02T00:00:00Z", second)
    (tmp_path / "not-a-run").mkdir()
    _publish(tmp_path, "run-b.previous", "2026-01-01T12:00:00Z", _results(1, 0.0))  # mid-swap

    index = history.update_index(tmp_path)
    runs = json.loads((tmp_path / "history.json").read_text())["runs"]
    assert [r["run_id"] for r in runs] == ["run-b", "run-a"]
    html = index.read_text()
    assert html.index("run-b/report.html") < html.index("run-a/report.html")
    assert "+0.250 (+0.200 to +0.300)" in html and "+0.150" in html  # estimate, change
    assert "<script" not in html and "http" not in html  # self-contained, offline


def test_previous_counts_in_the_comparison_follow_this_runs_rounding(tmp_path: Path) -> None:
    _publish(tmp_path, "run-a", "2026-01-01T00:00:00Z", _results(452, 0.10))  # rule: none
    second = _results(450, 0.10)
    second["config"]["privacy"]["rounding"] = "nearest_5"
    second["provenance"]["started_at_utc"] = "2026-01-02T00:00:00Z"
    cmp = history.compare_with_previous(tmp_path, tmp_path / "run-b", second)
    assert cmp is not None
    assert cmp["n_analysed_previous"] == 450 and cmp["previous_primary"]["n"] == 450
    assert cmp["n_analysed_change"] == 0


def test_first_run_has_nothing_to_compare_and_small_counts_stay_hidden(tmp_path: Path) -> None:
    assert history.compare_with_previous(tmp_path, tmp_path / "r", _results(5, None)) is None
    _publish(tmp_path, "run-small", "2026-01-01T00:00:00Z", _results(None, None))
    html = history.update_index(tmp_path).read_text()
    assert "&lt;11" in html and "no estimate" in html


def test_concurrent_index_updates_never_corrupt_history(tmp_path: Path) -> None:
    for i in range(6):
        _publish(tmp_path, f"run-{i}", f"2026-01-0{i + 1}T00:00:00Z", _results(100 + i, 0.1))
    errors: list[BaseException] = []

    def update() -> None:
        try:
            history.update_index(tmp_path)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=update) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(json.loads((tmp_path / "history.json").read_text())["runs"]) == 6
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_artifact_text_suppresses_small_counts() -> None:
    results = _results(None, None)
    results["estimates"][0].update(estimate=0.1, ci_low=0.0, ci_high=0.2)
    text = summary_markdown(results, "run-x", 11)
    assert "n = <11 episodes" in text and "Episodes analysed (cohort size): <11" in text
    assert estimates_table(results, 11)[0]["n"] == "<11"
    assert attrition_table(results, 11)[1]["n_remaining"] == "<11"


def test_a_fresh_entry_is_promoted_over_the_shared_one_without_leftovers(tmp_path: Path) -> None:
    # mgca run --no-cache builds in a private entry; promoting it replaces the shared entry of
    # its key (or creates it) and leaves no private, trash or build folder behind
    shared = cache.entry_dir(tmp_path, "k" * 64)
    for content in ("old", "new"):
        fresh = cache.fresh_entry(tmp_path, "k" * 64)
        work = cache.stage_workdir(fresh)
        (work / "x.txt").write_text(content)
        cache.commit_stage(work, fresh, "derive")
        if content == "old":
            assert not shared.exists()
        cache.promote(fresh, shared)
        assert (shared / "x.txt").read_text() == content
        assert cache.is_complete(shared, "derive")
        assert sorted(p.name for p in cache.cache_root(tmp_path).iterdir()) == [shared.name]

"""Run-folder publication: atomic, crash-safe, strict JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mgca.run import outputs


def _complete_staging(out: Path, marker: str) -> Path:
    staging = outputs.staging_dir_for(out)
    for name in outputs.REQUIRED_OUTPUTS:
        (staging / name).write_text(marker)
    return staging


def test_publish_replaces_previous_run_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outputs.publish(_complete_staging(out, "first"), out)
    assert (out / "report.html").read_text() == "first"

    incomplete = outputs.staging_dir_for(out)
    (incomplete / "report.html").write_text("half")
    with pytest.raises(RuntimeError, match="incomplete"):
        outputs.publish(incomplete, out)
    assert (out / "report.html").read_text() == "first"  # last good outputs intact

    outputs.publish(_complete_staging(out, "second"), out)
    assert all((out / n).read_text() == "second" for n in outputs.REQUIRED_OUTPUTS)
    assert not out.with_name("run.previous").exists()


def test_crash_between_renames_is_recovered(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outputs.publish(_complete_staging(out, "good"), out)
    # Simulate a crash after the old folder was moved aside but before the new one landed.
    out.rename(out.with_name("run.previous"))
    assert not out.exists()
    assert outputs.recover_interrupted(out) is True
    assert (out / "results.json").read_text() == "good"


def test_stale_staging_folders_are_cleaned(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outputs.staging_dir_for(out)
    outputs.staging_dir_for(out)
    assert outputs.clean_stale_staging(out) == 2
    assert not list(tmp_path.glob(".staging-*"))


def test_results_json_is_strict_json() -> None:
    text = outputs.to_json({"a": math.nan, "b": [1.0, math.inf], "c": {"d": -math.inf}})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": {"d": None}}
    assert "NaN" not in text and "Infinity" not in text


def test_fingerprint_depends_on_content_not_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    a.write_bytes(b"alpha")
    b.write_bytes(b"beta")
    first = outputs.fingerprint_files([a, b])
    assert first == outputs.fingerprint_files([b, a])
    b.write_bytes(b"beta!")
    assert outputs.fingerprint_files([a, b]) != first


def test_write_text_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    outputs.write_text_atomic(target, "hello")
    outputs.write_text_atomic(target, "again")
    assert target.read_text() == "again"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]

"""The cache entry and the run share the derived DuckDB file by a hard link when they can."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb
import pytest

from mgca.run import cache


def _database(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE analytic_cohort AS SELECT range AS id FROM range(7)")
    return path


def _count(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        (n,) = con.execute("SELECT count(*) FROM analytic_cohort").fetchone()
    return int(n)


def test_same_file_system_links_and_each_name_survives_the_other(tmp_path: Path) -> None:
    run_db = _database(tmp_path / "run.duckdb")
    entry_db = tmp_path / "entry.duckdb"
    assert cache.link_or_copy(run_db, entry_db) == "link"
    assert os.path.samefile(run_db, entry_db)
    assert _count(entry_db) == 7
    run_db.unlink()  # a replaced run folder: the entry's name keeps the file whole
    assert _count(entry_db) == 7


def test_no_link_possible_falls_back_to_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_db = _database(tmp_path / "run.duckdb")

    def cross_device(_src: object, _dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    entry_db = tmp_path / "entry.duckdb"
    assert cache.link_or_copy(run_db, entry_db) == "copy"
    assert not os.path.samefile(run_db, entry_db)
    assert entry_db.read_bytes() == run_db.read_bytes()
    assert _count(entry_db) == 7

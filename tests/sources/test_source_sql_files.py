"""Each adapter's SQL_FILES is the one list of its SQL: every file of sql/sources/<kind>/ is
in it (no file that never runs), every name in it is a file, and no name repeats."""

from __future__ import annotations

from importlib import resources

import pytest

from mgca.sources.adapters import ADAPTERS, adapter_module


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_sql_files_list_is_the_folder(kind: str) -> None:
    listed = adapter_module(kind).SQL_FILES
    folder = resources.files("mgca.sql").joinpath("sources", kind)
    on_disk = {e.name.removesuffix(".sql") for e in folder.iterdir() if e.name.endswith(".sql")}
    assert len(set(listed)) == len(listed)
    assert set(listed) == on_disk

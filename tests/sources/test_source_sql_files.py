"""Each adapter's SQL_FILES is the one list of its SQL: every file of sql/sources/<kind>/ is
in it (no file that never runs), every name in it is a file, and no name repeats; a shared
file of sql/sources/common/ is listed as common/<name>."""

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
    assert {n for n in listed if "/" not in n} == on_disk
    for name in (n for n in listed if "/" in n):  # a shared file: common/<name>
        shared, stem = name.split("/", 1)
        assert resources.files("mgca.sql").joinpath("sources", shared, f"{stem}.sql").is_file()


def test_every_shared_sql_file_runs() -> None:
    # sql/sources/common/: orphan_codes.sql runs after each adapter's orphan_codes; every other
    # file is listed as common/<name> by some adapter
    folder = resources.files("mgca.sql").joinpath("sources", "common")
    shared = {e.name.removesuffix(".sql") for e in folder.iterdir() if e.name.endswith(".sql")}
    used = {n.split("/", 1)[1] for k in ADAPTERS for n in adapter_module(k).SQL_FILES if "/" in n}
    assert shared - {"orphan_codes"} == used

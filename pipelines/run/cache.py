"""Content-addressed cache of a run's expensive work (DuckDB load, SQL derivation, model fits).

An unchanged input with an unchanged analysis config and unchanged mgca code gives the same
derived tables and the same estimates, so a rerun can reuse them. The cache key is a SHA-256
over:

- the input fingerprint (names and bytes of the canonical input files,
  ``outputs.fingerprint_files``; for Delta tables each table's id and version, and for
  Parquet at a URL a fresh random value, so such runs never hit the cache: see
  ``mgca.sources.resolve``);
- the analysis config: the ``study``, ``privacy`` and ``sensitivity`` sections (``engine``,
  ``synthetic``, ``report`` and ``schedule`` change how or when a run happens, not what it
  derives; the synthetic settings still reach the key through the generated files'
  fingerprint; the sensitivity windows change the sensitivity estimates and, on Spark, the
  derived tables);
- the code: the mgca version and every file of the whole `mgca` package (Python, SQL,
  reference CSVs, templates, default config), found by walking its subpackages.

One entry is a folder ``<reports root>/.cache/<key>/`` holding ``mgca.duckdb`` (ids!),
``cohort.parquet`` (ids!), aggregate tables as JSON, and one ``<stage>.done`` marker per
finished stage. The folder is as private as a run's ``private/`` folder. Each stage is built in
a temporary sibling folder and renamed into place, so a crash never leaves a half-written
entry, and two concurrent runs with the same key both end with one complete entry.

Prefect sees the same key: the ``load-duckdb``, ``derive-cohort`` and ``fit-models`` tasks use
it as their ``cache_key_fn`` and persist only their tiny return values (paths into this folder
and row counts), never patient-level data. A hit shows in the Prefect UI as ``Cached``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import pkgutil
import shutil
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from mgca import __version__
from mgca.config import MgcaConfig
from mgca.run.outputs import to_json, write_text_atomic

CACHE_DIRNAME = ".cache"
#: Entries kept per reports root; older ones (by last use) are removed after each run.
DEFAULT_KEEP = 5


_HASHED_SUFFIXES = (".sql", ".csv", ".py", ".yaml", ".j2", ".css")


def _code_files(root: Any, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every code or data file under an importlib ``Traversable``, in name order, as
    (``prefix`` + relative name, bytes); a sub-folder that is itself a package is left to its
    own call."""
    for item in sorted(root.iterdir(), key=lambda p: p.name):
        if item.name.startswith((".", "__pycache__")):
            continue
        if item.is_dir():
            if not item.joinpath("__init__.py").is_file():
                yield from _code_files(item, f"{prefix}{item.name}/")
        elif item.name.endswith(_HASHED_SUFFIXES):
            yield f"{prefix}{item.name}", item.read_bytes()


#: The package roots pyproject's ``package-dir`` maps to folders of their own; an editable
#: install cannot list a mapped root from its parent, so each is walked from here
#: (tests/ops/test_ops_units.py checks this against pyproject.toml).
PACKAGE_ROOTS = ("mgca", "mgca.analysis", "mgca.synthetic", "mgca.sql", "mgca.templates")


def code_packages() -> list[str]:
    """Every package of ``mgca``: each root of :data:`PACKAGE_ROOTS` and the packages under it."""
    found = set(PACKAGE_ROOTS)
    for root in PACKAGE_ROOTS:
        module = importlib.import_module(root)
        found.update(
            info.name
            for info in pkgutil.walk_packages(module.__path__, f"{root}.")
            if info.ispkg
        )
    return sorted(found)


def code_files() -> Iterator[tuple[str, bytes]]:
    """Every file of the whole ``mgca`` package the cache key covers, as (path, bytes)."""
    for package in code_packages():
        yield from _code_files(resources.files(package), package.replace(".", "/") + "/")


def code_fingerprint() -> str:
    """SHA-256 of the whole ``mgca`` package (:func:`code_files`): every subpackage of
    :func:`code_packages` with its SQL, reference CSVs, templates and default config. Any
    code change gives a new cache key, so a cached result is never served to changed code."""
    digest = hashlib.sha256(f"mgca {__version__}\0".encode())
    for name, content in code_files():
        digest.update(f"{name}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def analysis_config_sha256(config: MgcaConfig) -> str:
    """Hash of the config sections that change derived tables or estimates."""
    payload = {
        "study": config.study.model_dump(mode="json"),
        "privacy": config.privacy.model_dump(mode="json"),
        "sensitivity": config.sensitivity.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_key(input_fingerprint: str, config: MgcaConfig) -> str:
    """The content address of a run's derived work (64 hex characters)."""
    parts = (input_fingerprint, analysis_config_sha256(config), code_fingerprint())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def cache_root(reports_root: Path) -> Path:
    return Path(reports_root).resolve() / CACHE_DIRNAME


def entry_dir(reports_root: Path, key: str) -> Path:
    return cache_root(reports_root) / key


def is_complete(entry: Path, stage: str) -> bool:
    """True when ``stage`` (and so every stage before it) finished in this entry."""
    return (entry / f"{stage}.done").is_file()


def stage_workdir(entry: Path) -> Path:
    """A fresh private folder beside ``entry`` to build one stage in."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    work = entry.parent / f".building-{entry.name[:16]}-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    return work


def commit_stage(work: Path, entry: Path, stage: str) -> None:
    """Move the files built in ``work`` into ``entry`` and mark ``stage`` done.

    Files are renamed one by one (same file system: atomic); the marker is written last. If
    another run finished the same stage first, its files are kept and ``work`` is discarded.
    """
    entry.mkdir(parents=True, exist_ok=True)
    if is_complete(entry, stage):
        shutil.rmtree(work, ignore_errors=True)
        return
    for item in sorted(work.iterdir()):
        os.replace(item, entry / item.name)
    marker = entry / f".{stage}.done.tmp-{uuid.uuid4().hex[:8]}"
    marker.write_text(json.dumps({"stage": stage, "finished_unix": time.time()}) + "\n")
    os.replace(marker, entry / f"{stage}.done")
    shutil.rmtree(work, ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> str:
    """Put the file ``source`` at ``target`` as a hard link (one file, two names: no bytes
    copied), or as a copy when a link cannot be made (another file system, a file system
    without hard links). Returns ``"link"`` or ``"copy"``.

    Used for the run's DuckDB file and the entry's copy of it (4.5 GB each at 1e8 lab rows).
    Sharing one file is safe because nothing writes either name once derive has closed the
    database: the model, sensitivity and truth stages and the notebook open it read-only
    (the sensitivity windows write a scratch database that attaches it ``READ_ONLY``), a
    rerun loads and derives into a new file in a fresh staging folder, and replacing or
    removing a run folder or an entry unlinks one name and leaves the other file whole.
    """
    try:
        os.link(source, target)
        return "link"
    except OSError:  # EXDEV (another file system), EPERM/ENOTSUP (no hard links there)
        shutil.copy2(source, target)
        return "copy"


def invalidate(entry: Path) -> None:
    """Drop an entry."""
    shutil.rmtree(entry, ignore_errors=True)


def fresh_entry(reports_root: Path, key: str) -> Path:
    """A private entry folder for a run that must not reuse the cache (``mgca run
    --no-cache``): built beside the shared entries under a name no other run uses, so a run
    that is reading the shared entry of the same key is never disturbed; :func:`promote`
    makes it the shared entry when the run has built every stage."""
    root = cache_root(reports_root)
    root.mkdir(parents=True, exist_ok=True)
    fresh = root / f".fresh-{key[:16]}-{uuid.uuid4().hex[:8]}"
    fresh.mkdir()
    return fresh


def promote(fresh: Path, entry: Path) -> None:
    """Make the fully built ``fresh`` entry the shared ``entry`` of its key, replacing the one
    there (two renames; the old one is removed afterwards). If another run put an entry in
    place in between, that one stays (same key, same content) and ``fresh`` is discarded."""
    trash = entry.parent / f".trash-{entry.name[:16]}-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(FileNotFoundError):  # no shared entry yet
        os.replace(entry, trash)
    try:
        os.replace(fresh, entry)
    except OSError:  # another run's entry arrived first (a non-empty folder is not replaced)
        shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(trash, ignore_errors=True)


def touch(entry: Path) -> None:
    """Mark an entry as just used (pruning keeps the most recently used ones)."""
    if entry.exists():
        os.utime(entry)


def prune(reports_root: Path, keep: int = DEFAULT_KEEP) -> list[str]:
    """Remove all but the ``keep`` most recently used entries and stale build folders."""
    root = cache_root(reports_root)
    if not root.is_dir():
        return []
    removed: list[str] = []
    now = time.time()
    for pattern in (".building-*", ".fresh-*", ".trash-*"):
        for stale in root.glob(pattern):
            if now - stale.stat().st_mtime > 24 * 3600:  # a crashed build, a day old
                shutil.rmtree(stale, ignore_errors=True)
    entries = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


def write_json(path: Path, payload: dict[str, Any]) -> None:

    write_text_atomic(path, to_json(payload))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))

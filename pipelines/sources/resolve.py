"""Source adapters: where the canonical input tables come from.

Every source ends in the same place: a folder of the four canonical Parquet tables
(ARCHITECTURE.md, "Canonical schema"). Two kinds are resolved here; the others (MIMIC-IV,
MEDS, long-format CSV, OMOP, FHIR) are adapters in :mod:`mgca.sources.adapters` that write
that same folder shape.

- ``synthetic``: the mgca synthetic world. With no ``--path``, a fresh dataset is generated
  (config ``synthetic:`` section) into the run's private folder, so the run is
  self-contained and its known truth can be replayed.
- ``canonical``: a folder you prepared yourself in the canonical schema. With the Spark
  engine it may also be a URL the cluster reads (``s3a://``, ``abfss://``, ``hdfs://``,
  ``file://``), passed to Spark unchanged, and with ``engine.spark_format: delta`` it holds
  one Delta table per canonical table (``<path>/<table>/_delta_log``).

Input fingerprints (the cache key's input part): the bytes of the local Parquet files; for
Delta tables each table's id and version (read from the log: no data file is read); none
for Parquet at a URL (such runs are never served from the cache).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgca.config import MgcaConfig
from mgca.engine.base import engine_for
from mgca.engine.database import CANONICAL_TABLES, CARE_EVENTS_FILE

#: The canonical tables by name, in the order of the schema (engine.database.CANONICAL_TABLES);
#: with engine.spark_format: delta, one Delta table each.
CANONICAL_TABLE_NAMES: tuple[str, ...] = tuple(CANONICAL_TABLES)

#: The canonical folder's files: one ``<table>.parquet`` per canonical table.
CANONICAL_FILES: tuple[str, ...] = tuple(f"{name}.parquet" for name in CANONICAL_TABLE_NAMES)

BUILTIN_KINDS = ("synthetic", "canonical")


def source_kinds() -> tuple[str, ...]:
    """Every --source kind: the built-in ones and each registered adapter."""
    from mgca.sources.adapters import ADAPTERS

    return (*BUILTIN_KINDS, *ADAPTERS)


SOURCE_KINDS = source_kinds()


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


class SourceError(ValueError):
    """An input location that cannot be used; the message says what is wrong and the fix."""


@dataclass(frozen=True)
class ResolvedSource:
    """Where the canonical tables are and how they are stored.

    ``data_dir`` is a local folder, or (Spark engine, ``--source canonical``) a URL kept as
    typed. ``data_format`` is "parquet" (``<table>.parquet``) or "delta" (``<table>/``);
    ``delta_versions`` the version of each Delta table the run reads. ``fingerprint`` is the
    input fingerprint when it is not the bytes of ``files``.
    """

    kind: str
    data_dir: Path | str
    files: tuple[Path, ...]
    manifest: dict[str, Any] = field(default_factory=dict)
    data_format: str = "parquet"
    delta_versions: dict[str, int] = field(default_factory=dict)
    fingerprint: str | None = None


def _spark_format(kind: str, config: MgcaConfig | None) -> str | None:
    """"parquet" or "delta" when the engine reads ``--path`` itself (Spark), None when it
    copies local Parquet files into DuckDB (:attr:`mgca.engine.base.Engine.reads_in_place`).

    ``engine.spark_format`` describes a folder you prepared (``--source canonical``);
    generated synthetic data and adapter output are always Parquet.
    """
    if config is None or not engine_for(config.engine.name).reads_in_place:
        return None
    return config.engine.spark_format if kind == "canonical" else "parquet"


def _check_url(location: str, kind: str, spark_format: str | None) -> None:
    if spark_format is None:
        raise SourceError(
            f"--path {location} is a URL, but the DuckDB engine reads a local folder. Fix: "
            "copy the canonical tables to a local folder, or run on Spark (--engine spark, "
            "which reads s3a://, abfss://, hdfs:// and file:// locations)"
        )
    if kind != "canonical":
        raise SourceError(
            f"--path {location} is a URL, but --source {kind} reads a local folder (its "
            "manifest.json and the simulator's truth). Fix: --source canonical reads the "
            "canonical tables at a URL on Spark"
        )


def _delta_tables(data_dir: Path) -> None:
    if not data_dir.is_dir():
        raise SourceError(
            f"--path {data_dir} is not a folder; engine.spark_format: delta expects a folder "
            f"holding one Delta table per canonical table ({', '.join(CANONICAL_TABLE_NAMES)})"
        )
    missing = [
        name for name in CANONICAL_TABLE_NAMES if not (data_dir / name / "_delta_log").is_dir()
    ]
    if missing:
        raise SourceError(
            f"{data_dir} has no Delta table {', '.join(missing)} (no <table>/_delta_log "
            "folder); engine.spark_format: delta reads <path>/<table> for each of "
            f"{', '.join(CANONICAL_TABLE_NAMES)}. Fix: write them as Delta tables, or set "
            "engine.spark_format: parquet for <table>.parquet files"
        )


def _canonical_files(data_dir: Path, kind: str) -> tuple[Path, ...]:
    if not data_dir.exists():
        raise SourceError(
            f"--path {data_dir} does not exist; give the folder that holds "
            f"{', '.join(CANONICAL_FILES)} (for example one written by `mgca synth --out DIR`)"
        )
    if not data_dir.is_dir():
        raise SourceError(f"--path {data_dir} is a file; --source {kind} expects a folder")
    missing = [name for name in CANONICAL_FILES if not (data_dir / name).is_file()]
    if missing:
        raise SourceError(
            f"{data_dir} is missing {', '.join(missing)}; a --source {kind} folder needs all of "
            f"{', '.join(CANONICAL_FILES)} in the canonical schema (see README, 'Canonical schema')"
        )
    # the optional care_events.parquet (ICU stays, dialysis) is part of the input when present
    optional = tuple(data_dir / name for name in (CARE_EVENTS_FILE,) if (data_dir / name).is_file())
    return tuple(data_dir / name for name in CANONICAL_FILES) + optional


def _manifest(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} is not valid JSON ({exc}); regenerate the dataset") from exc


def check_source(
    kind: str, path: Path | str | None, config: MgcaConfig | None = None
) -> None:
    """Fail fast, before any work starts, on an unknown kind or an unusable input folder.

    With the Spark engine (``config.engine.name``), a URL ``--path`` is not checked here:
    the cluster reads it, and Spark's read names what is missing. Without ``config`` the
    DuckDB engine is assumed.
    """
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown --source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if kind not in BUILTIN_KINDS:
        if path is None:
            raise SourceError(f"--source {kind} needs --path (where the {kind} data lives)")
        from mgca.sources.adapters import adapter_module

        adapter_module(kind).check(Path(path))
        return
    if path is None:
        return
    spark_format = _spark_format(kind, config)
    if is_url(path):
        _check_url(str(path), kind, spark_format)
        return
    path = Path(path)
    if spark_format == "delta":
        _delta_tables(path)
    else:
        _canonical_files(path, kind)
        if kind == "synthetic" and not (path / "manifest.json").is_file():
            raise SourceError(
                f"{path} has no manifest.json, so it was not written by `mgca synth`; "
                "use --source canonical for a folder you prepared yourself"
            )


def resolve_source(
    kind: str,
    path: Path | str | None,
    staging: Path,
    config: MgcaConfig,
    log: Callable[[str], None] = print,
) -> ResolvedSource:
    """Return the canonical folder for ``kind``; generate synthetic data when no path is given.

    A URL ``path`` (Spark engine, ``--source canonical``) is kept as typed, never as a
    ``Path``; Delta tables are resolved to their current versions here, so the whole run
    reads the snapshot its fingerprint names.
    """
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown --source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if kind not in BUILTIN_KINDS:
        from mgca.sources.adapters import adapter_module

        if path is None:
            raise SourceError(f"--source {kind} needs --path (where the {kind} data lives)")
        target = staging / "private" / "canonical"
        target.mkdir(parents=True, exist_ok=True)
        result = adapter_module(kind).to_canonical(Path(path), target, config, log)
        for warning in result.warnings:
            log(f"warning: {warning}")
        return ResolvedSource(
            kind=kind,
            data_dir=result.data_dir,
            files=result.input_files,
            manifest={},
        )
    if kind == "synthetic" and path is None:
        from mgca.synthetic import generate

        target = staging / "private" / "synthetic"
        syn = config.synthetic
        log(
            f"generating synthetic dataset: {syn.stays:,} stays, world={syn.world}, "
            f"regime={syn.regime}, seed={syn.seed}"
        )
        generate(
            target,
            n_stays=syn.stays,
            world=syn.world,
            seed=syn.seed,
            progress=log,
            regime=syn.regime,
        )
        path = target
    assert path is not None
    spark_format = _spark_format(kind, config)
    if is_url(path) or spark_format == "delta":
        check_source(kind, path, config)
        location = str(path) if is_url(path) else Path(path)
        return _spark_source(kind, location, spark_format == "delta", log)
    path = Path(path)
    files = _canonical_files(path, kind)
    manifest = _manifest(path) if kind == "synthetic" else {}
    return ResolvedSource(kind=kind, data_dir=path, files=files, manifest=manifest)


def _spark_source(
    kind: str, location: Path | str, delta: bool, log: Callable[[str], None]
) -> ResolvedSource:
    """A canonical input that Spark reads itself: Delta tables (fingerprinted by table id
    and version), or Parquet at a URL (not fingerprinted: such a run is never cached)."""
    if delta:
        from mgca.sources.delta_snapshot import snapshot_versions, versions_fingerprint

        base = str(location).rstrip("/")
        found = snapshot_versions({name: f"{base}/{name}" for name in CANONICAL_TABLE_NAMES})
        log(
            "Delta tables at "
            + base
            + ": "
            + ", ".join(f"{name} v{version}" for name, (_, version) in found.items())
        )
        return ResolvedSource(
            kind=kind,
            data_dir=location,
            files=(),
            data_format="delta",
            delta_versions={name: version for name, (_, version) in found.items()},
            fingerprint=versions_fingerprint(found),
        )
    log(
        f"Parquet tables at {location}: a URL input has no content fingerprint, so this run's "
        "derivation is not cached"
    )
    return ResolvedSource(
        kind=kind,
        data_dir=location,
        files=(),
        fingerprint=f"uncached-{uuid.uuid4().hex}",
    )

"""Source adapters: where the canonical input tables come from.

Every adapter ends in the same place: a folder of the four canonical Parquet tables
(ARCHITECTURE.md). This spine ships two kinds; MIMIC-IV, OMOP, FHIR and MEDS adapters
target the same folder shape.

- ``synthetic``: the mgca synthetic world. With no ``--path``, a fresh dataset is generated
  (config ``synthetic:`` section) into the run's private folder, so the run is
  self-contained and its known truth can be replayed.
- ``canonical``: a folder you prepared yourself in the canonical schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgca.config import MgcaConfig

CANONICAL_FILES = (
    "persons.parquet",
    "encounters.parquet",
    "lab_results.parquet",
    "medication_administrations.parquet",
)

BUILTIN_KINDS = ("synthetic", "canonical")


def source_kinds() -> tuple[str, ...]:
    """Every --source kind: the built-in ones and each registered adapter."""
    from mgca.adapters import ADAPTERS

    return (*BUILTIN_KINDS, *ADAPTERS)


SOURCE_KINDS = source_kinds()


class SourceError(ValueError):
    """An input location that cannot be used; the message says what is wrong and the fix."""


@dataclass(frozen=True)
class ResolvedSource:
    kind: str
    data_dir: Path
    files: tuple[Path, ...]
    manifest: dict[str, Any] = field(default_factory=dict)


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
    return tuple(data_dir / name for name in CANONICAL_FILES)


def _manifest(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} is not valid JSON ({exc}); regenerate the dataset") from exc


def check_source(kind: str, path: Path | None) -> None:
    """Fail fast, before any work starts, on an unknown kind or an unusable input folder."""
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown --source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if kind not in BUILTIN_KINDS:
        if path is None:
            raise SourceError(f"--source {kind} needs --path (where the {kind} data lives)")
        from mgca.adapters import adapter_module

        adapter_module(kind).check(path)
        return
    if path is not None:
        _canonical_files(path, kind)
        if kind == "synthetic" and not (path / "manifest.json").is_file():
            raise SourceError(
                f"{path} has no manifest.json, so it was not written by `mgca synth`; "
                "use --source canonical for a folder you prepared yourself"
            )


def resolve_source(
    kind: str,
    path: Path | None,
    staging: Path,
    config: MgcaConfig,
    log: Callable[[str], None] = print,
) -> ResolvedSource:
    """Return the canonical folder for ``kind``; generate synthetic data when no path is given."""
    if kind not in SOURCE_KINDS:
        raise SourceError(f"unknown --source {kind!r}; choose one of {', '.join(SOURCE_KINDS)}")
    if kind not in BUILTIN_KINDS:
        from mgca.adapters import adapter_module

        if path is None:
            raise SourceError(f"--source {kind} needs --path (where the {kind} data lives)")
        target = staging / "private" / "canonical"
        target.mkdir(parents=True, exist_ok=True)
        result = adapter_module(kind).to_canonical(path, target, config, log)
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
            f"generating synthetic dataset: {syn.stays:,} stays, world={syn.world}, seed={syn.seed}"
        )
        generate(target, n_stays=syn.stays, world=syn.world, seed=syn.seed, progress=log)
        path = target
    assert path is not None
    files = _canonical_files(path, kind)
    manifest = _manifest(path) if kind == "synthetic" else {}
    return ResolvedSource(kind=kind, data_dir=path, files=files, manifest=manifest)

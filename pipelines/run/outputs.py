"""The run folder: atomic publication, provenance and fingerprints.

A run writes everything into a staging folder beside its destination and publishes it with
directory renames, so a crash at any point leaves either the previous complete run folder or
the new complete one, never a mixture. ``recover_interrupted`` puts the last good folder
back if a crash happened between the two renames.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mgca import __version__
from mgca.analysis.finite import finite_or_none

PRIVATE_DB = "private/mgca.duckdb"
"""The run's DuckDB file, inside the run folder's private/ (ids and lab rows: never shared)."""

#: Files every complete run folder holds (the outputs contract).
REQUIRED_OUTPUTS = ("report.html", "results.json", "cohort.parquet", "config.yaml")

#: What the report and results.json say about the files that hold ids.
PRIVATE_OUTPUTS_NOTE = (
    "cohort.parquet (the analytic table: subject and encounter ids, index times) and private/ "
    "(the DuckDB database) stay in this run folder and are never to be shared; report.html, "
    "results.json and config.yaml hold aggregates only, counts below the threshold suppressed"
)
#: What makes a rerun byte-identical (tests/ops/test_reproducibility.py checks it).
RERUN_NOTE = (
    "the same input fingerprint, config SHA-256, git commit and package versions give a "
    "byte-identical cohort.parquet (cohort_sha256) and identical estimates, whatever the "
    "DuckDB thread count; only started_at_utc and duration_s differ"
)

_OLD_SUFFIX = ".previous"
_STAGING_PREFIX = ".staging-"


def default_run_dir(reports_root: Path = Path("reports")) -> Path:
    """A new folder under ``reports/`` named for the UTC start time of the run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return reports_root / f"run-{stamp}-{uuid.uuid4().hex[:6]}"


def staging_dir_for(out_dir: Path) -> Path:
    """A fresh staging folder on the same file system as ``out_dir`` (so renames are atomic)."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f"{_STAGING_PREFIX}{out_dir.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    (staging / "private").mkdir()
    return staging


def recover_interrupted(out_dir: Path) -> bool:
    """Restore ``out_dir`` from its ``.previous`` copy if a publish was cut between renames.

    Returns True when something was restored.
    """
    out_dir = out_dir.resolve()
    previous = out_dir.with_name(out_dir.name + _OLD_SUFFIX)
    if previous.exists() and not out_dir.exists():
        os.replace(previous, out_dir)
        return True
    if previous.exists() and out_dir.exists():
        shutil.rmtree(previous, ignore_errors=True)
    return False


def clean_stale_staging(out_dir: Path) -> int:
    """Remove staging folders left by crashed runs for this destination. Returns how many."""
    out_dir = out_dir.resolve()
    if not out_dir.parent.exists():
        return 0
    removed = 0
    for stale in out_dir.parent.glob(f"{_STAGING_PREFIX}{out_dir.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
        removed += 1
    return removed


def publish(staging: Path, out_dir: Path) -> Path:
    """Move a complete staging folder into place as ``out_dir``.

    The previous ``out_dir`` (if any) is renamed aside first and deleted only after the new
    folder is in place.
    """
    missing = [name for name in REQUIRED_OUTPUTS if not (staging / name).is_file()]
    if missing:
        raise RuntimeError(f"refusing to publish an incomplete run: missing {', '.join(missing)}")
    out_dir = out_dir.resolve()
    previous = out_dir.with_name(out_dir.name + _OLD_SUFFIX)
    if previous.exists():
        shutil.rmtree(previous)
    if out_dir.exists():
        os.replace(out_dir, previous)
    os.replace(staging, out_dir)
    if previous.exists():
        shutil.rmtree(previous, ignore_errors=True)
    return out_dir


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def to_json(payload: dict[str, Any]) -> str:
    """Strict, stable JSON (sorted nothing, NaN → null) for results.json."""
    clean = finite_or_none(payload)
    return json.dumps(clean, indent=2, default=_json_default, allow_nan=False) + "\n"


def fingerprint_files(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and bytes of the input files, in name order.

    Streams each file in 1 MiB blocks, so multi-GB extracts are never held in memory.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode())
        digest.update(b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of one file (e.g. cohort.parquet, to compare reruns)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit() -> str:
    """The git commit of the mgca source tree, or "unknown" outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if result.returncode != 0:
        return "unknown"
    commit = result.stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
    )
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def provenance(
    *,
    config_sha256: str,
    input_fingerprint: str,
    started_at: datetime,
    duration_s: float,
    source: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a reader needs to reproduce the run (no patient data, no patient dates)."""
    import duckdb
    import pandas
    import prefect
    import statsmodels

    record: dict[str, Any] = {
        "mgca_version": __version__,
        "git_commit": git_commit(),
        "config_sha256": config_sha256,
        "input_fingerprint": input_fingerprint,
        "source": source,
        "started_at_utc": started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(duration_s, 2),
        "private_outputs": PRIVATE_OUTPUTS_NOTE,
        "rerun_identical_given": RERUN_NOTE,
        "versions": {
            "duckdb": duckdb.__version__,
            "statsmodels": statsmodels.__version__,
            "pandas": pandas.__version__,
            "prefect": prefect.__version__,
        },
    }
    if extra:
        record.update(extra)
    return record

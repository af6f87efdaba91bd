"""Helpers for tests that run `mgca` as a real subprocess (crash, concurrency, privacy).

Each run is the real CLI in its own process group (its temporary Prefect server is a child),
with a private PREFECT_HOME so parallel test workers never share a Prefect database.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MGCA = [sys.executable, "-m", "mgca.cli"]


def run_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env["PREFECT_HOME"] = str(prefect_home)
    env["PREFECT_LOGGING_LEVEL"] = "INFO"  # conftest quiets Prefect; these tests read its log
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["PREFECT_LOGGING_COLORS"] = "false"
    return env


def mgca(args: list[str], prefect_home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``mgca ARGS`` to completion (stdout and stderr merged)."""
    return subprocess.run(
        [*MGCA, *args],
        env=run_env(prefect_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(args: list[str], prefect_home: Path) -> subprocess.Popen:
    """Start ``mgca ARGS`` in a new process group, output piped line by line."""
    return subprocess.Popen(
        [*MGCA, *args],
        env=run_env(prefect_home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )


def kill_at(proc: subprocess.Popen, marker: str, timeout: float = 240) -> list[str]:
    """SIGKILL the whole process group as soon as a log line contains ``marker``.

    Returns the lines read. Raises AssertionError if the run ended before the marker."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return lines
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    raise AssertionError(f"marker {marker!r} never printed:\n{''.join(lines[-30:])}")


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }

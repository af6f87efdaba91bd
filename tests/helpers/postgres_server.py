"""A real PostgreSQL server for tests: Debian's package, started on 127.0.0.1, torn down after.

Installs ``postgresql`` with apt-get when no ``initdb`` is found (CI runs as root on a clean
clone). PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
system user (created by the package). When the server cannot be installed or started the test
fails with the reason: it is never skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _install() -> Path:
    bin_dir = _bin_dir()
    if bin_dir is not None:
        return bin_dir
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
        done = subprocess.run([*sudo, *cmd], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"cannot install PostgreSQL ({' '.join(cmd)}): {done.stderr[-800:]}")
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.fail("apt-get installed postgresql but no initdb was found")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a fresh, empty PostgreSQL cluster on loopback (user postgres)."""
    bin_dir = _install()
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="mgca-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, cwd=root)
        if done.returncode != 0:
            pytest.fail(f"PostgreSQL: {' '.join(args)} failed: {done.stderr[-800:]}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)

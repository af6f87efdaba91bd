"""One writer per run folder: an advisory file lock beside the destination.

Two ``mgca run --out DIR`` started at once would otherwise race: each cleans the other's
staging folder (``clean_stale_staging``) and both rename into ``DIR``. A run takes an
exclusive ``fcntl.flock`` on ``DIR``'s sibling ``.DIR.lock`` before it touches anything and
holds it until it has published (or failed). The second run stops at once with a message
naming the folder and the process holding it, instead of waiting or corrupting. The kernel
drops the lock when the holder dies, even by SIGKILL, so a crashed run never blocks the next.
Runs into different folders (the default: a new ``reports/run-<UTC time>-<id>/`` each time)
never contend.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


class RunFolderBusyError(ValueError):
    """Another run is writing the same run folder (a user error: exit 2, one message)."""


@dataclass
class RunLock:
    """A held lock on one run folder; ``release`` (or process exit) frees it."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path_for(out_dir: Path) -> Path:
    """``reports/run-x`` → ``reports/.run-x.lock`` (same folder, so it survives the rename)."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f".{out_dir.name}.lock"


def acquire_run_lock(out_dir: Path) -> RunLock:
    """Take the run folder's lock without waiting, or raise :class:`RunFolderBusyError`."""
    path = lock_path_for(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise RunFolderBusyError(
            f"{Path(out_dir)}: another mgca run is writing this run folder ({holder}). Fix: "
            "wait for it to finish, or give this run its own --out (omit --out for a new "
            "reports/run-<time>-<id>/ folder)."
        ) from None
    os.ftruncate(fd, 0)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    os.pwrite(fd, f"pid {os.getpid()} since {stamp}\n".encode(), 0)
    return RunLock(path=path, fd=fd)

"""Environment defaults that must be in place before Prefect is imported.

mgca runs on hospital machines that are often offline: telemetry is off, and with no
``PREFECT_API_URL`` set, Prefect starts a temporary local server on 127.0.0.1 for the run
(ephemeral mode). Point a run at your own server with ``PREFECT_API_URL`` (for example
``http://127.0.0.1:4200/api`` after ``prefect server start --host 127.0.0.1``).
Every value here is a default only: an explicit environment variable wins.
"""

from __future__ import annotations

import os

PREFECT_DEFAULTS: dict[str, str] = {
    # No usage telemetry from the client or from the temporary server.
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The temporary server listens on loopback only.
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
    # Allow the temporary local server when no PREFECT_API_URL is configured.
    "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
    # The temporary server migrates its SQLite database on first start (~10 s on an idle
    # machine); Prefect's 20 s default fails on busy shared machines.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # Task results may hold patient-level frames: never persist them to Prefect storage.
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def apply_prefect_defaults() -> None:
    """Set mgca's Prefect defaults unless the user already set them."""
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)

"""Shared test setup.

Prefect runs against a throw-away local server with its own PREFECT_HOME (one per test
session and xdist worker), telemetry off, so tests never touch a user's Prefect state and
never need the network.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="mgca-prefect-home-"))
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real Prefect API (temporary local server, SQLite in a temp folder) for flow tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures simulation tests record (``record_property("…_table", text)``).

    Recovery studies must print their numbers (bias, coverage, error rates) in every CI run,
    passed or failed, also under pytest-xdist (user properties travel with the reports).
    """
    seen: set[str] = set()
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", []):
                if not name.endswith("_table") or report.nodeid + name in seen:
                    continue
                seen.add(report.nodeid + name)
                terminalreporter.write_sep("-", f"{name} ({report.nodeid}, {outcome})")
                terminalreporter.write_line(str(value))

"""Progress lines of a run: Prefect's run logger inside a flow or task, stdout otherwise.

Lines carry aggregates only (counts, timings, suppressed estimates), never ids or dates.
"""

from __future__ import annotations

from mgca.engine.base import Progress

__all__ = ["Progress", "log"]


def log(message: str) -> None:
    """Write one progress line (Prefect's run logger when called inside a run)."""
    try:
        from prefect.logging import get_run_logger

        get_run_logger().info(message)
    except Exception:  # outside a run context (direct calls from notebooks and tests)
        print(message)

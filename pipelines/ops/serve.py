"""`mgca serve`: the study as a Prefect deployment on a cron schedule from the config.

``serve`` registers a deployment of the ``mgca-study`` flow (``schedule:`` section of the
config: name, cron, time zone, source, path, reports root) and then runs a Prefect runner in
this process that starts each scheduled run, until interrupted (Ctrl-C pauses the schedule).
Each run writes a new ``run-<UTC time>-<id>`` folder under the reports root and updates its
``index.html``; unchanged inputs reuse the cache (``mgca.run.cache``).

Two modes:

- **Prefect server** (``PREFECT_API_URL`` set, e.g. ``http://127.0.0.1:4200/api`` after
  ``prefect server start --host 127.0.0.1``): the deployment is registered with its cron
  schedule; the server's scheduler creates the runs and a Prefect runner in this process
  executes them. Runs can also be started by hand from the UI or
  ``prefect deployment run 'mgca-study/<name>'``.
- **No server** (ephemeral): Prefect's temporary server has no scheduler ("Cannot schedule
  flows on an ephemeral server"), so ``serve_local`` keeps the schedule itself: it computes
  the next cron time, sleeps until then and runs the flow in this process (each run still a
  real Prefect flow run, recorded by the temporary server on 127.0.0.1).

Nothing here listens on a port (the runner's webserver stays off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mgca.config import MgcaConfig

FLOW_NAME = "mgca-study"
TAGS = ["mgca"]


@dataclass(frozen=True)
class DeploymentSpec:
    """What `mgca serve` registers (printable, JSON-able)."""

    name: str
    flow: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    next_runs: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": f"{self.flow}/{self.name}",
            "cron": self.cron,
            "timezone": self.timezone,
            "parameters": self.parameters,
            "next_runs": self.next_runs,
        }


def next_run_times(cron: str, timezone: str, n: int = 3) -> list[str]:
    """The next ``n`` scheduled start times (ISO 8601, in ``timezone``)."""
    import cronsim

    it = cronsim.CronSim(cron, datetime.now(ZoneInfo(timezone)).replace(second=0, microsecond=0))
    return [next(it).isoformat() for _ in range(n)]


def _absolute(location: str | None) -> str | None:
    """A local path made absolute; a URL (``s3a://…``, ``postgresql://…``) as typed."""
    from mgca.sources.resolve import is_url

    if not location or is_url(location):
        return location
    return str(Path(location).resolve())


def deployment_spec(config: MgcaConfig, config_path: Path | None) -> DeploymentSpec:
    """The deployment for ``config.schedule``: absolute paths, so runs do not depend on the
    runner's working directory. The config file is re-read at every run (edits apply to the
    next run; the schedule itself is fixed when `mgca serve` starts)."""
    schedule = config.schedule
    parameters: dict[str, Any] = {
        "source": schedule.source,
        "path": _absolute(schedule.path),
        "reports_root": str(Path(schedule.reports_root).resolve()),
        "config_path": str(config_path.resolve()) if config_path else None,
    }
    return DeploymentSpec(
        name=schedule.deployment_name,
        flow=FLOW_NAME,
        cron=schedule.cron,
        timezone=schedule.timezone,
        parameters=parameters,
        next_runs=next_run_times(schedule.cron, schedule.timezone),
    )


def has_api_server() -> bool:
    """True when a Prefect API (a user-started server) is configured."""
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def serve_local(
    spec: DeploymentSpec,
    *,
    max_runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> int:
    """Keep the cron schedule in this process and run the flow at each scheduled time.

    A failed run is logged and the schedule continues. ``max_runs`` stops after that many
    runs (``None``: forever). Returns the number of runs started.
    """
    import cronsim

    from mgca.run.flow import study_flow

    zone = ZoneInfo(spec.timezone)
    schedule = cronsim.CronSim(spec.cron, datetime.now(zone))
    started = 0
    while max_runs is None or started < max_runs:
        due = next(schedule)
        wait = (due - datetime.now(zone)).total_seconds()
        log(f"next run of {spec.flow}/{spec.name} at {due.isoformat()}")
        if wait > 0:
            sleep(wait)
        started += 1
        state = study_flow(**spec.parameters, return_state=True)
        log(f"scheduled run {started} finished: {state.name}")
    return started


def serve(spec: DeploymentSpec, *, limit: int = 1) -> None:
    """Register the deployment and run scheduled flow runs in this process until interrupted.

    ``limit``: flow runs at once (default 1: a run that outlasts its interval delays the next).
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from mgca.run.flow import study_flow

    study_flow.serve(
        name=spec.name,
        schedule=Cron(spec.cron, timezone=spec.timezone),
        parameters=spec.parameters,
        tags=TAGS,
        description="mgca: does calcium correct once magnesium is repleted? (scheduled study)",
        limit=limit,
        pause_on_shutdown=True,
        entrypoint_type=EntrypointType.MODULE_PATH,
        webserver=False,
    )

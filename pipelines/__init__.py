"""mgca: does calcium correct once magnesium is repleted?

Importing mgca sets its Prefect defaults (telemetry off, loopback only, no persisted task
results; :mod:`mgca.ops.prefect_env`) before any module of it imports Prefect. Each is a
default only: an environment variable the user set wins.
"""

from mgca.ops.prefect_env import apply_prefect_defaults

__version__ = "0.1.0"

apply_prefect_defaults()

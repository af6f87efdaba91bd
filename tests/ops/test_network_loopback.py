"""Whatever mgca makes listen binds to loopback, so no run exposes Prefect's API (and the
flow parameters and states it serves) to the network.

`mgca run` with no PREFECT_API_URL starts Prefect's temporary server. This test runs a real
flow in a fresh process under mgca's Prefect defaults (no test harness), and from inside the
flow lists every listening socket of that process and its children: each must be bound to
127.0.0.1 or ::1, never to 0.0.0.0 or a public address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent(
    """
    import json
    from mgca.ops.prefect_env import apply_prefect_defaults
    apply_prefect_defaults()
    import psutil
    from prefect import flow

    @flow(name="mgca-listen-probe")
    def probe() -> list[str]:
        me = psutil.Process()
        found = []
        for proc in [me, *me.children(recursive=True)]:
            try:
                conns = proc.net_connections(kind="inet")
            except psutil.Error:
                continue
            found += [c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN]
        return found

    print(json.dumps(probe()))
    """
)


def test_temporary_prefect_server_listens_on_loopback_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    listening = json.loads(result.stdout.strip().splitlines()[-1])
    assert listening, "the temporary Prefect server was expected to listen during the flow"
    assert all(ip in {"127.0.0.1", "::1"} for ip in listening), listening

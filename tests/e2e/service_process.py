"""Starts the real service (``supernas serve``) in a subprocess on a free port for end-to-end tests,
with the tests' defaults (2 Ray CPUs, a fast dispatcher, auth off unless ``extra_env`` turns it on)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.launcher import ServerProcess, free_port
from service.launcher import running_service as launch_service

ServiceHandle = ServerProcess
__all__ = ["ServiceHandle", "free_port", "running_service"]


@contextmanager
def running_service(
    data_dir: Path,
    database_url: str,
    startup_timeout_s: float = 120,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ServiceHandle]:
    """Yield a live service; stop it (SIGTERM, then SIGKILL) afterwards if it still runs.

    The service starts its own embedded Ray unless ``extra_env`` sets ``RAY_ADDRESS`` (a cluster to
    join); ``extra_env`` is applied last, over the test defaults.
    """
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RAY_NUM_CPUS": "2",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_AUTH": "false",  # tests of auth turn it on through extra_env
    }
    env.pop("RAY_ADDRESS", None)
    env |= extra_env or {}
    with launch_service(data_dir, env, startup_timeout_s=startup_timeout_s) as handle:
        yield handle

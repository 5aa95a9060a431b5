"""The two servers the dashboard benchmark loads pages from: the supernas service and
optuna-dashboard."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.launcher import free_port, running_server, running_service

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 120.0


@contextmanager
def supernas_server(database_url: str, data_dir: Path) -> Iterator[str]:
    """The real service with its dispatcher off; yields its base URL."""
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RUN_DISPATCHER": "false",
        "SUPERNAS_AUTH": "false",  # the page is timed, not the sign-in
    }
    env.pop("RAY_ADDRESS", None)
    with running_service(data_dir, env, startup_timeout_s=STARTUP_TIMEOUT_S, cwd=REPO_ROOT) as server:
        yield server.url


@contextmanager
def optuna_dashboard_server(database_url: str, log_dir: Path) -> Iterator[str]:
    """optuna-dashboard on the study's storage; yields its base URL."""
    port = free_port()
    executable = Path(sys.executable).with_name("optuna-dashboard")
    if not executable.exists():
        found = shutil.which("optuna-dashboard")
        if found is None:
            raise RuntimeError("optuna-dashboard is not installed (pip install optuna-dashboard==0.21.0)")
        executable = Path(found)
    command = [str(executable), database_url, "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    log_path = log_dir / "optuna-dashboard.log"
    with running_server(
        command,
        port,
        log_path,
        os.environ,
        "/api/studies",
        startup_timeout_s=STARTUP_TIMEOUT_S,
        cwd=REPO_ROOT,
    ) as server:
        yield server.url

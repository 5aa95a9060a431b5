"""Starts the real service (``supernas serve``) in a subprocess like ``e2e/service_process.py`` does,
with extra environment variables (e.g. ``SUPERNAS_RUN_DISPATCHER=false`` for inserted data)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from service_process import ServiceHandle, free_port


@contextmanager
def running_service(
    data_dir: Path,
    database_url: str,
    extra_env: dict[str, str] | None = None,
    startup_timeout_s: float = 120,
) -> Iterator[ServiceHandle]:
    """Yield a live service; stop it (SIGTERM, then SIGKILL) afterwards if it still runs."""
    port = free_port()
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RAY_NUM_CPUS": "2",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_AUTH": "false",  # the dashboard's pages call the API without a token
        **(extra_env or {}),
    }
    env.pop("RAY_ADDRESS", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "service.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not healthy in time:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)  # polling a subprocess's health: nothing to wait on instead
        yield ServiceHandle(url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

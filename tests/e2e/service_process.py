"""Starts the real service (``supernas serve``) in a subprocess on a free port for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.auth import printed_admin_token


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServiceHandle:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin_token(self) -> str:
        """The admin token the service printed on its first start (auth on)."""
        token = printed_admin_token(self.log())
        if token is None:
            raise AssertionError(f"the service printed no admin token:\n{self.log()[-2000:]}")
        return token


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
    port = free_port()
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RAY_NUM_CPUS": "2",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_AUTH": "false",  # tests of auth turn it on through extra_env
    }
    env.pop("RAY_ADDRESS", None)
    env |= extra_env or {}
    log_path = data_dir / "service.log"
    data_dir.mkdir(parents=True, exist_ok=True)
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
            time.sleep(0.3)
        yield ServiceHandle(url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

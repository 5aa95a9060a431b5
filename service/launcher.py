"""Running a server as a subprocess on a local port: start it, wait until its health check answers,
stop it (SIGTERM, then SIGKILL). The demo, the end-to-end and browser tests and the benchmarks start
supernas through ``running_service``; the dashboard benchmark also runs its peer through
``running_server``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.auth import printed_admin_token

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
_HEALTH_POLL_S = 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin_token(self) -> str:
        """The admin token a supernas service printed on its first start (auth on)."""
        token = printed_admin_token(self.log())
        if token is None:
            raise RuntimeError(f"the service printed no admin token:\n{self.log()[-2000:]}")
        return token


@contextmanager
def running_server(
    command: list[str],
    port: int,
    log_path: Path,
    env: Mapping[str, str],
    health_path: str = "/healthz",
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    cwd: Path | None = None,
) -> Iterator[ServerProcess]:
    """Run ``command`` (a server listening on ``port``, its output appended to ``log_path``) until the
    block ends; yields once ``GET health_path`` answers 200. A server that exits or stays unhealthy
    raises ``RuntimeError`` with the end of its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_healthy(server, health_path, startup_timeout_s)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(server: ServerProcess, health_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(server.url + health_path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not healthy in {timeout_s:.0f} s:\n{server.log()[-4000:]}")
        time.sleep(_HEALTH_POLL_S)  # polling a subprocess's health: nothing to wait on instead


@contextmanager
def running_service(
    data_dir: Path,
    env: Mapping[str, str],
    port: int | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    cwd: Path | None = None,
) -> Iterator[ServerProcess]:
    """``supernas serve`` with ``data_dir`` on ``port`` (default: a free one), with exactly the
    environment ``env``; its log is ``data_dir/service.log``."""
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    with running_server(
        command, port, data_dir / "service.log", env, startup_timeout_s=startup_timeout_s, cwd=cwd
    ) as server:
        yield server

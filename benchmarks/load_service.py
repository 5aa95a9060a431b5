"""The service under load: starting it on a database, the real search it runs meanwhile, its log and
CPU time, and a description of the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.load_client import API, OBJECTIVES, SPACE
from service.launcher import ServerProcess
from service.launcher import running_service as launch_service

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 180.0
RUNNING_TIMEOUT_S = 300.0  # until the search runs a trial (supernet training included)
POLL_S = 0.5
LOG_PATTERNS = {
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "database_locked": re.compile(r"database is locked", re.IGNORECASE),
    "pool_timeout": re.compile(r"QueuePool limit|TimeoutError", re.IGNORECASE),
    "error_line": re.compile(r"^(ERROR|CRITICAL)\b|\bERROR:", re.MULTILINE),
    "http_5xx": re.compile(r'" 5\d\d '),
}


# ------------------------------------------------------------------------------------------- service


def running_service(data_dir: Path, database_url: str) -> AbstractContextManager[ServerProcess]:
    """The real service on a free port with auth on, as the end-to-end tests start it."""
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RAY_NUM_CPUS": "2",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_MAX_CONCURRENT_SEARCHES": "1",
        "SUPERNAS_AUTH": "true",
    }
    env.pop("RAY_ADDRESS", None)
    return launch_service(data_dir, env, startup_timeout_s=STARTUP_TIMEOUT_S, cwd=REPO_ROOT)


@contextmanager
def database_url(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'supernas.db'}"
        return
    tests_dir = str(REPO_ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from db_helpers import postgres_database

    with postgres_database() as url:
        yield url


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scan_log(text: str) -> dict[str, Any]:
    """Counts of worrying lines in a slice of the service log, with a few distinct examples."""
    counts = {name: len(pattern.findall(text)) for name, pattern in LOG_PATTERNS.items()}
    examples: list[str] = []
    for line in text.splitlines():
        if any(p.search(line) for name, p in LOG_PATTERNS.items() if name != "traceback"):
            short = line.strip()[:300]
            if short not in examples:
                examples.append(short)
        if len(examples) >= 8:
            break
    return {"counts": counts, "examples": examples}


# ---------------------------------------------------------------------------------------- the search


def main_search_spec(
    trials: int, supernet_epochs: int, finetune_epochs: int, train_examples: int | None = None
) -> dict[str, Any]:
    """The real search that runs during the load; canceled once the phases are over."""
    subset = {} if train_examples is None else {"max_train_examples": train_examples}
    return {
        "name": "load-benchmark-search",
        "task": "digits",
        "space": SPACE,
        "objectives": OBJECTIVES,
        "budget": {"max_trials": trials, "max_parallel": 1, "max_duration_s": 1800},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "supernet": {"epochs": supernet_epochs, "batch_size": 64} | subset,
        "fidelity": {"finetune_epochs": finetune_epochs} | subset,
        "seed": 0,
    }


def submit_and_wait_running(
    client: httpx.Client, spec: dict[str, Any], service: ServerProcess
) -> dict[str, Any]:
    """Submit the real search; return it once it is ``running`` with at least one trial."""
    created = client.post(API, json=spec)
    created.raise_for_status()
    search_id = created.json()["id"]
    deadline = time.monotonic() + RUNNING_TIMEOUT_S
    search = created.json()
    while time.monotonic() < deadline:
        search = client.get(f"{API}/{search_id}").json()
        if search["state"] == "running" and sum(search["trial_counts"].values()) >= 1:
            return search
        if search["state"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(POLL_S)  # polling the service: nothing to wait on instead
    raise RuntimeError(
        f"search {search_id} never ran a trial: {search['state']} ({search.get('state_reason')})\n"
        f"{service.log()[-4000:]}"
    )


def cancel_and_wait(client: httpx.Client, search_id: str, timeout_s: float = 90) -> str:
    """Cancel the real search and wait until it ends; its final state."""
    client.post(f"{API}/{search_id}/cancel").raise_for_status()
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = client.get(f"{API}/{search_id}").json()["state"]
        if state in ("succeeded", "failed", "canceled"):
            break
        time.sleep(POLL_S)
    return state


def snapshot(search: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": search["state"],
        "trials": sum(search["trial_counts"].values()),
        "trials_done": search["progress"]["trials_done"],
    }


def postgres_version() -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = os.environ.get(
        "SUPERNAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # informational only
        return f"unknown ({type(exc).__name__})"
    finally:
        engine.dispose()


def machine(databases: Sequence[str]) -> dict[str, Any]:
    packages = ("fastapi", "uvicorn", "starlette", "anyio", "httpx", "sqlalchemy", "psycopg", "ray")
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: importlib.metadata.version(name) for name in packages},
    }
    if "postgresql" in databases:
        info["postgresql"] = postgres_version()
    return info

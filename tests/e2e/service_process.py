"""Starts the real service (``supernas serve``) in a subprocess on a free port for end-to-end tests,
with the tests' defaults (2 Ray CPUs, a fast dispatcher, auth off unless ``extra_env`` turns it on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from service.launcher import ServerProcess, free_port
from service.launcher import running_service as launch_service

ServiceHandle = ServerProcess
__all__ = [
    "ServiceHandle",
    "free_port",
    "on_supernet",
    "poll",
    "run_cli",
    "running_service",
    "train_supernet",
    "tune_results",
    "wait_until_ended",
]

ENDED = {"succeeded", "failed", "canceled"}
T = TypeVar("T")


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
        # two test workers run a service each on the CI's two cores: a training on two torch threads
        # would oversubscribe them (a wine MLP trained 3.8x slower than on one thread, both cores busy)
        "SUPERNAS_SUPERNET_TRAINING_CPUS": "1",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_AUTH": "false",  # tests of auth turn it on through extra_env
    }
    env.pop("RAY_ADDRESS", None)
    env |= extra_env or {}
    with launch_service(data_dir, env, startup_timeout_s=startup_timeout_s) as handle:
        yield handle


def run_cli(*args: str, url: str, token: str = "") -> subprocess.CompletedProcess[str]:
    """``supernas ARGS --url URL`` in a subprocess, with ``token`` as ``SUPERNAS_TOKEN``."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"SUPERNAS_TOKEN": token},
    )


def poll(
    predicate: Callable[[], T], timeout_s: float, what: str | Callable[[], str], interval_s: float = 0.2
) -> T:
    """Call ``predicate`` every ``interval_s`` until it returns something truthy, and return that;
    fail with ``what`` (or what it returns then) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")


def poll_resource(
    client: httpx.Client,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    interval_s: float = 0.5,
) -> dict[str, Any]:
    """GET ``path`` every ``interval_s`` until ``done`` holds for the resource, and return it; fail
    with the last state seen after ``timeout_s``."""
    last: dict[str, Any] = {}

    def fetched() -> dict[str, Any] | None:
        last.clear()
        last.update(client.get(path).json())
        return last if done(last) else None

    return poll(fetched, timeout_s, lambda: f"{path}; last state: {last}", interval_s)


def wait_for_search(
    client: httpx.Client, search_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 300
) -> dict[str, Any]:
    """Poll the search until ``done`` holds for it; fail with its last state after ``timeout_s``."""
    return poll_resource(client, f"/api/v1/searches/{search_id}", done, timeout_s)


def wait_until_ended(client: httpx.Client, search_id: str, timeout_s: float) -> dict[str, Any]:
    """Poll the search until it has ended; fail with its last state after ``timeout_s``."""
    return wait_for_search(client, search_id, lambda s: s["state"] in ENDED, timeout_s)


def trial_details(client: httpx.Client, search_id: str) -> list[dict[str, Any]]:
    """Every trial of the search (up to 100), each as its detail view (reports and decisions included)."""
    base = f"/api/v1/searches/{search_id}"
    listing = client.get(f"{base}/trials", params={"page_size": 100}).json()["items"]
    return [client.get(f"{base}/trials/{t['number']}").json() for t in listing]


def train_supernet(client: httpx.Client, search_spec: dict[str, Any], timeout_s: float = 300) -> str:
    """Train the supernet a search spec describes on its own (``POST /api/v1/supernets``); its id
    once it is ready. A module whose searches all share one space trains it once this way."""
    body = {key: search_spec[key] for key in ("task", "space", "seed")}
    created = client.post("/api/v1/supernets", json=body | {"training": search_spec["supernet"]})
    assert created.status_code == 201, created.text
    url = f"/api/v1/supernets/{created.json()['id']}"
    supernet = poll_resource(client, url, lambda s: s["state"] in {"ready", "failed", "canceled"}, timeout_s)
    assert supernet["state"] == "ready", supernet
    return supernet["id"]


def on_supernet(search_spec: dict[str, Any], supernet_id: str) -> dict[str, Any]:
    """The search spec, naming a trained supernet instead of describing one."""
    described = {k: v for k, v in search_spec.items() if k not in {"space", "supernet"}}
    return described | {"supernet_id": supernet_id}


def tune_results(artifacts: Path, search_id: str = "*") -> Iterator[dict[str, Any]]:
    """Every result Ray Tune wrote for the trials of a search (of every search by default), read
    from ``ray_results`` under the service's artifacts directory."""
    for result_file in artifacts.glob(f"ray_results/{search_id}-attempt*/*/result.json"):
        for line in result_file.read_text().splitlines():
            if line.strip():
                yield json.loads(line)

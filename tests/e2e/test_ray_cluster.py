"""The docker-compose topology without containers: a Ray head, a second Ray node, and the service
joined to them through ``RAY_ADDRESS``, with PostgreSQL. A real search must succeed with its trials
spread over both nodes.

Both nodes run on this machine, so the second one gets its own loopback address (127.0.0.2): each
trial's Tune result records the ``node_ip`` of the node it ran on. The supernet task asks for 2 CPUs
(``workers/supernet_job.py``: min(2, the cluster's CPUs), and a task must fit on one node), so one
node needs 2 CPUs. With 1 + 2 CPUs, ``max_parallel`` 3 (one CPU per trial) and Tune allowed to start
all three trials at once (``TUNE_MAX_PENDING_TRIALS_PG``), the first trials fill both nodes whatever
the timing; the supernet is trained on the second node and read by trials on the head through the
shared artifacts directory (one machine here; the compose file shares a volume).

Other tests on this machine may run Ray at the same time: the nodes get a private temp dir (so no
``/tmp/ray/ray_current_cluster`` that a bare ``ray.init()`` elsewhere would join), free ports
instead of Ray's fixed defaults, a cluster-private auth token, and are stopped through their own
process groups, never with ``ray stop`` (which kills every Ray process on the machine).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from service_process import free_port, running_service, tune_results, wait_until_ended

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

RAY = Path(sys.executable).parent / "ray"
SECOND_NODE_IP = "127.0.0.2"
HEAD_CPUS, SECOND_NODE_CPUS = 1, 2
SEARCH = {
    "name": "e2e-ray-cluster",
    "task": "digits",
    "space": {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ],
    "budget": {"max_trials": 6, "max_parallel": HEAD_CPUS + SECOND_NODE_CPUS, "max_duration_s": 600},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    # small: the test is about where things run, not about accuracy
    "supernet": {"epochs": 2, "batch_size": 64, "max_train_examples": 400},
    "fidelity": {"finetune_epochs": 1, "max_train_examples": 300},
    "seed": 0,
}


@dataclass(frozen=True)
class RayNode:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _ray_env(token: str) -> dict[str, str]:
    env = os.environ | {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,  # this cluster's own token, not the shared ~/.ray/auth_token
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once on SIGTERM
    }
    env.pop("RAY_ADDRESS", None)
    return env


@contextmanager
def ray_node(args: list[str], log_path: Path, env: dict[str, str]) -> Iterator[RayNode]:
    """``ray start ARGS --block`` in its own process group; stopped with it, whatever happens."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(RAY), "start", *args, "--block"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield RayNode(process, log_path)
    finally:
        _stop_node(process)


def _stop_node(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``ray start --block`` (it stops its node's processes), then SIGKILL whatever is left
    in its process group. The group id cannot be reused before the leader is reaped, so reap last."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break
            time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait_for(what: str, predicate, timeout_s: float, nodes: list[RayNode]):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"{what}: ray start exited with {node.process.returncode}:\n{node.log()}")
        if (value := predicate()) is not None:
            return value
        time.sleep(0.3)
    raise RuntimeError(f"{what}: timed out\n" + "\n".join(node.log() for node in nodes))


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    status = subprocess.run(
        [str(RAY), "status", f"--address={address}"], capture_output=True, text=True, env=env, timeout=30
    )
    active = status.stdout.partition("Active:")[2].partition("Pending:")[0]
    return len(re.findall(r"^\s*\d+\s+node_[0-9a-f]+", active, flags=re.MULTILINE))


def _read_address(temp_dir: Path) -> str | None:
    address_file = temp_dir / "ray_current_cluster"
    return (address_file.read_text().strip() or None) if address_file.exists() else None


@dataclass(frozen=True)
class Cluster:
    address: str
    head_ip: str
    env: dict[str, str]
    nodes: list[RayNode]

    def wait_until_all_joined(self, timeout_s: float = 90) -> None:
        def joined() -> bool | None:
            # `ray status` costs a Python start; ask only once every node says it started
            if not all(
                "Ray runtime started" in node.log_path.read_text(errors="replace") for node in self.nodes
            ):
                return None
            return True if _alive_nodes(self.address, self.env) == len(self.nodes) else None

        _wait_for("Ray nodes joining", joined, timeout_s, self.nodes)


@contextmanager
def ray_cluster(root: Path) -> Iterator[Cluster]:
    env = _ray_env(secrets.token_hex(32))
    with ExitStack() as stack:
        head = stack.enter_context(
            ray_node(
                [
                    "--head",
                    f"--port={free_port()}",
                    f"--num-cpus={HEAD_CPUS}",
                    "--include-dashboard=false",  # a minimal dashboard still starts: give it a free port
                    f"--dashboard-port={free_port()}",
                    f"--dashboard-agent-listen-port={free_port()}",
                    f"--temp-dir={root / 'head'}",
                    "--object-store-memory=100000000",
                ],
                root / "head.log",
                env,
            )
        )
        # `ray start` writes the GCS address there once the head is up
        address = _wait_for("Ray head", lambda: _read_address(root / "head"), 60, [head])
        second = stack.enter_context(
            ray_node(
                [
                    f"--address={address}",
                    f"--node-ip-address={SECOND_NODE_IP}",
                    f"--num-cpus={SECOND_NODE_CPUS}",
                    f"--dashboard-agent-listen-port={free_port()}",
                    f"--temp-dir={root / 'node2'}",
                    "--object-store-memory=100000000",
                ],
                root / "node2.log",
                env,
            )
        )
        # the second node joins while the caller goes on (see Cluster.wait_until_all_joined)
        yield Cluster(address, address.rpartition(":")[0], env, [head, second])


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # short: Ray's unix sockets live under it (AF_UNIX paths are limited to 107 bytes)
    root = Path(tempfile.mkdtemp(prefix="snray-"))
    try:
        with ray_cluster(root) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _trial_nodes(artifacts: Path) -> dict[int, set[str]]:
    """Trial number -> node IPs, from the results Ray Tune writes for each trial."""
    nodes: dict[int, set[str]] = {}
    for result in tune_results(artifacts):
        nodes.setdefault(int(result["number"]), set()).add(result["node_ip"])
    return nodes


def test_search_runs_on_a_two_node_ray_cluster(cluster: Cluster, tmp_path: Path) -> None:
    from db_helpers import postgres_database

    data_dir = tmp_path / "service"
    joined = {k: cluster.env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")} | {
        "RAY_ADDRESS": cluster.address,
        # Tune starts trials from a custom searcher one at a time unless told otherwise; with all of
        # max_parallel pending at once, their CPUs (one each) fill both nodes, whatever the timing
        "TUNE_MAX_PENDING_TRIALS_PG": str(SEARCH["budget"]["max_parallel"]),
    }
    with (
        postgres_database() as database_url,
        running_service(data_dir, database_url, extra_env=joined) as service,
        httpx.Client(base_url=service.url, timeout=30) as client,
    ):
        cluster.wait_until_all_joined()
        created = client.post("/api/v1/searches", json=SEARCH)
        assert created.status_code == 201, created.text
        search_id = created.json()["id"]
        final = wait_until_ended(client, search_id, timeout_s=240)
        logs = f"\nservice log:\n{service.log()[-4000:]}\n" + "\n".join(n.log() for n in cluster.nodes)
        assert final["state"] == "succeeded", f"{final}{logs}"
        trials = client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 100}).json()["items"]
        assert sorted(t["number"] for t in trials) == list(range(6))
        assert all(t["state"] in {"succeeded", "pruned"} for t in trials), trials
        assert "joining Ray cluster" in service.log(), (
            "the service must join the cluster, not start its own Ray"
        )

    nodes = _trial_nodes(data_dir / "artifacts")
    assert sorted(nodes) == list(range(6)), nodes
    assert all(len(ips) == 1 for ips in nodes.values()), nodes
    used = set().union(*nodes.values())
    assert used == {cluster.head_ip, SECOND_NODE_IP}, f"trials ran on {nodes}, nodes {cluster.address}"

"""Every registered strategy runs a real (small) supernet search through the API, with a constraint.

``pfn_pi`` and ``pfn_ucb`` differ from ``pfn`` only in the acquisition computed on the same
prediction (covered by the strategy contract), so only ``pfn`` runs here, which keeps the suite short.

The searches share one supernet, trained once for the module (``supernet_id``), so each test spends
its time on its strategy's trials. Checks that constrained-out trials are stored ``infeasible`` with
the reason and never reach the front, and that each trial shows what its strategy predicted. Also
checks that a trial's result does not depend on whether its Ray actor is new or reused from a
finished trial (Tune's ``reuse_actors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_process import (
    on_supernet,
    run_cli,
    running_service,
    train_supernet,
    tune_results,
    wait_until_ended,
)

from surrogates.registry import STRATEGIES

pytestmark = pytest.mark.slow

MAX_PARAMS = 1500.0
SEARCH = {
    "task": "digits",
    "space": {
        "family": "elastic_cnn",
        "stage_channels": [8, 16],
        "depth": [1, 2],
        "width_mult": [0.25, 0.5, 1.0],
        "kernel_size": [3, 5],
        "kernel_per_block": True,
    },
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "constraints": [{"metric": "params", "op": "<=", "value": MAX_PARAMS}],
    "hyperparameters": {"finetune_lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
    "budget": {"max_trials": 6, "max_parallel": 2, "max_duration_s": 600},
    "scheduler": {"type": "fifo"},
    "supernet": {"epochs": 1, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1},
    "seed": 3,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("strategies")


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[httpx.Client]:
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db") as handle:
        yield httpx.Client(base_url=handle.url, timeout=30)


@pytest.fixture(scope="module")
def search(client: httpx.Client) -> dict[str, Any]:
    """``SEARCH`` on the module's one supernet."""
    return on_supernet(SEARCH, train_supernet(client, SEARCH))


ACQUISITION_VARIANTS = {"pfn_pi", "pfn_ucb"}


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - ACQUISITION_VARIANTS))
def test_strategy_runs_a_constrained_search_through_the_api(
    client: httpx.Client, search: dict[str, Any], strategy: str
) -> None:
    created = client.post("/api/v1/searches", json=search | {"name": f"via-{strategy}", "strategy": strategy})
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    ended = wait_until_ended(client, search_id, timeout_s=300)
    assert ended["state"] == "succeeded", ended

    trials = client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 100}).json()["items"]
    assert len(trials) == 6
    assert {t["state"] for t in trials} <= {"succeeded", "infeasible"}
    for trial in trials:
        assert trial["suggestion"]["strategy"] == strategy
        if trial["metrics"]["params"] > MAX_PARAMS:
            assert trial["state"] == "infeasible"
            assert f"violates <= {MAX_PARAMS:g}" in trial["state_reason"]
            assert trial["fidelity"] == 0.0, "infeasible on cost: stopped before fine-tuning"
        else:
            assert trial["state"] == "succeeded"
    front = client.get(f"/api/v1/searches/{search_id}/pareto").json()["trials"]
    assert all(t["state"] == "succeeded" and t["metrics"]["params"] <= MAX_PARAMS for t in front)


def _finished(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    created = client.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search = wait_until_ended(client, created.json()["id"], timeout_s=300)
    assert search["state"] == "succeeded", search
    trials = client.get(f"/api/v1/searches/{search['id']}/trials", params={"page_size": 100}).json()["items"]
    return search, {t["number"]: t for t in trials}


def _actor_pids(data_dir: Path, search_id: str) -> dict[int, int]:
    """Trial number -> pid of the Ray actor that ran it."""
    return {int(r["number"]): int(r["pid"]) for r in tune_results(data_dir / "artifacts", search_id)}


def test_a_trial_gives_the_same_result_on_a_new_or_a_reused_actor(
    client: httpx.Client, data_dir: Path, search: dict[str, Any]
) -> None:
    spec = search | {"strategy": "random", "constraints": []}  # random: trial k's config depends on k only
    budget = {"max_trials": 3, "max_duration_s": 600}
    serial, serial_trials = _finished(
        client, spec | {"name": "actors-serial", "budget": budget | {"max_parallel": 1}}
    )
    serial_pids = _actor_pids(data_dir, serial["id"])
    assert serial_pids[0] == serial_pids[1] == serial_pids[2], "one trial at a time: one actor runs them all"

    parallel, parallel_trials = _finished(
        client, spec | {"name": "actors-parallel", "budget": budget | {"max_parallel": 2}}
    )
    parallel_pids = _actor_pids(data_dir, parallel["id"])
    assert parallel_pids[0] != parallel_pids[1], "trials 0 and 1 ran side by side, each on a new actor"

    for number in range(3):
        assert parallel_trials[number]["config"] == serial_trials[number]["config"]
        assert parallel_trials[number]["metrics"]["accuracy"] == serial_trials[number]["metrics"]["accuracy"]


def test_a_search_whose_constraints_no_trial_meets_says_so(
    client: httpx.Client, search: dict[str, Any]
) -> None:
    """Every trial infeasible: the search still succeeds (it ran its budget), but its reason names the
    empty front, it has no best trial, and the CLI's download says why instead of failing on a URL."""
    spec = search | {
        "name": "unreachable-constraint",
        "strategy": "random",
        "constraints": [{"metric": "params", "op": "<=", "value": 1}],
        "budget": {"max_trials": 2, "max_parallel": 2, "max_duration_s": 600},
    }
    ended, trials = _finished(client, spec)
    assert {t["state"] for t in trials.values()} == {"infeasible"}
    assert ended["state_reason"] == "trial budget spent; no trial met the constraints (2 infeasible)"
    assert ended["best_trial"] is None
    assert client.get(f"/api/v1/searches/{ended['id']}/pareto").json()["trials"] == []

    download = run_cli("download", ended["id"], url=str(client.base_url))
    assert download.returncode == 1
    assert "no best trial (none finished within its constraints)" in download.stderr

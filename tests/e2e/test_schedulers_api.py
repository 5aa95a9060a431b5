"""Every multi-fidelity scheduler runs a real (small) search through the API: trials are promoted and
stopped at rungs, or (freeze-thaw) paused and resumed from their checkpoints, and every decision is
on its trial with the reason. A freeze-thaw search paused by its user keeps its paused trials, and
resuming the search resumes them from their checkpoints. Trials run on the early epochs of the
search's own supernet while it trains (on a supernet trained elsewhere:
``test_supernet_trained_elsewhere_e2e.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_process import (
    ENDED,
    on_supernet,
    poll,
    running_service,
    train_supernet,
    trial_details,
    wait_for_search,
    wait_until_ended,
)

from surrogates.schedulers.registry import SCHEDULERS

pytestmark = pytest.mark.slow

FINETUNE_EPOCHS = 3
MAX_PARALLEL = 2
MAX_STEPS = 16  # freeze_thaw: reports of all trials together
SEARCH = {
    "task": "digits",
    "space": {
        "family": "elastic_cnn",
        "stage_channels": [8, 16],
        "depth": [1, 2],
        "width_mult": [0.25, 0.5, 1.0],
        "kernel_size": [3, 5],
    },
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "hyperparameters": {"finetune_lr": {"type": "float", "low": 0.001, "high": 0.3, "log": True}},
    "budget": {"max_trials": 8, "max_parallel": MAX_PARALLEL, "max_duration_s": 600},
    "supernet": {"epochs": 1, "batch_size": 64},
    "fidelity": {"finetune_epochs": FINETUNE_EPOCHS, "max_train_examples": 300},
    "seed": 5,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("schedulers")
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db") as handle:
        yield httpx.Client(base_url=handle.url, timeout=30)


@pytest.fixture(scope="module")
def search(client: httpx.Client) -> dict[str, Any]:
    """``SEARCH`` on one supernet trained once for the schedulers' searches."""
    return on_supernet(SEARCH, train_supernet(client, SEARCH))


def _run(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = client.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    search = wait_until_ended(client, search_id, timeout_s=400)
    return search, trial_details(client, search_id)


def _fidelities(trial: dict[str, Any]) -> list[float]:
    return [report["fidelity"] for report in trial["reports"]]


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_scheduler_runs_a_search_and_explains_its_decisions(
    client: httpx.Client, search: dict[str, Any], scheduler: str
) -> None:
    options = {"type": scheduler, "brackets": 2} | (
        {"max_steps": MAX_STEPS} if scheduler == "freeze_thaw" else {}
    )
    ended, trials = _run(client, search | {"name": f"via-{scheduler}", "scheduler": options})
    assert ended["state"] == "succeeded", ended
    reports = sum(len(t["reports"]) for t in trials)
    if scheduler == "freeze_thaw":  # the step budget ends it: at most a report more per running trial
        assert 2 <= len(trials) <= 8 and MAX_STEPS <= reports <= MAX_STEPS + MAX_PARALLEL, (
            len(trials),
            reports,
        )
    else:
        assert len(trials) == 8
    assert {t["state"] for t in trials} <= {"succeeded", "pruned"}
    finished = [t for t in trials if t["state"] == "succeeded"]
    assert finished, "at least one trial reaches the last fidelity"
    for trial in trials:
        # one report per fidelity step, in order, never repeated: a resumed trial went on from its
        # checkpoint instead of starting over
        assert _fidelities(trial) == list(range(len(trial["reports"]))), trial
        for decision in trial["decisions"]:
            assert decision["action"] in {"promote", "stop", "pause", "resume", "start"}
            assert decision["reason"] and decision["at"]
        if trial["state"] == "pruned":
            assert trial["decisions"][-1]["action"] == "stop", trial
    decisions = [d for t in trials for d in t["decisions"]]
    if scheduler == "freeze_thaw":
        paused_then_resumed = [
            t for t in trials if [d["action"] for d in t["decisions"]][:2] == ["pause", "resume"]
        ]
        assert paused_then_resumed, "freeze-thaw pauses trials and resumes them later"
        assert any("step budget" in d["reason"] for d in decisions if d["action"] == "stop")
        assert ended["state_reason"].startswith("the scheduler's step budget (max_steps) is spent"), ended
        resumes = [d for d in decisions if d["action"] == "resume"]
        assert all(d["predicted"]["std"] > 0 and 0 <= d["acquisition"] <= 1 for d in resumes)
    else:
        assert any(d["action"] == "promote" and d["rung"] is not None for d in decisions)
        assert any(d["action"] == "stop" and "rung" in d["reason"] for d in decisions)
        assert all(len(t["reports"]) == FINETUNE_EPOCHS + 1 for t in finished)
    if scheduler == "mobster":
        proposed = [t for t in trials if t["suggestion"]["strategy"] == "mobster"]
        assert proposed and all("log-EI" in t["suggestion"]["proposed_by"] for t in proposed)


EARLY_EPOCHS_SEARCH = SEARCH | {
    "name": "early-supernet-epochs",
    "budget": {"max_trials": 6, "max_parallel": 1, "max_duration_s": 600},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    # 30 epochs: with 12, the supernet had finished before the first trial's first report on a fast
    # machine (0.4 s after it, 3 runs in 3), so the test could not see trials run during its training
    "supernet": {"epochs": 30, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1, "max_train_examples": 300, "supernet_epochs": [1, 6]},
}


def test_trials_run_on_early_supernet_epochs_while_the_supernet_trains(client: httpx.Client) -> None:
    search, trials = _run(client, EARLY_EPOCHS_SEARCH)
    assert search["state"] == "succeeded", search
    supernet = client.get(f"/api/v1/supernets/{search['supernet_id']}").json()
    assert supernet["state"] == "ready" and supernet["snapshot_epochs"] == list(range(1, 31))
    for trial in trials:  # steps: epoch 1, epoch 6, the trained supernet (30), one fine-tuning epoch
        assert [r["metrics"]["supernet_epoch"] for r in trial["reports"]] == [1, 6, 30, 30][
            : len(trial["reports"])
        ]
    early = [r for t in trials for r in t["reports"] if r["metrics"]["supernet_epoch"] == 1]
    # the first trials were measured on epoch 1 while the supernet still trained its later epochs
    assert min(r["created_at"] for r in early) < supernet["finished_at"], (early, supernet)
    assert any(t["state"] == "succeeded" for t in trials)


def test_canceling_while_trials_wait_for_later_epochs_stops_them_and_the_training(
    client: httpx.Client,
) -> None:
    spec = EARLY_EPOCHS_SEARCH | {
        "name": "early-epochs-canceled",
        "supernet": {"epochs": 60, "batch_size": 64},
    }
    created = client.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    deadline = time.monotonic() + 300
    while not client.get(f"/api/v1/searches/{search_id}/trials").json()["items"]:  # trials have started
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert client.post(f"/api/v1/searches/{search_id}/cancel").status_code == 202
    search = wait_until_ended(client, search_id, timeout_s=120)
    assert search["state"] == "canceled", search
    supernet = client.get(f"/api/v1/supernets/{search['supernet_id']}").json()
    assert supernet["state"] == "canceled" and len(supernet["history"]) < 60, supernet
    trials = client.get(f"/api/v1/searches/{search_id}/trials").json()["items"]
    assert trials and all(t["state"] in {"canceled", "pruned"} for t in trials), trials


def test_pausing_a_freeze_thaw_search_keeps_its_paused_trials_for_the_resume(
    client: httpx.Client, search: dict[str, Any]
) -> None:
    # 8 fine-tuning epochs: the pause (read at the next decision) lands while the paused trial has steps to go
    fidelity = SEARCH["fidelity"] | {"finetune_epochs": 8}
    spec = search | {
        "name": "freeze-thaw-paused",
        "fidelity": fidelity,
        "scheduler": {"type": "freeze_thaw", "max_steps": 40},
    }
    created = client.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    base = f"/api/v1/searches/{search_id}"

    def trials() -> list[dict[str, Any]]:
        return trial_details(client, search_id)

    poll(
        lambda: any(t["state"] == "paused" and t["fidelity"] <= 2 for t in trials()),
        timeout_s=300,
        what="a trial paused by freeze-thaw in its first steps",
    )
    assert client.post(f"{base}/pause").status_code == 202
    paused = wait_for_search(client, search_id, lambda s: s["state"] in ENDED | {"paused"}, timeout_s=300)
    assert (paused["state"], paused["state_reason"]) == ("paused", "paused by user"), paused
    before = {t["number"]: t for t in trials()}
    set_aside = {n: t for n, t in before.items() if t["state"] == "paused" and t["reports"]}
    assert set_aside, "the trials freeze-thaw had paused stay paused with the search"
    assert {t["state"] for t in before.values()} <= {"paused", "succeeded", "pruned"}, before
    for trial in set_aside.values():
        assert trial["state_reason"] == (
            "paused with the search: resumes from its last checkpoint when the search runs again"
        )
    never_reported = {n: t for n, t in before.items() if t["state"] == "paused" and not t["reports"]}
    for trial in never_reported.values():  # created but not started: nothing to resume, but not dropped
        assert trial["state_reason"] == (
            "paused with the search: starts again from the beginning when the search runs again"
        )

    assert client.post(f"{base}/resume").status_code == 202
    ended = wait_until_ended(client, search_id, timeout_s=400)
    assert ended["state"] == "succeeded", ended
    after = {t["number"]: t for t in trials()}
    assert {t["state"] for t in after.values()} <= {"succeeded", "pruned"}, after
    for number, trial in never_reported.items():  # ran from the beginning, under its number and config
        assert after[number]["config"] == trial["config"]
        assert _fidelities(after[number]) == list(range(len(after[number]["reports"])))
    for number, trial in set_aside.items():
        now = after[number]
        # it went on from its checkpoint: more steps, none repeated, under its own number and config
        assert _fidelities(now) == list(range(len(now["reports"])))
        assert len(now["reports"]) > len(trial["reports"]), (trial, now)
        assert now["config"] == trial["config"]
        resume = now["decisions"][len(trial["decisions"])]
        assert resume["action"] == "resume" and resume["fidelity"] == trial["fidelity"]
        assert resume["reason"].startswith("the search runs again: resumes from its checkpoint"), resume

"""A search with ``fidelity.supernet_epochs`` naming a supernet that is still training elsewhere (a
stand-alone training, or another search's) starts on its early epochs while it trains; when that
other search is paused during the training, the search is queued again with its trials set aside,
and resumes them on the later epochs once the supernet trains again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_process import (
    poll,
    poll_resource,
    running_service,
    trial_details,
    wait_for_search,
    wait_until_ended,
)

pytestmark = pytest.mark.slow

OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}]
MLP_SPACE = {"family": "elastic_mlp", "depth": [1, 2], "width": [16, 32], "activation": ["relu", "gelu"]}
TRAINING = {"epochs": 400, "batch_size": 16, "lr": 0.05}  # about 20 s on wine: trials start at epoch 1
EARLY = {  # a search naming the supernet (its id added): steps on epochs 1 and 300, then the trained one
    "task": "wine",
    "objectives": OBJECTIVES,
    "budget": {"max_trials": 2, "max_parallel": 1},
    "scheduler": {"type": "fifo"},
    "fidelity": {"finetune_epochs": 1, "supernet_epochs": [1, 300]},
}
EPOCHS_OF_A_FULL_TRIAL = [1, 300, 400, 400]  # the last step fine-tunes the trained supernet's sub-network


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A service running two searches or trainings at once, on 2 Ray CPUs: a supernet training takes
    one (``SUPERNAS_SUPERNET_TRAINING_CPUS=1``, the tests' default), a trial of a search on its early
    epochs the other."""
    data_dir = tmp_path_factory.mktemp("trained-elsewhere")
    env = {"SUPERNAS_MAX_CONCURRENT_SEARCHES": "2", "SUPERNAS_RAY_NUM_CPUS": "2"}
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db", extra_env=env) as handle:
        yield httpx.Client(base_url=handle.url, timeout=30)


def _epochs(trial: dict[str, Any]) -> list[int]:
    return [r["metrics"]["supernet_epoch"] for r in trial["reports"]]


def test_a_search_starts_on_the_early_epochs_of_a_stand_alone_supernet_in_training(
    client: httpx.Client,
) -> None:
    body = {"task": "wine", "space": MLP_SPACE, "training": TRAINING}
    created = client.post("/api/v1/supernets", json=body)
    assert created.status_code == 201, created.text
    supernet_id = created.json()["id"]
    submitted = client.post("/api/v1/searches", json=EARLY | {"supernet_id": supernet_id})
    assert submitted.status_code == 201, submitted.text
    search = wait_until_ended(client, submitted.json()["id"], timeout_s=400)
    assert search["state"] == "succeeded", search
    supernet = poll_resource(client, f"/api/v1/supernets/{supernet_id}", lambda s: s["state"] == "ready", 60)
    trials = trial_details(client, search["id"])
    assert trials and all(_epochs(t) == EPOCHS_OF_A_FULL_TRIAL for t in trials), trials
    early = [r for t in trials for r in t["reports"] if r["metrics"]["supernet_epoch"] == 1]
    # measured on epoch 1 while the stand-alone training went on
    assert min(r["created_at"] for r in early) < supernet["finished_at"], (early, supernet)
    assert supernet["metrics"]["torch_threads"] == 1, supernet["metrics"]  # trained on 1 of the 2 CPUs


def test_a_search_on_early_epochs_is_queued_again_while_the_search_training_them_is_paused(
    client: httpx.Client,
) -> None:
    owner_spec = {
        "task": "wine",
        "space": MLP_SPACE,
        "objectives": OBJECTIVES,
        "budget": {"max_trials": 1, "max_parallel": 1},
        "scheduler": {"type": "fifo"},
        "supernet": TRAINING,
        "fidelity": {"finetune_epochs": 1},
    }
    owner = client.post("/api/v1/searches", json=owner_spec)
    assert owner.status_code == 201, owner.text
    owner_id, supernet_id = owner.json()["id"], owner.json()["supernet_id"]
    created = client.post("/api/v1/searches", json=EARLY | {"supernet_id": supernet_id})
    assert created.status_code == 201, created.text
    early_id = created.json()["id"]

    # its first trial reported on epoch 1 and waits for epoch 300 (the pause landed near epoch 70)
    poll(lambda: any(t["reports"] for t in trial_details(client, early_id)), 300, "a report on epoch 1")
    assert client.post(f"/api/v1/searches/{owner_id}/pause").status_code == 202
    requeued = wait_for_search(client, early_id, lambda s: s["state"] != "running", timeout_s=120)
    reason = f"waiting for supernet {supernet_id} to train again: paused with search {owner_id}"
    assert (requeued["state"], requeued["state_reason"]) == ("queued", reason + "; trains when it resumes")
    set_aside = [t for t in trial_details(client, early_id) if t["state"] == "paused"]
    assert set_aside and all(t["reports"] for t in set_aside), trial_details(client, early_id)

    assert client.post(f"/api/v1/searches/{owner_id}/resume").status_code == 202
    search = wait_until_ended(client, early_id, timeout_s=400)
    assert search["state"] == "succeeded", search
    assert wait_until_ended(client, owner_id, timeout_s=400)["state"] == "succeeded"
    assert client.get(f"/api/v1/supernets/{supernet_id}").json()["state"] == "ready"
    resumed = [t for t in trial_details(client, early_id) if t["number"] in {s["number"] for s in set_aside}]
    for trial in resumed:  # epoch 1 before the pause, then epoch 300 and the trained supernet after it
        assert trial["state"] == "succeeded", trial
        assert _epochs(trial) == EPOCHS_OF_A_FULL_TRIAL, trial

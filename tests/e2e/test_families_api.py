"""End to end through the real service (SQLite, embedded Ray): every supernet family trains on a
built-in task through the API, a stand-alone supernet is reused by a later search without training
again, an uploaded data set is searched, a collapsing supernet fails the search with the reason, a
search waiting for another search's supernet waits through that search's pause, and downloaded ONNX
models reproduce the test accuracy recorded by the search."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from service_process import poll_resource, running_service
from sklearn.datasets import load_breast_cancer

from workers.datasets import load_dataset_task
from workers.tasks import load_task

pytestmark = pytest.mark.slow

OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}, {"metric": "macs", "direction": "minimize"}]
TERMINAL = {"succeeded", "failed", "canceled"}
TRANSFORMER_SEARCH = {
    "name": "e2e-transformer",
    "task": "mnist1d",
    "space": {
        "family": "elastic_transformer",
        "num_layers": [1, 2],
        "num_heads": [1, 2],
        "embed_dim": [16, 32],
        "mlp_ratio": [1, 2],
    },
    "objectives": OBJECTIVES,
    "budget": {"max_trials": 3, "max_parallel": 2, "max_duration_s": 600},
    "scheduler": {"type": "fifo"},
    "supernet": {"epochs": 4, "batch_size": 64, "lr": 0.05},
    "fidelity": {"finetune_epochs": 1},
}
MLP_SPACE = {"family": "elastic_mlp", "depth": [1, 2], "width": [16, 32], "activation": ["relu", "gelu"]}


class Service(httpx.Client):
    artifacts: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("families")
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db") as handle:
        client = Service(base_url=handle.url, timeout=60)
        client.artifacts = data_dir / "artifacts"
        yield client


def _onnx_accuracy_matches_manifest(
    client: httpx.Client, search: dict, x: np.ndarray, y: np.ndarray
) -> float:
    """Download the best trial's ONNX file and reproduce the test accuracy its manifest records."""
    base = f"/api/v1/searches/{search['id']}/trials/{search['best_trial']}/model"
    manifest = client.get(base, params={"format": "manifest"}).json()
    onnx_bytes = client.get(base, params={"format": "onnx"}).content
    assert manifest["verification"]["onnx"]["passed"] is True
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    accuracy = float((logits.argmax(1) == y).mean())
    assert accuracy == pytest.approx(manifest["test_accuracy"], abs=1.5 / len(y))
    return accuracy


def test_transformer_on_mnist1d_runs_and_its_onnx_model_reproduces_the_test_accuracy(
    service: Service,
) -> None:
    created = service.post("/api/v1/searches", json=TRANSFORMER_SEARCH)
    assert created.status_code == 201, created.text
    search = poll_resource(
        service, f"/api/v1/searches/{created.json()['id']}", lambda s: s["state"] in TERMINAL, 400
    )
    assert search["state"] == "succeeded", search
    supernet = service.get(f"/api/v1/supernets/{search['supernet_id']}").json()
    assert supernet["state"] == "ready" and supernet["family"] == "elastic_transformer"
    assert len(supernet["data_fingerprint"]) == 64 and len(supernet["history"]) == 4
    trial = service.get(f"/api/v1/searches/{search['id']}/trials/{search['best_trial']}").json()
    for metric in ("macs", "model_bytes", "latency_ms", "latency_ms_b32", "peak_memory_mb", "params"):
        assert trial["metrics"][metric] > 0, metric
    task = load_task("mnist1d")
    accuracy = _onnx_accuracy_matches_manifest(service, search, task.x_test, task.y_test)
    assert accuracy > 0.15  # chance is 0.1


def test_uploaded_tabular_data_a_standalone_mlp_supernet_and_a_search_reusing_it(service: Service) -> None:
    bunch = load_breast_cancer()
    header = ",".join(f"f{i}" for i in range(bunch.data.shape[1])) + ",label"
    rows = [
        ",".join(f"{v:.6g}" for v in row) + f",{bunch.target_names[t]}"
        for row, t in zip(bunch.data, bunch.target, strict=True)
    ]
    upload = service.post(
        "/api/v1/datasets", params={"filename": "cancer.csv"}, content=("\n".join([header, *rows])).encode()
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    assert dataset["num_examples"] == 569 and dataset["kind"] == "tabular"

    trained = service.post(
        "/api/v1/supernets",
        json={
            "task": dataset["id"],
            "space": MLP_SPACE,
            "training": {"epochs": 6, "batch_size": 32, "lr": 0.05},
        },
    )
    assert trained.status_code == 201, trained.text
    # submitted before the supernet is trained: the search waits queued for it, then reuses it
    search_spec = {
        "task": dataset["id"],
        "supernet_id": trained.json()["id"],
        "objectives": OBJECTIVES,
        "budget": {"max_trials": 3, "max_parallel": 2},
        "scheduler": {"type": "fifo"},
        "fidelity": {"finetune_epochs": 1},
    }
    created = service.post("/api/v1/searches", json=search_spec)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "queued", created.json()
    assert created.json()["state_reason"].startswith(f"waiting for supernet {trained.json()['id']}")
    supernet = poll_resource(
        service, f"/api/v1/supernets/{trained.json()['id']}", lambda s: s["state"] in {"ready", "failed"}, 400
    )
    assert supernet["state"] == "ready", supernet
    assert supernet["metrics"]["largest_val_accuracy"] > 0.85

    search = poll_resource(
        service, f"/api/v1/searches/{created.json()['id']}", lambda s: s["state"] in TERMINAL, 400
    )
    assert search["state"] == "succeeded", search
    assert search["supernet_id"] == supernet["id"]
    # it waited for the training to end
    assert datetime.fromisoformat(search["started_at"]) >= datetime.fromisoformat(supernet["finished_at"])
    assert service.get("/api/v1/supernets", params={"task": dataset["id"]}).json()["total"] == 1
    assert service.get(f"/api/v1/supernets/{supernet['id']}").json()["history"] == supernet["history"]

    # the ONNX model reproduces the test accuracy on the data set's own test split
    task = load_dataset_task(service.artifacts / "datasets" / dataset["id"], dataset["id"])
    accuracy = _onnx_accuracy_matches_manifest(service, search, task.x_test, task.y_test)
    assert accuracy > 0.85


def test_a_collapsing_supernet_fails_the_search_with_the_reason(service: Service) -> None:
    spec = {
        "task": "wine",
        "space": MLP_SPACE,
        "objectives": OBJECTIVES,
        "supernet": {"epochs": 6, "batch_size": 16, "lr": 10.0, "weight_decay": 0.0},
    }
    created = service.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search = poll_resource(
        service, f"/api/v1/searches/{created.json()['id']}", lambda s: s["state"] in TERMINAL, 400
    )
    assert search["state"] == "failed" and "collapsed" in search["state_reason"], search
    supernet = service.get(f"/api/v1/supernets/{search['supernet_id']}").json()
    assert supernet["state"] == "failed" and "collapsed" in supernet["state_reason"]
    assert service.get(f"/api/v1/searches/{search['id']}/trials").json()["total"] == 0


def test_a_search_waiting_for_a_stand_alone_supernet_that_collapses_fails_with_the_reason(
    service: Service,
) -> None:
    collapsing = {"epochs": 6, "batch_size": 16, "lr": 10.0, "weight_decay": 0.0}
    body = {"task": "wine", "space": MLP_SPACE, "training": collapsing}
    trained = service.post("/api/v1/supernets", json=body)
    assert trained.status_code == 201, trained.text
    supernet_id = trained.json()["id"]
    created = service.post(
        "/api/v1/searches", json={"task": "wine", "supernet_id": supernet_id, "objectives": OBJECTIVES}
    )
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "queued", created.json()
    search = poll_resource(
        service, f"/api/v1/searches/{created.json()['id']}", lambda s: s["state"] in TERMINAL, 400
    )
    supernet = service.get(f"/api/v1/supernets/{supernet_id}").json()
    assert supernet["state"] == "failed" and "collapsed" in supernet["state_reason"], supernet
    assert search["state"] == "failed", search
    assert search["state_reason"].startswith(f"supernet {supernet_id} is failed: ")
    assert "collapsed" in search["state_reason"]
    assert service.get(f"/api/v1/searches/{search['id']}/trials").json()["total"] == 0


def test_a_search_waits_through_a_pause_of_the_search_training_its_supernet(service: Service) -> None:
    """Pausing the search that trains a supernet during the training leaves the supernet queued, and
    a search naming it goes on waiting; once the first is resumed and trains it, the second runs."""
    owner_spec = {
        "task": "wine",
        "space": MLP_SPACE,
        "objectives": OBJECTIVES,
        "budget": {"max_trials": 2, "max_parallel": 2},
        "scheduler": {"type": "fifo"},
        "supernet": {"epochs": 400, "batch_size": 16, "lr": 0.05},
        "fidelity": {"finetune_epochs": 1},
    }
    owner = service.post("/api/v1/searches", json=owner_spec)
    assert owner.status_code == 201, owner.text
    owner_id, supernet_id = owner.json()["id"], owner.json()["supernet_id"]
    waiting_spec = {k: v for k, v in owner_spec.items() if k not in ("space", "supernet")}
    waiting = service.post("/api/v1/searches", json=waiting_spec | {"supernet_id": supernet_id})
    assert waiting.status_code == 201, waiting.text
    waiting_id = waiting.json()["id"]

    poll_resource(service, f"/api/v1/supernets/{supernet_id}", lambda s: s["state"] == "training", 120)
    assert service.post(f"/api/v1/searches/{owner_id}/pause").status_code == 202
    poll_resource(service, f"/api/v1/searches/{owner_id}", lambda s: s["state"] == "paused", 120)
    supernet = service.get(f"/api/v1/supernets/{supernet_id}").json()
    assert supernet["state"] == "queued", supernet
    assert supernet["state_reason"] == f"paused with search {owner_id}; trains when it resumes"
    time.sleep(3)  # the dispatcher polls every second: the waiting search must not be claimed
    assert service.get(f"/api/v1/searches/{waiting_id}").json()["state"] == "queued"

    assert service.post(f"/api/v1/searches/{owner_id}/resume").status_code == 202
    resumed = poll_resource(service, f"/api/v1/searches/{owner_id}", lambda s: s["state"] in TERMINAL, 400)
    assert resumed["state"] == "succeeded", resumed
    search = poll_resource(service, f"/api/v1/searches/{waiting_id}", lambda s: s["state"] in TERMINAL, 400)
    assert search["state"] == "succeeded", search
    supernet = service.get(f"/api/v1/supernets/{supernet_id}").json()
    assert supernet["state"] == "ready", supernet
    assert datetime.fromisoformat(search["started_at"]) >= datetime.fromisoformat(supernet["finished_at"])

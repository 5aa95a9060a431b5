"""A joint architecture + quantization policy search through the API: its Pareto front mixes
precisions, and a front point downloads as a real quantized ONNX model that runs in stock ONNX Runtime
with the accuracy, size and (within timing noise) latency the service reported for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime
import pytest
from service_process import running_service, wait_until_ended

from search_spaces.quantization import policy_from_config
from workers.onnx_quant import onnx_latency_ms, weight_bytes
from workers.tasks import load_task

pytestmark = pytest.mark.slow

SEARCH = {
    "name": "quant-e2e",
    "task": "digits",
    "space": {
        "family": "elastic_cnn",
        "stage_channels": [8, 16],
        "depth": [1, 2],
        "width_mult": [0.5, 1.0],
        "kernel_size": [3],
        "expand_ratio": [2],
    },
    "quantization": {"calibration_examples": [32, 128]},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
        {"metric": "model_bytes", "direction": "minimize"},
    ],
    "budget": {"max_trials": 8, "max_parallel": 2, "max_duration_s": 600},
    "scheduler": {"type": "fifo"},
    "supernet": {"epochs": 3, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1, "max_train_examples": 300},
    "seed": 3,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("quantization")
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db") as handle:
        yield httpx.Client(base_url=handle.url, timeout=30)


@pytest.fixture(scope="module")
def search(client: httpx.Client) -> dict[str, Any]:
    created = client.post("/api/v1/searches", json=SEARCH)
    assert created.status_code == 201, created.text
    return wait_until_ended(client, created.json()["id"], timeout_s=500)


def _trial(client: httpx.Client, search_id: str, number: int) -> dict[str, Any]:
    return client.get(f"/api/v1/searches/{search_id}/trials/{number}").json()


def _precisions(config: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p.weights, p.activations) for p in policy_from_config(config).values()}


def test_front_mixes_precisions_within_and_across_models(
    client: httpx.Client, search: dict[str, Any]
) -> None:
    assert search["state"] == "succeeded", search
    front = client.get(f"/api/v1/searches/{search['id']}/pareto").json()["trials"]
    assert front
    policies = [policy_from_config(t["config"]) for t in front]
    assert all(policies), "every trial carries a policy in its config"
    assert (
        len({tuple(sorted((u, p.weights, p.activations) for u, p in pol.items())) for pol in policies}) >= 2
    )
    assert any(len(_precisions(t["config"])) >= 2 for t in front), "a front model mixes precisions"


def test_a_front_point_downloads_as_the_real_quantized_model_it_reported(
    client: httpx.Client, search: dict[str, Any], tmp_path: Any
) -> None:
    search_id = search["id"]
    front = client.get(f"/api/v1/searches/{search_id}/pareto").json()["trials"]
    quantized = [t for t in front if "onnx-quantized" in t["model_formats"]]
    assert quantized, "a front point quantizes some layer"
    trial = _trial(client, search_id, max(quantized, key=lambda t: t["metrics"]["accuracy"])["number"])
    base = f"/api/v1/searches/{search_id}/trials/{trial['number']}/model"
    manifest = client.get(base, params={"format": "manifest"}).json()
    payload = client.get(base, params={"format": "onnx-quantized"}).content
    assert hashlib.sha256(payload).hexdigest() == manifest["files"]["onnx-quantized"]["sha256"]
    path = tmp_path / "model.quantized.onnx"
    path.write_bytes(payload)

    section = manifest["quantization"]
    assert section["policy"] == {u: p.to_dict() for u, p in policy_from_config(trial["config"]).items()}
    graph = onnx.load(str(path)).graph
    assert any(node.op_type == "DequantizeLinear" for node in graph.node)

    metrics = trial["metrics"]
    task = load_task("digits")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: task.x_val})[0]
    accuracy = float((np.argmax(logits, axis=1) == task.y_val).mean())
    assert abs(accuracy - metrics["accuracy"]) <= 1 / len(task.y_val) + 1e-9  # the reported accuracy
    assert metrics["model_bytes"] == weight_bytes(onnx.load(str(path)))  # the delivered model's weights
    assert metrics["model_bytes"] < len(payload)
    measured = onnx_latency_ms(path, task.input_shape, repeats=50)
    assert metrics["latency_ms"] / 4 <= measured <= metrics["latency_ms"] * 4, (measured, metrics)
    assert "fake_quant_accuracy" in metrics and 0 <= metrics["fake_quant_accuracy"] <= 1
    assert section["gap"] == pytest.approx(metrics["fake_quant_accuracy"] - metrics["accuracy"])


def test_fidelity_steps_raise_the_calibration_set(client: httpx.Client, search: dict[str, Any]) -> None:
    trial = _trial(client, search["id"], 0)
    # calibration sets [32, 128]: two steps of inherited weights, then one fine-tuning epoch
    assert [r["fidelity"] for r in trial["reports"]] == [0, 1, 2]


def test_an_all_float_model_offers_no_quantized_download(
    client: httpx.Client, search: dict[str, Any]
) -> None:
    trials = client.get(f"/api/v1/searches/{search['id']}/trials", params={"page_size": 100}).json()["items"]
    for listed in trials:
        trial = _trial(client, search["id"], listed["number"])
        if trial["state"] != "succeeded":
            continue
        policy = policy_from_config(trial["config"])
        assert ("onnx-quantized" in trial["model_formats"]) == any(not p.is_float for p in policy.values())

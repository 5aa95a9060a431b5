"""End to end: the real service process, real Ray, a real database (SQLite and PostgreSQL).

Submit a search over HTTP, follow it to the end, check the Pareto front against the trials,
download the best sub-network and run it; cancel a running search and keep its records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import torch
from service_process import running_service, wait_for_search

from supernas.objectives import Direction
from surrogates.pareto import non_dominated_mask
from workers.tasks import load_task

pytestmark = pytest.mark.slow

OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize"},
    {"metric": "latency_ms", "direction": "minimize"},
    {"metric": "params", "direction": "minimize"},
]
SMALL_SEARCH = {
    "name": "e2e-small",
    "task": "digits",
    "space": {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]},
    "objectives": OBJECTIVES,
    "budget": {"max_trials": 6, "max_parallel": 2, "max_duration_s": 600},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    "supernet": {"epochs": 3, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1},
    "seed": 0,
}
LONG_SEARCH = SMALL_SEARCH | {
    "name": "e2e-to-cancel",
    "budget": {"max_trials": 50, "max_parallel": 1, "max_duration_s": 600},
    "scheduler": {"type": "fifo"},
    "fidelity": {"finetune_epochs": 30},
}
TERMINAL = {"succeeded", "failed", "canceled"}


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[httpx.Client]:
    from db_helpers import postgres_database

    data_dir = tmp_path_factory.mktemp("service")
    auth_on = {"SUPERNAS_AUTH": "true"}  # as deployed: every request carries the printed admin token
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{data_dir}/supernas.db"
        else:
            database_url = stack.enter_context(postgres_database())
        handle = stack.enter_context(running_service(data_dir, database_url, extra_env=auth_on))
        headers = {"Authorization": f"Bearer {handle.admin_token()}"}
        assert httpx.get(f"{handle.url}/api/v1/searches").status_code == 401
        yield httpx.Client(base_url=handle.url, timeout=30, headers=headers)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        metafunc.parametrize(
            "service",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )


def _all_trials(client: httpx.Client, search_id: str) -> list[dict]:
    trials, token = [], None
    while True:
        params = {"page_size": 4} | ({"page_token": token} if token else {})
        page = client.get(f"/api/v1/searches/{search_id}/trials", params=params).json()
        trials += page["items"]
        token = page["next_page_token"]
        if not token:
            return trials


def test_search_runs_to_the_end_and_its_best_model_runs(service: httpx.Client, tmp_path: Path) -> None:
    created = service.post("/api/v1/searches", json=SMALL_SEARCH)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]

    progress_seen = wait_for_search(service, search_id, lambda s: s["state"] != "queued")
    assert progress_seen["state"] in {"running", "succeeded"}
    final = wait_for_search(service, search_id, lambda s: s["state"] in TERMINAL)
    assert final["state"] == "succeeded", final

    trials = _all_trials(service, search_id)
    assert [t["number"] for t in trials] == list(range(6))
    assert sum(final["trial_counts"].values()) == 6
    succeeded = [t for t in trials if t["state"] == "succeeded"]
    assert succeeded, trials
    for trial in trials:
        assert trial["state"] in {"succeeded", "pruned"}, trial
        detail = service.get(f"/api/v1/searches/{search_id}/trials/{trial['number']}").json()
        assert [r["fidelity"] for r in detail["reports"]] == [float(i) for i in range(len(detail["reports"]))]
        if trial["state"] == "succeeded":
            assert trial["fidelity"] == 1.0 and trial["has_model"]
            assert 0.0 <= trial["metrics"]["accuracy"] <= 1.0
            assert trial["metrics"]["latency_ms"] > 0 and trial["metrics"]["params"] > 0

    # the front is exactly the non-dominated succeeded trials
    pareto = service.get(f"/api/v1/searches/{search_id}/pareto").json()
    front = {t["number"] for t in pareto["trials"]}
    metrics = [o["metric"] for o in OBJECTIVES]
    values = np.array([[t["metrics"][m] for m in metrics] for t in succeeded])
    mask = non_dominated_mask(values, [Direction(o["direction"]) for o in OBJECTIVES])
    assert front == {t["number"] for t, keep in zip(succeeded, mask, strict=True) if keep}
    best = max(succeeded, key=lambda t: t["metrics"]["accuracy"])
    assert final["best"]["accuracy"]["value"] == best["metrics"]["accuracy"]
    assert final["best_trial"] in front

    # download the best sub-network, check its sha256 and run it on test inputs
    base = f"/api/v1/searches/{search_id}/trials/{final['best_trial']}/model"
    manifest = service.get(base, params={"format": "manifest"}).json()
    model_bytes = service.get(base).content
    assert hashlib.sha256(model_bytes).hexdigest() == manifest["files"]["torchscript"]["sha256"]
    best_config = next(t for t in trials if t["number"] == final["best_trial"])["config"]
    assert manifest["config"] == best_config
    assert manifest["architecture"]["depth"] == [best_config["depth_s0"], best_config["depth_s1"]]
    path = tmp_path / "best.pt"
    path.write_bytes(model_bytes)
    model = torch.jit.load(str(path))
    task = load_task("digits")
    with torch.inference_mode():
        logits = model(torch.from_numpy(task.x_test))
    assert logits.shape == (len(task.y_test), 10)
    test_accuracy = float((logits.argmax(1).numpy() == task.y_test).mean())
    assert test_accuracy > 0.5  # chance is 0.1
    assert test_accuracy == pytest.approx(manifest["test_accuracy"], abs=1.5 / len(task.y_test))

    # the ONNX file, verified against PyTorch at export, runs in ONNX Runtime with the same accuracy
    onnx_bytes = service.get(base, params={"format": "onnx"}).content
    assert hashlib.sha256(onnx_bytes).hexdigest() == manifest["files"]["onnx"]["sha256"]
    assert manifest["verification"]["onnx"]["passed"] is True
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {session.get_inputs()[0].name: task.x_test})[0]
    assert float((onnx_logits.argmax(1) == task.y_test).mean()) == pytest.approx(
        test_accuracy, abs=1.5 / len(task.y_test)
    )

    # a pruned trial, if any, has no model and says why
    for trial in trials:
        if not trial["has_model"]:
            response = service.get(f"/api/v1/searches/{search_id}/trials/{trial['number']}/model")
            assert response.status_code == 409 and "no model" in response.json()["detail"]


def test_cancel_stops_a_running_search_and_keeps_every_record(service: httpx.Client) -> None:
    search_id = service.post("/api/v1/searches", json=LONG_SEARCH).json()["id"]
    wait_for_search(
        service, search_id, lambda s: any(t["fidelity"] is not None for t in _all_trials(service, s["id"]))
    )
    response = service.post(f"/api/v1/searches/{search_id}/cancel")
    assert response.status_code == 202
    final = wait_for_search(service, search_id, lambda s: s["state"] in TERMINAL, 120)
    assert final["state"] == "canceled"
    trials = _all_trials(service, search_id)
    assert trials, "the trials run before the cancel must be kept"
    assert all(t["state"] not in {"pending", "running"} for t in trials)
    assert any(t["state"] == "canceled" for t in trials)
    assert len(trials) < LONG_SEARCH["budget"]["max_trials"]
    canceled = next(t for t in trials if t["state"] == "canceled")
    reports = service.get(f"/api/v1/searches/{search_id}/trials/{canceled['number']}").json()["reports"]
    assert reports, "reports made before the cancel are kept"

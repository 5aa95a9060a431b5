"""Supernets and data sets over the HTTP API in-process (dispatcher off): create, validate, list, reuse."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from problem_json import problem_of

from service.app import create_app
from service.settings import Settings
from supernas.states import SupernetState

CNN_SPACE = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2]}
OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}, {"metric": "macs", "direction": "minimize"}]


@pytest.fixture
def app_and_client(database_url: str, tmp_path: Path) -> Iterator[tuple[object, TestClient]]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        run_dispatcher=False,
        max_upload_bytes=200_000,
        auth=False,
    )
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield app, test_client


@pytest.fixture
def client(app_and_client: tuple[object, TestClient]) -> TestClient:
    return app_and_client[1]


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# --- supernets ---------------------------------------------------------------------------------


def test_a_search_without_supernet_id_creates_its_supernet_record(client: TestClient) -> None:
    search = client.post(
        "/api/v1/searches", json={"task": "digits", "space": CNN_SPACE, "objectives": OBJECTIVES}
    )
    assert search.status_code == 201, search.text
    supernet_id = search.json()["supernet_id"]
    assert supernet_id.startswith("sn_")
    supernet = client.get(f"/api/v1/supernets/{supernet_id}").json()
    assert supernet["search_id"] == search.json()["id"]
    assert supernet["family"] == "elastic_cnn" and supernet["task"] == "digits"
    assert supernet["state"] == "queued"
    assert supernet["training"]["method"] == "sandwich"


def test_create_list_and_get_a_supernet(client: TestClient) -> None:
    body = {"name": "mlp-wine", "task": "wine", "space": {"family": "elastic_mlp"}, "training": {"epochs": 3}}
    created = client.post("/api/v1/supernets", json=body, headers={"Idempotency-Key": "sn-1"})
    assert created.status_code == 201, created.text
    again = client.post("/api/v1/supernets", json=body, headers={"Idempotency-Key": "sn-1"})
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
    changed = body | {"training": {"epochs": 4}}
    reused = problem_of(
        client.post("/api/v1/supernets", json=changed, headers={"Idempotency-Key": "sn-1"}), 409
    )
    assert reused["code"] == "idempotency_key_reused"
    record = created.json()
    assert record["state"] == "queued" and record["family"] == "elastic_mlp"
    assert record["spec"]["training"]["epochs"] == 3
    listed = client.get("/api/v1/supernets", params={"task": "wine"}).json()
    assert [s["id"] for s in listed["items"]] == [record["id"]] and listed["total"] == 1
    assert client.get("/api/v1/supernets", params={"task": "digits"}).json()["total"] == 0
    problem_of(client.get("/api/v1/supernets/sn_nothex"), 404)
    problem_of(client.get("/api/v1/supernets/sn_" + "0" * 32), 404)


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"task": "wine", "space": {"family": "elastic_cnn"}}, "space.family", "takes image data"),
        ({"task": "digits", "space": {"family": "elastic_transformer"}}, "space.family", "takes sequence"),
        ({"task": "digits", "space": {"family": "nope"}}, "space", "unknown supernet family"),
        ({"task": "cifar", "space": {"family": "elastic_mlp"}}, "task", "unknown task"),
        ({"task": "ds_" + "a" * 32, "space": {"family": "elastic_mlp"}}, "task", "no uploaded data set"),
        ({"task": "wine", "space": {"family": "elastic_mlp", "width": [0]}}, "space", "width"),
        (
            {"task": "wine", "space": {"family": "elastic_mlp"}, "training": {"method": "darts"}},
            "training",
            "",
        ),
    ],
)
def test_bad_supernet_specs_get_422_naming_the_field(
    client: TestClient, body: dict, loc: str, words: str
) -> None:
    problem = problem_of(client.post("/api/v1/supernets", json=body), 422)
    assert any(".".join(map(str, e["loc"])).startswith("body." + loc) for e in problem["errors"]), problem
    assert words in problem["detail"]
    assert client.get("/api/v1/supernets").json()["total"] == 0


def _ready_supernet(app: object, client: TestClient) -> dict:
    created = client.post("/api/v1/supernets", json={"task": "digits", "space": CNN_SPACE}).json()
    storage = app.state.storage  # type: ignore[attr-defined]
    storage.set_supernet_state(created["id"], SupernetState.READY, "trained", {"data_fingerprint": "f" * 64})
    return created


def test_a_search_reuses_a_ready_supernet_and_takes_its_space(
    app_and_client: tuple[object, TestClient],
) -> None:
    app, client = app_and_client
    supernet = _ready_supernet(app, client)
    search = client.post(
        "/api/v1/searches", json={"task": "digits", "supernet_id": supernet["id"], "objectives": OBJECTIVES}
    )
    assert search.status_code == 201, search.text
    body = search.json()
    assert body["supernet_id"] == supernet["id"]
    assert body["spec"]["space"]["stage_channels"] == [8, 16]
    assert body["spec"]["supernet"] == supernet["spec"]["training"]
    assert client.get("/api/v1/supernets").json()["total"] == 1  # no new supernet


def test_a_search_naming_a_mismatched_or_failed_supernet_is_refused(
    app_and_client: tuple[object, TestClient],
) -> None:
    app, client = app_and_client
    supernet = _ready_supernet(app, client)
    base = {"supernet_id": supernet["id"], "objectives": OBJECTIVES}
    problem = problem_of(client.post("/api/v1/searches", json={**base, "task": "wine"}), 422)
    assert "trained on task 'digits'" in problem["detail"]
    other_space = {**CNN_SPACE, "depth": [1, 2, 3]}
    problem = problem_of(
        client.post("/api/v1/searches", json={**base, "task": "digits", "space": other_space}), 422
    )
    assert "space differs" in problem["detail"]
    problem = problem_of(
        client.post("/api/v1/searches", json={**base, "task": "digits", "supernet": {"epochs": 99}}), 422
    )
    assert "training settings differ" in problem["detail"]
    failed = client.post("/api/v1/supernets", json={"task": "digits", "space": CNN_SPACE}).json()
    storage = app.state.storage  # type: ignore[attr-defined]
    storage.set_supernet_state(failed["id"], SupernetState.FAILED, "supernet collapsed")
    problem = problem_of(
        client.post("/api/v1/searches", json={**base, "task": "digits", "supernet_id": failed["id"]}), 409
    )
    assert "is failed (supernet collapsed)" in problem["detail"]
    problem = problem_of(
        client.post("/api/v1/searches", json={"task": "digits", "objectives": OBJECTIVES}), 422
    )
    assert "supernet_id" in problem["detail"]


def test_supernet_epochs_are_checked_against_the_named_supernet(
    app_and_client: tuple[object, TestClient],
) -> None:
    app, client = app_and_client
    storage = app.state.storage  # type: ignore[attr-defined]
    old = _ready_supernet(app, client)  # its summary lists no snapshots: trained before they existed
    body = {"task": "digits", "objectives": OBJECTIVES, "fidelity": {"supernet_epochs": [1]}}
    problem = problem_of(client.post("/api/v1/searches", json={**body, "supernet_id": old["id"]}), 422)
    assert problem["errors"][0]["loc"] == ["body", "fidelity", "supernet_epochs"], problem
    assert "keeps no per-epoch weights" in problem["detail"]

    new = client.post("/api/v1/supernets", json={"task": "digits", "space": CNN_SPACE}).json()
    epochs = new["spec"]["training"]["epochs"]
    summary = {"data_fingerprint": "f" * 64, "snapshot_epochs": list(range(1, epochs + 1))}
    storage.set_supernet_state(new["id"], SupernetState.READY, "trained", summary)
    assert (
        client.get(f"/api/v1/supernets/{new['id']}").json()["snapshot_epochs"] == summary["snapshot_epochs"]
    )
    created = client.post("/api/v1/searches", json={**body, "supernet_id": new["id"]})
    assert created.status_code == 201, created.text
    late = {**body, "supernet_id": new["id"], "fidelity": {"supernet_epochs": [1, epochs]}}
    problem = problem_of(client.post("/api/v1/searches", json=late), 422)
    assert f"is not below supernet.epochs ({epochs})" in problem["detail"], problem


def test_a_search_naming_a_supernet_still_in_training_is_queued_to_wait_for_it(
    app_and_client: tuple[object, TestClient],
) -> None:
    app, client = app_and_client
    queued = client.post("/api/v1/supernets", json={"task": "digits", "space": CNN_SPACE}).json()
    body = {"task": "digits", "supernet_id": queued["id"], "objectives": OBJECTIVES}
    search = client.post("/api/v1/searches", json=body)
    assert search.status_code == 201, search.text
    assert search.json()["state"] == "queued"
    waiting = f"waiting for supernet {queued['id']} to be trained"
    assert search.json()["state_reason"] == waiting
    early_body = body | {"fidelity": {"supernet_epochs": [1]}}
    before = client.post("/api/v1/searches", json=early_body).json()
    assert before["state_reason"] == f"waiting for supernet {queued['id']} to start training"
    assert search.json()["spec"]["space"]["stage_channels"] == [8, 16]  # the supernet's space

    storage = app.state.storage  # type: ignore[attr-defined]
    storage.set_supernet_state(queued["id"], SupernetState.TRAINING, "epoch 1/20")
    again = client.post("/api/v1/searches", json=body).json()
    assert again["state"] == "queued" and again["state_reason"] == waiting
    early = client.post("/api/v1/searches", json=early_body)
    assert early.status_code == 201, early.text  # it starts on the early epochs of the training
    assert early.json()["state_reason"] == "waiting for a dispatcher"
    late = body | {"fidelity": {"supernet_epochs": [1, queued["spec"]["training"]["epochs"]]}}
    problem = problem_of(client.post("/api/v1/searches", json=late), 422)
    assert "is not below supernet.epochs" in problem["detail"], problem


# --- data sets ---------------------------------------------------------------------------------


def test_upload_a_csv_then_search_on_it(client: TestClient) -> None:
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(40)]
    uploaded = client.post(
        "/api/v1/datasets", params={"filename": "toy.csv", "name": "toy"}, content="\n".join(rows).encode()
    )
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()
    assert dataset["id"].startswith("ds_") and dataset["kind"] == "tabular"
    assert dataset["input_shape"] == [2] and dataset["num_examples"] == 40 and dataset["num_classes"] == 2
    assert sorted(dataset["label_names"]) == ["no", "yes"]
    assert client.get(f"/api/v1/datasets/{dataset['id']}").json() == dataset
    assert client.get("/api/v1/datasets").json()["total"] == 1
    search = client.post(
        "/api/v1/searches",
        json={"task": dataset["id"], "space": {"family": "elastic_mlp"}, "objectives": OBJECTIVES},
    )
    assert search.status_code == 201, search.text
    problem = problem_of(
        client.post(
            "/api/v1/searches", json={"task": dataset["id"], "space": CNN_SPACE, "objectives": OBJECTIVES}
        ),
        422,
    )
    assert "takes image data" in problem["detail"]


def test_upload_an_npz_of_images(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    content = _npz(x=rng.random((30, 1, 6, 6), dtype=np.float32), y=np.arange(30) % 3)
    dataset = client.post("/api/v1/datasets", params={"filename": "imgs.npz"}, content=content).json()
    assert dataset["kind"] == "image" and dataset["input_shape"] == [1, 6, 6] and dataset["num_classes"] == 3


def test_upload_idempotency_compares_the_data(client: TestClient) -> None:
    url, params, key = "/api/v1/datasets", {"filename": "t.csv"}, {"Idempotency-Key": "ds-1"}
    data = "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(12))
    first = client.post(url, params=params, content=data.encode(), headers=key)
    again = client.post(url, params=params, content=data.encode(), headers=key)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert first.json()["id"] == again.json()["id"]
    other = client.post(url, params=params, content=data.replace("\n0,", "\n9,").encode(), headers=key)
    assert problem_of(other, 409)["code"] == "idempotency_key_reused"
    assert client.get(url).json()["total"] == 1


def test_bad_uploads_get_clear_4xx(client: TestClient) -> None:
    pickled = _npz(x=np.array([{"a": 1}] * 20, dtype=object), y=np.arange(20) % 2)
    problem = problem_of(client.post("/api/v1/datasets", params={"filename": "p.npz"}, content=pickled), 422)
    assert "pickle" in problem["detail"].lower() or "object" in problem["detail"].lower()
    problem = problem_of(
        client.post("/api/v1/datasets", params={"filename": "x.csv"}, content=b"a,b\n1,2\n"), 422
    )
    assert "label" in problem["detail"]
    problem = problem_of(client.post("/api/v1/datasets", params={"filename": "x.exe"}, content=b"MZ"), 422)
    assert ".npz or .csv" in problem["detail"]
    problem = problem_of(
        client.post("/api/v1/datasets", params={"filename": "../../etc/passwd.csv"}, content=b"x"), 422
    )
    big = b"a,label\n" + b"1,0\n" * 60_000
    problem = problem_of(client.post("/api/v1/datasets", params={"filename": "big.csv"}, content=big), 413)
    assert "exceeds the limit of 200000 bytes" in problem["detail"]
    problem_of(client.get("/api/v1/datasets/../x"), 404)
    assert client.get("/api/v1/datasets").json()["total"] == 0

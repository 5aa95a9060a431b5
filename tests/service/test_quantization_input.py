"""Bad ``quantization`` input over the HTTP API (dispatcher off): 422 problems naming the field and
the problem, nothing stored; good input is kept as given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from problem_json import problem_of

from service.app import create_app
from service.settings import Settings
from supernas.states import SupernetState

SPACE = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2]}
OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize"},
    {"metric": "model_bytes", "direction": "minimize"},
]
SPEC = {"name": "quant-input", "task": "digits", "space": SPACE, "objectives": OBJECTIVES}


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The service tests' client, but an unhandled error is the 500 a user would get, not a raise."""
    settings = Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


BAD = [
    pytest.param(
        {"layers": {"s9_b0": {"weights": ["float"]}}},
        "body.quantization",
        ["quantization.layers names 's9_b0'", "its layers: stem, s0_b0, s0_b1, s1_b0, s1_b1, head"],
        id="unknown-layer",
    ),
    pytest.param(
        {"weights": ["int8", "int2"]},
        "body.quantization.weights",
        ["weight precision 'int2' cannot run on the onnxruntime backend"],
        id="int2-weights",
    ),
    pytest.param(
        {"calibration_examples": []},
        "body.quantization.calibration_examples",
        ["the calibration set cannot be empty"],
        id="empty-calibration",
    ),
    pytest.param(
        {"activations": ["int4"]},
        "body.quantization.activations",
        ["activation precision 'int4' cannot run on the onnxruntime backend"],
        id="int4-activations",
    ),
]


@pytest.mark.parametrize(("quantization", "loc", "messages"), BAD)
def test_bad_quantization_is_a_422_naming_the_problem_and_nothing_is_stored(
    client: TestClient, quantization: dict, loc: str, messages: list[str]
) -> None:
    body = problem_of(client.post("/api/v1/searches", json=SPEC | {"quantization": quantization}), 422)
    assert body["code"] == "invalid_input"
    assert any(".".join(str(p) for p in e["loc"]) == loc for e in body["errors"]), body["errors"]
    for message in messages:
        assert message in body["detail"]
    assert client.get("/api/v1/searches").json()["total"] == 0
    assert client.get("/api/v1/supernets").json()["total"] == 0


@pytest.mark.parametrize(("quantization", "loc", "messages"), BAD[:2])
def test_validate_endpoint_gives_the_same_problems(
    client: TestClient, quantization: dict, loc: str, messages: list[str]
) -> None:
    text = yaml.safe_dump(SPEC | {"quantization": quantization})
    response = client.post(
        "/api/v1/searches/validate", content=text.encode(), headers={"content-type": "application/yaml"}
    )
    body = problem_of(response, 422)
    for message in messages:
        assert message in body["detail"]


def test_a_good_quantization_is_accepted_and_kept(client: TestClient) -> None:
    quantization = {
        "weights": ["int8", "float"],
        "layers": {"head": {"weights": ["float"]}},
        "calibration_examples": [32, 128],
    }
    created = client.post("/api/v1/searches", json=SPEC | {"quantization": quantization})
    assert created.status_code == 201, created.text
    kept = client.get(f"/api/v1/searches/{created.json()['id']}").json()["spec"]["quantization"]
    assert kept["weights"] == ["int8", "float"]
    assert kept["layers"] == {"head": {"weights": ["float"], "activations": None}}
    assert kept["calibration_examples"] == [32, 128]
    assert kept["backend"] == "onnxruntime"


def test_an_identical_retry_with_the_default_weights_returns_the_first_search(client: TestClient) -> None:
    """BUG: ``quantization: {}`` stores the non-canonical default weights ["int8", "int4", "float"];
    validating the stored spec again sorts them, so the same request with the same Idempotency-Key is
    refused (409 idempotency_key_reused). See test_quantization_spec.py's ordering test for the fix."""
    headers = {"Idempotency-Key": "quant-retry"}
    spec = SPEC | {"quantization": {}}
    first = client.post("/api/v1/searches", json=spec, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/searches", json=spec, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


def _ready_supernet(client: TestClient) -> str:
    created = client.post("/api/v1/supernets", json={"task": "digits", "space": SPACE})
    assert created.status_code == 201, created.text
    supernet_id = created.json()["id"]
    client.app.state.storage.set_supernet_state(  # type: ignore[attr-defined]
        supernet_id, SupernetState.READY, "trained", {"data_fingerprint": "f" * 64}
    )
    return supernet_id


def test_layers_are_checked_against_a_reused_supernets_space(client: TestClient) -> None:
    """BUG: with ``supernet_id`` (no ``space``) the layers can only be checked once the supernet's space
    is filled in; ``service.spec_validation._with_supernet`` validates the resolved spec again, and the
    pydantic ValidationError it raises is unhandled: a 500 instead of a 422. Fix: catch it there and
    raise an InvalidInputError (or a RequestValidationError) with loc ('body', 'quantization', 'layers')."""
    supernet_id = _ready_supernet(client)
    base = {"task": "digits", "supernet_id": supernet_id, "objectives": OBJECTIVES}
    ok = client.post(
        "/api/v1/searches", json=base | {"quantization": {"layers": {"s1_b1": {"weights": ["int8"]}}}}
    )
    assert ok.status_code == 201, ok.text
    # depth [1, 2]: there is no third block
    bad = {"quantization": {"layers": {"s0_b2": {"weights": ["float"]}}}}
    body = problem_of(client.post("/api/v1/searches", json=base | bad), 422)
    assert (
        "'s0_b2'" in body["detail"] and "its layers: stem, s0_b0, s0_b1, s1_b0, s1_b1, head" in body["detail"]
    )
    assert client.get("/api/v1/searches").json()["total"] == 1

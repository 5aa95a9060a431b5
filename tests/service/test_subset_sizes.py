"""A search that asks for validation subsets or calibration sets larger than its task's splits is
refused when it is submitted (422 naming the field), for built-in tasks and uploaded data sets,
instead of queuing a search whose every trial fails; the largest subsets that fit are accepted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from problem_json import problem_of

from workers.tasks import TASK_INFO, split_sizes

OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}]
DIGITS = TASK_INFO["digits"]


def _search(task: str, family: str, **extra: object) -> dict[str, object]:
    return {"task": task, "space": {"family": family}, "objectives": OBJECTIVES} | extra


def _refused(client: TestClient, spec: dict[str, object], field: str) -> str:
    problem = problem_of(client.post("/api/v1/searches", json=spec), 422)
    assert [".".join(map(str, e["loc"])) for e in problem["errors"]] == [f"body.{field}"], problem
    assert client.get("/api/v1/searches").json()["total"] == 0
    return problem["detail"]


def test_a_validation_subset_as_large_as_the_split_is_refused(client: TestClient) -> None:
    too_large = {"finetune_epochs": 1, "validation_examples": [40, DIGITS.validation_examples]}
    detail = _refused(
        client, _search("digits", "elastic_cnn", fidelity=too_large), "fidelity.validation_examples"
    )
    assert (
        detail
        == "body.fidelity.validation_examples: 359 is not below the 359 validation examples of task 'digits'"
    )
    fits = {"finetune_epochs": 1, "validation_examples": [40, DIGITS.validation_examples - 1]}
    assert (
        client.post("/api/v1/searches", json=_search("digits", "elastic_cnn", fidelity=fits)).status_code
        == 201
    )


def test_a_calibration_set_larger_than_the_training_split_is_refused(client: TestClient) -> None:
    def quantized(largest: int) -> dict[str, object]:
        quantization = {"weights": ["int8", "float"], "calibration_examples": [64, largest]}
        return _search("digits", "elastic_cnn", quantization=quantization)

    detail = _refused(client, quantized(DIGITS.train_examples + 1), "quantization.calibration_examples")
    field = "body.quantization.calibration_examples"
    assert detail == f"{field}: 1079 is more than the 1078 training examples of task 'digits'"
    assert client.post("/api/v1/searches", json=quantized(DIGITS.train_examples)).status_code == 201


@pytest.mark.parametrize("rows", [40, 41, 57])
def test_an_uploaded_data_set_s_splits_bound_its_subsets(client: TestClient, rows: int) -> None:
    lines = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{'yes' if i % 2 else 'no'}" for i in range(rows)]
    uploaded = client.post(
        "/api/v1/datasets", params={"filename": "toy.csv"}, content="\n".join(lines).encode()
    )
    assert uploaded.status_code == 201, uploaded.text
    dataset = uploaded.json()["id"]
    _, validation = split_sizes(rows)
    too_large = {"finetune_epochs": 1, "validation_examples": [validation]}
    detail = _refused(
        client, _search(dataset, "elastic_mlp", fidelity=too_large), "fidelity.validation_examples"
    )
    assert f"is not below the {validation} validation examples of task {dataset!r}" in detail
    fits = {"finetune_epochs": 1, "validation_examples": [validation - 1]}
    assert (
        client.post("/api/v1/searches", json=_search(dataset, "elastic_mlp", fidelity=fits)).status_code
        == 201
    )

"""The HTTP API in-process (dispatcher off): validation, problem+json, paging, cancel, downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from problem_json import problem_of

from service.app import create_app
from service.settings import Settings
from supernas.states import SearchState, TrialState

SPEC = {
    "name": "api-test",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "budget": {"max_trials": 4, "max_parallel": 1},
}


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/searches" in paths
    assert "/api/v1/searches/{search_id}/trials/{number}/model" in paths


def test_create_then_get_search(client: TestClient) -> None:
    created = client.post("/api/v1/searches", json=SPEC)
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["id"]) == 32
    assert body["state"] == "queued"
    assert body["spec"]["budget"]["max_trials"] == 4
    fetched = client.get(f"/api/v1/searches/{body['id']}").json()
    assert fetched["id"] == body["id"]
    assert fetched["trial_counts"]["succeeded"] == 0
    assert fetched["best"] == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": {"family": "resnet_from_mars"}}, "space.family"),
        ({"budget": {"max_trials": -1}}, "budget.max_trials"),
        ({"task": "imagenet"}, "task"),
        ({"strategy": "oracle"}, "strategy"),
        ({"objectives": []}, "objectives"),
    ],
)
def test_invalid_spec_is_rejected_naming_the_field_and_nothing_is_stored(
    client: TestClient, change: dict, field: str
) -> None:
    body = problem_of(client.post("/api/v1/searches", json=SPEC | change), 422)
    assert field in body["detail"]
    assert any(".".join(str(p) for p in e["loc"]).endswith(field) for e in body["errors"])
    assert client.get("/api/v1/searches").json()["total"] == 0


def test_malformed_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/searches", content=b'{"task": "digits",', headers={"content-type": "application/json"}
    )
    assert "malformed JSON" in problem_of(response, 400)["detail"]
    assert client.get("/api/v1/searches").json()["total"] == 0


def test_unknown_and_malformed_ids_are_404(client: TestClient) -> None:
    for search_id in ("0" * 32, "not-an-id", "..%2F..%2Fetc"):
        problem_of(client.get(f"/api/v1/searches/{search_id}"), 404)
        problem_of(client.get(f"/api/v1/searches/{search_id}/trials"), 404)
        problem_of(client.post(f"/api/v1/searches/{search_id}/cancel"), 404)
    problem_of(client.get(f"/api/v1/searches/{'0' * 32}/trials/0/model"), 404)


def test_idempotency_key_returns_the_first_search(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/api/v1/searches", json=SPEC, headers=headers)
    second = client.post("/api/v1/searches", json=SPEC, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert client.get("/api/v1/searches").json()["total"] == 1
    other = problem_of(client.post("/api/v1/searches", json=SPEC | {"name": "other"}, headers=headers), 409)
    assert other["code"] == "idempotency_key_reused" and first.json()["id"] in other["detail"]
    assert client.get("/api/v1/searches").json()["total"] == 1


def test_every_error_carries_a_stable_code(client: TestClient) -> None:
    assert (
        problem_of(client.post("/api/v1/searches", json=SPEC | {"task": ""}), 422)["code"] == "invalid_input"
    )
    malformed = client.post("/api/v1/searches", content=b"{", headers={"content-type": "application/json"})
    assert problem_of(malformed, 400)["code"] == "malformed_body"
    assert problem_of(client.get(f"/api/v1/searches/{'0' * 32}"), 404)["code"] == "not_found"
    assert problem_of(client.get("/api/v1/no-such-route"), 404)["code"] == "not_found"
    assert problem_of(client.delete("/api/v1/searches"), 405)["code"] == "method_not_allowed"
    search_id = client.post("/api/v1/searches", json=SPEC).json()["id"]
    client.post(f"/api/v1/searches/{search_id}/cancel")
    assert problem_of(client.post(f"/api/v1/searches/{search_id}/pause"), 409)["code"] == "conflict"


def test_searches_are_paged_newest_first(client: TestClient) -> None:
    ids = [client.post("/api/v1/searches", json=SPEC | {"name": f"s{i}"}).json()["id"] for i in range(5)]
    seen, token = [], None
    while True:
        params = {"page_size": 2} | ({"page_token": token} if token else {})
        page = client.get("/api/v1/searches", params=params).json()
        assert page["total"] == 5
        seen += [s["id"] for s in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == list(reversed(ids))
    problem_of(client.get("/api/v1/searches", params={"page_token": "garbage!"}), 422)
    problem_of(client.get("/api/v1/searches", params={"page_size": 0}), 422)


def test_cancel_a_queued_search_keeps_it_and_ends_canceled(client: TestClient) -> None:
    search_id = client.post("/api/v1/searches", json=SPEC).json()["id"]
    response = client.post(f"/api/v1/searches/{search_id}/cancel")
    assert response.status_code == 202
    assert response.json()["state"] == "canceled"
    assert client.post(f"/api/v1/searches/{search_id}/cancel").json()["state"] == "canceled"


def test_trials_pareto_and_downloads_from_stored_results(client: TestClient, tmp_path: Path) -> None:
    """Stored trials (written as the dispatcher would) are listed, ranked and downloadable."""
    search_id = client.post("/api/v1/searches", json=SPEC).json()["id"]
    storage = client.app.state.storage
    storage.set_search_state(search_id, SearchState.RUNNING, "test")
    results = [  # accuracy, params
        (0.9, 1000.0, TrialState.SUCCEEDED),
        (0.8, 500.0, TrialState.SUCCEEDED),
        (0.7, 2000.0, TrialState.SUCCEEDED),  # dominated by trial 0
        (float("nan"), 10.0, TrialState.SUCCEEDED),  # NaN never wins
        (0.99, 1.0, TrialState.PRUNED),  # pruned trials do not compete
    ]
    artifact = tmp_path / "artifacts" / "searches" / search_id / "trials" / "0"
    artifact.mkdir(parents=True)
    (artifact / "model.torchscript.pt").write_bytes(b"model-bytes")
    (artifact / "manifest.json").write_text(json.dumps({"trial_number": 0}))
    for number, (acc, params, state) in enumerate(results):
        storage.create_trial(search_id, number, {"depth": [1, 1], "width_mult": 1.0, "kernel_size": 3})
        storage.record_trial_report(search_id, number, 1, 2.0, {"accuracy": acc, "params": params})
        rel = str(artifact.relative_to(tmp_path / "artifacts")) if number == 0 else None
        storage.finish_trial(search_id, number, state, None, rel)

    search = client.get(f"/api/v1/searches/{search_id}").json()
    assert search["best"]["accuracy"] == {"value": 0.9, "trial_number": 0}
    assert search["best"]["params"] == {"value": 500.0, "trial_number": 1}
    assert search["best_trial"] == 0
    assert search["trial_counts"]["succeeded"] == 4

    trials = client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 3}).json()
    assert [t["number"] for t in trials["items"]] == [0, 1, 2]
    assert trials["items"][0]["fidelity"] == 2.0
    nan_trial = client.get(f"/api/v1/searches/{search_id}/trials/3").json()
    assert nan_trial["metrics"]["accuracy"] == "NaN"
    assert nan_trial["reports"][0]["step"] == 1
    pruned = client.get(f"/api/v1/searches/{search_id}/trials", params={"state": "pruned"}).json()
    assert [t["number"] for t in pruned["items"]] == [4]

    pareto = client.get(f"/api/v1/searches/{search_id}/pareto").json()
    assert sorted(t["number"] for t in pareto["trials"]) == [0, 1]

    model = client.get(f"/api/v1/searches/{search_id}/trials/0/model")
    assert model.status_code == 200
    assert model.content == b"model-bytes"
    assert "attachment" in model.headers["content-disposition"]
    manifest = client.get(f"/api/v1/searches/{search_id}/trials/0/model", params={"format": "manifest"})
    assert manifest.json() == {"trial_number": 0}
    no_model = problem_of(client.get(f"/api/v1/searches/{search_id}/trials/4/model"), 409)
    assert "no model" in no_model["detail"]
    problem_of(client.get(f"/api/v1/searches/{search_id}/trials/99/model"), 404)
    problem_of(client.get(f"/api/v1/searches/{search_id}/trials/0/model", params={"format": "exe"}), 422)


def test_service_refuses_to_start_on_an_unknown_schema_revision(database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from service.storage import Storage
    from supernas.errors import SchemaMismatchError

    Storage(database_url).upgrade()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    settings = Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=False)
    with pytest.raises(SchemaMismatchError, match="from_the_future"), TestClient(create_app(settings)):
        pass

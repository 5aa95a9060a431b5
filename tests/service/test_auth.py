"""Bearer-token auth (on): the first admin token, 401s, per-owner isolation reported as 404, token
management and its limits, idempotency keys scoped per owner, secrets stored only hashed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.app import create_app
from service.auth import issue_token
from service.settings import Settings
from service.storage import Storage
from supernas.states import TrialState

SPEC = {
    "name": "auth-test",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4, "max_parallel": 1},
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=True)


@pytest.fixture
def client(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        printed = capsys.readouterr().out
        test_client.admin_token = printed.rsplit(": ", 1)[1].strip()  # type: ignore[attr-defined]
        yield test_client


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new_token(client: TestClient, owner: str, **extra: object) -> str:
    admin = _as(client.admin_token)  # type: ignore[attr-defined]
    response = client.post("/api/v1/tokens", json={"owner": owner, **extra}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def test_first_start_prints_one_admin_token_and_later_starts_do_not(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(create_app(settings)) as first:
        token = capsys.readouterr().out.rsplit(": ", 1)[1].strip()
        assert token.startswith("snas_")
        assert first.get("/api/v1/searches", headers=_as(token)).status_code == 200
    with TestClient(create_app(settings)) as second:
        assert "admin token" not in capsys.readouterr().out
        assert second.get("/api/v1/searches", headers=_as(token)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer snas_000000000000_" + "x" * 43},
    ],
)
def test_requests_without_a_valid_token_get_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/searches", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/healthz").status_code == 200  # health stays open for load balancers


def test_revoked_and_expired_tokens_are_refused(client: TestClient, settings: Settings) -> None:
    alice = _new_token(client, "alice")
    assert client.get("/api/v1/searches", headers=_as(alice)).status_code == 200
    token_id = alice.split("_")[1]
    revoked = client.post(f"/api/v1/tokens/{token_id}/revoke", headers=_as(alice))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/api/v1/searches", headers=_as(alice))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    storage = Storage(settings.resolved_database_url)
    _, expired = issue_token(storage, "bob", "old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    refused = client.get("/api/v1/searches", headers=_as(expired))
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_another_owner_gets_404_for_everything_of_alice(client: TestClient, settings: Settings) -> None:
    alice, bob = _new_token(client, "alice"), _new_token(client, "bob")
    search = client.post("/api/v1/searches", json=SPEC, headers=_as(alice)).json()
    storage = Storage(settings.resolved_database_url)
    storage.create_trial(search["id"], 0, {"depth": 1})
    storage.finish_trial(search["id"], 0, TrialState.SUCCEEDED, None, None, {"accuracy": 0.9})
    base = f"/api/v1/searches/{search['id']}"
    for path in (
        "",
        "/trials",
        "/trials/0",
        "/trials/0/model",
        "/pareto",
        "/points",
        "/hypervolume",
        "/curves",
        "/decisions",
        "/changes",
    ):
        assert client.get(base + path, headers=_as(alice)).status_code in (200, 409), path
        hidden = client.get(base + path, headers=_as(bob))
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found", path
    for verb in ("pause", "resume", "stop", "cancel"):
        assert client.post(f"{base}/{verb}", headers=_as(bob)).status_code == 404, verb
    assert client.delete(base, headers=_as(bob)).status_code == 404
    assert client.get("/api/v1/searches", headers=_as(bob)).json()["total"] == 0
    assert client.get("/api/v1/searches", headers=_as(alice)).json()["total"] == 1
    assert client.get("/api/v1/searches", headers=_as(client.admin_token)).json()["total"] == 1
    supernet_id = search["supernet_id"]
    assert client.get(f"/api/v1/supernets/{supernet_id}", headers=_as(bob)).status_code == 404
    assert client.delete(f"/api/v1/supernets/{supernet_id}", headers=_as(bob)).status_code == 404
    assert client.get("/api/v1/supernets", headers=_as(bob)).json()["total"] == 0

    rows = "a,label\n" + "".join(f"{i},{'xy'[i % 2]}\n" for i in range(12))
    dataset = client.post(
        "/api/v1/datasets", params={"filename": "t.csv"}, content=rows.encode(), headers=_as(alice)
    ).json()
    assert client.get(f"/api/v1/datasets/{dataset['id']}", headers=_as(bob)).status_code == 404
    assert client.get("/api/v1/datasets", headers=_as(bob)).json()["total"] == 0
    on_alices_data = SPEC | {"task": dataset["id"], "space": {"family": "elastic_mlp"}}
    refused = client.post("/api/v1/searches", json=on_alices_data, headers=_as(bob))
    assert refused.status_code == 422 and "no uploaded data set" in refused.json()["detail"]
    accepted = client.post("/api/v1/searches", json=on_alices_data, headers=_as(alice))
    assert accepted.status_code == 201, accepted.text


def test_idempotency_keys_are_per_owner(client: TestClient) -> None:
    alice, bob = _new_token(client, "alice"), _new_token(client, "bob")
    key = {"Idempotency-Key": "same-key"}
    first = client.post("/api/v1/searches", json=SPEC, headers=_as(alice) | key).json()
    other = client.post("/api/v1/searches", json=SPEC, headers=_as(bob) | key)
    assert other.status_code == 201 and other.json()["id"] != first["id"]


def test_token_management_limits(client: TestClient, settings: Settings) -> None:
    alice = _new_token(client, "alice")
    own = client.post("/api/v1/tokens", json={"description": "ci"}, headers=_as(alice))
    assert own.status_code == 201 and own.json()["owner"] == "alice"
    for body in ({"owner": "bob"}, {"is_admin": True}):
        forbidden = client.post("/api/v1/tokens", json=body, headers=_as(alice))
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    bad_owner = client.post("/api/v1/tokens", json={"owner": "Bob Smith"}, headers=_as(client.admin_token))
    assert bad_owner.status_code == 422
    listed = client.get("/api/v1/tokens", headers=_as(alice)).json()["items"]
    assert {t["owner"] for t in listed} == {"alice"} and len(listed) == 2
    assert all("token" not in t for t in listed)
    admin_id = client.admin_token.split("_")[1]  # type: ignore[attr-defined]
    assert client.post(f"/api/v1/tokens/{admin_id}/revoke", headers=_as(alice)).status_code == 404
    everyone = client.get("/api/v1/tokens", headers=_as(client.admin_token)).json()["items"]
    assert {t["owner"] for t in everyone} == {"admin", "alice"}
    secret = alice.split("_", 2)[2]
    storage = Storage(settings.resolved_database_url)
    with storage.engine.connect() as connection:
        dumped = str(connection.execute(text("SELECT * FROM api_tokens")).all())
    assert secret not in dumped and "snas_" not in dumped  # only hashes are stored

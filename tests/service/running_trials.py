"""A search with one running trial, made directly in the service's storage, for tests of what is
recorded about a running trial (its retries, its scheduler's decisions)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.storage import Storage


def storage_of(client: TestClient) -> Storage:
    return client.app.state.storage  # type: ignore[attr-defined]


def running_trial(client: TestClient, spec: dict[str, Any], number: int = 0, fidelity: float = 0.0) -> str:
    """Create a search from ``spec`` with trial ``number`` running and one report at ``fidelity``;
    returns the search's id."""
    created = client.post("/api/v1/searches", json=spec)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    storage = storage_of(client)
    storage.create_trial(search_id, number, {"depth_s0": 1})
    storage.mark_trial_running(search_id, number)
    storage.record_trial_report(search_id, number, 1, fidelity, {"accuracy": 0.5})
    return search_id

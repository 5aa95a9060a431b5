"""A trial's retries (after a failure or a lost worker) are stored in order, survive its end, reach the
API (detail, listing, change feed) and come through the driver's listener; the spec bounds them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from running_trials import running_trial, storage_of

from service.dispatch import StorageListener
from supernas.errors import NotFoundError
from supernas.states import TrialState

SPEC = {
    "name": "retries",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4, "max_parallel": 1},
    "fidelity": {"finetune_epochs": 2},
}
LOST = "worker lost: The actor died unexpectedly before finishing this task."


def _running_trial(client: TestClient, number: int = 0) -> str:
    return running_trial(client, SPEC, number, fidelity=0.0)


def test_retries_are_appended_in_order_and_the_trial_keeps_running(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    assert storage.get_trial(search_id, 0).retries == ()

    first = storage.record_trial_retry(search_id, 0, LOST, 1)
    assert first.state is TrialState.RUNNING and first.fidelity == 0.0  # nothing else changes
    second = storage.record_trial_retry(search_id, 0, "ValueError: boom" + "!" * 3000)  # attempt by count
    assert [r["attempt"] for r in second.retries] == [1, 2]
    assert second.retries[0]["reason"] == LOST
    assert (
        second.retries[1]["reason"].startswith("ValueError: boom")
        and len(second.retries[1]["reason"]) == 2000
    )
    at = [datetime.fromisoformat(r["at"]) for r in second.retries]
    assert all(t.tzinfo is not None for t in at) and at[0] <= at[1]
    assert second.updated_at >= first.updated_at

    storage.record_trial_report(search_id, 0, 2, 1.0, {"accuracy": 0.7})
    done = storage.finish_trial(search_id, 0, TrialState.SUCCEEDED, None, None, {"accuracy": 0.7})
    assert done.state is TrialState.SUCCEEDED and done.retries == second.retries  # the history stays
    assert storage.get_trial(search_id, 0).retries == second.retries
    assert [t.retries for t in storage.all_trials(search_id)] == [second.retries]

    with pytest.raises(NotFoundError):
        storage.record_trial_retry(search_id, 7, LOST)


def test_the_driver_listener_records_a_retry(client: TestClient, tmp_path: Path) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client, number=3)
    listener = StorageListener(storage, search_id, tmp_path)
    listener.trial_retried(3, 1, LOST)
    (retry,) = storage.get_trial(search_id, 3).retries
    assert (retry["attempt"], retry["reason"]) == (1, LOST)


def test_the_api_shows_retries_on_the_trial_its_listing_and_the_change_feed(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    storage.create_trial(search_id, 1, {"depth_s0": 2})
    base = f"/api/v1/searches/{search_id}"
    assert client.get(f"{base}/trials/0").json()["retries"] == []
    cursor = client.get(f"{base}/changes").json()["cursor"]

    storage.record_trial_retry(search_id, 0, LOST, 1)
    detail = client.get(f"{base}/trials/0").json()
    assert detail["state"] == "running"
    (retry,) = detail["retries"]
    assert set(retry) == {"at", "reason", "attempt"}
    assert (retry["reason"], retry["attempt"]) == (LOST, 1)
    listing = client.get(f"{base}/trials").json()["items"]
    assert [t["retries"] for t in listing] == [[retry], []]
    changed = client.get(f"{base}/changes", params={"after": cursor}).json()["trials"]
    assert [(t["number"], t["retries"]) for t in changed] == [(0, [retry])]


def _validate(client: TestClient, spec: dict):
    return client.post("/api/v1/searches/validate", content=json.dumps(spec))


def test_the_spec_bounds_max_retries(client: TestClient) -> None:
    validated = _validate(client, SPEC)
    assert validated.status_code == 200, validated.text
    assert validated.json()["spec"]["budget"]["max_retries"] == 2  # the default
    for value in (0, 10):
        body = SPEC | {"budget": SPEC["budget"] | {"max_retries": value}}
        assert _validate(client, body).status_code == 200, value
    for value in (-1, 11):
        body = SPEC | {"budget": SPEC["budget"] | {"max_retries": value}}
        refused = _validate(client, body)
        assert refused.status_code == 422, value
        assert refused.json()["errors"][0]["loc"][:3] == ["body", "budget", "max_retries"]

"""A running search reads its record from the database at most every 2 s; a pause, stop or budget
change made through this process is read at the search's next decision instead, so that a pause
lands within the step a trial is on."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from running_trials import storage_of

from service.dispatch import LiveControl

SPEC = {
    "name": "live",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 6, "max_parallel": 2},
}


def _running(client: TestClient) -> LiveControl:
    search_id = client.post("/api/v1/searches", json=SPEC).json()["id"]
    record = storage_of(client).claim_next_queued_search()
    assert record is not None and record.id == search_id
    return LiveControl(storage_of(client), record, threading.Event())


def test_a_refresh_reads_a_pause_stop_or_budget_change_at_the_next_call(client: TestClient) -> None:
    control = _running(client)
    assert (control.pausing(), control.winding_down(), control.budget().max_trials) == (False, False, 6)
    changed = client.patch(f"/api/v1/searches/{control.search_id}/budget", json={"max_trials": 3})
    assert changed.status_code == 200, changed.text
    control.refresh()
    assert control.budget().max_trials == 3
    assert client.post(f"/api/v1/searches/{control.search_id}/pause").status_code == 202
    control.refresh()
    assert control.pausing() and control.winding_down()

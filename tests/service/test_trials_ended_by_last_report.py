"""A trial whose last report was stored, but whose search stopped before Tune completed it (a crash,
a shutdown, a pause in that instant), ends from that report: ``succeeded`` with its exported model,
or ``infeasible`` with the broken constraint. It is not set aside to resume, which would make it
``lost`` (the trainable keeps no checkpoint of a trial's last report). A trial with steps still to run
is set aside as before.

The dispatcher runs here without Ray on the test's database; the trainable's side (its last report
and exported model) is covered by tests/workers/test_trial_checkpoints.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from running_trials import storage_of

from service.app import create_app
from service.dispatch import Dispatcher
from service.settings import Settings
from supernas.states import SearchState, TrialState
from workers.driver import SearchOutcome
from workers.export import MANIFEST_FILE
from workers.trial import trial_dir

SPEC = {
    "name": "ended",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "constraints": [{"metric": "params", "op": "<=", "value": 50_000}],
    "budget": {"max_trials": 6, "max_parallel": 2},
    "fidelity": {"finetune_epochs": 2},  # steps 0, 1, 2
}
STOPPED = "its last report was stored, but the search stopped before the trial was completed"


def _trial(client: TestClient, search_id: str, number: int, reports: list[dict[str, Any]]) -> None:
    storage = storage_of(client)
    storage.create_trial(search_id, number, {"depth_s0": 1})
    storage.mark_trial_running(search_id, number)
    for step, report in enumerate(reports, start=1):
        storage.record_trial_report(search_id, number, step, report["fidelity"], report["metrics"])


def _export(client: TestClient, search_id: str, number: int) -> Path:
    """What the trainable's export leaves: the model's directory, whose manifest is written last."""
    root = client.app.state.settings.resolved_artifacts_dir  # type: ignore[attr-defined]
    out = trial_dir(str(root), search_id, number)
    out.mkdir(parents=True)
    (out / MANIFEST_FILE).write_text("{}")
    return out


def _search(client: TestClient) -> str:
    created = client.post("/api/v1/searches", json=SPEC)
    assert created.status_code == 201, created.text
    search_id = created.json()["id"]
    storage = storage_of(client)
    assert storage.claim_next_queued_search().id == search_id  # type: ignore[union-attr]
    small = {"params": 20_000, "accuracy": 0.8}
    _trial(client, search_id, 0, [{"fidelity": f, "metrics": small} for f in (0.0, 1.0, 2.0)])  # exported
    _export(client, search_id, 0)
    _trial(client, search_id, 1, [{"fidelity": 0.0, "metrics": {"params": 90_000, "accuracy": 0.3}}])
    _trial(client, search_id, 2, [{"fidelity": f, "metrics": small} for f in (0.0, 1.0)])  # mid-way
    _trial(client, search_id, 3, [{"fidelity": f, "metrics": small} for f in (0.0, 1.0, 2.0)])  # no model
    over = {"params": 20_000, "accuracy": 0.9, "latency_ms": 1.0}
    _trial(client, search_id, 4, [{"fidelity": f, "metrics": over} for f in (0.0, 2.0)])
    _export(client, search_id, 4)
    return search_id


def _states(client: TestClient, search_id: str) -> dict[int, tuple[TrialState, str | None]]:
    return {t.number: (t.state, t.state_reason) for t in storage_of(client).all_trials(search_id)}


def test_a_shutdown_ends_the_trials_whose_last_report_was_stored(client: TestClient) -> None:
    search_id = _search(client)
    dispatcher: Dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]
    dispatcher._shutdown.set()
    dispatcher._finish(search_id, SearchOutcome(SearchState.CANCELED, "shutdown"), user_canceled=False)

    states = _states(client, search_id)
    assert states[0] == (TrialState.SUCCEEDED, f"{STOPPED}: finished from that report")
    assert states[1] == (TrialState.INFEASIBLE, "params = 90000 violates <= 50000")
    assert states[2][0] is TrialState.PAUSED  # it has a step to run: set aside, as before
    assert states[3] == (TrialState.LOST, f"{STOPPED}, and its exported model is missing")
    assert states[4][0] is TrialState.SUCCEEDED
    storage = storage_of(client)
    assert storage.get_search(search_id).state is SearchState.QUEUED
    succeeded = storage.get_trial(search_id, 0)
    assert succeeded.artifact_dir == f"searches/{search_id}/trials/0"
    assert succeeded.metrics == {"params": 20_000, "accuracy": 0.8}
    assert storage.get_trial(search_id, 4).metrics["latency_ms"] == 1.0


def test_after_a_crash_the_next_run_ends_them_and_counts_them_in_the_budget(client: TestClient) -> None:
    search_id = _search(client)
    storage = storage_of(client)
    assert storage.recover_interrupted_searches() == [search_id]  # as at the start after a kill -9
    assert {n: s for n, (s, _) in _states(client, search_id).items()} == {
        n: TrialState.PAUSED for n in range(5)
    }
    record = storage.claim_next_queued_search()
    assert record is not None and record.id == search_id
    dispatcher: Dispatcher = client.app.state.dispatcher  # type: ignore[attr-defined]

    job = dispatcher._job(record)

    states = _states(client, search_id)
    assert [states[n][0] for n in range(5)] == [
        TrialState.SUCCEEDED,
        TrialState.INFEASIBLE,
        TrialState.LOST,  # set aside, but no checkpoint of its step 1 was kept (no Ray run here)
        TrialState.LOST,
        TrialState.SUCCEEDED,
    ]
    assert job.spent_before == 3  # two succeeded and one infeasible used budget; the lost did not
    assert sorted(o.number for o in job.history) == [0, 1, 2, 3, 4]
    assert job.resumed == []
    assert sorted(number for number, _, _ in job.curves) == [0, 1, 2, 3, 4]


def test_a_restart_ends_them_before_it_ends_a_search_whose_user_asked_to_stop(
    database_url: str, tmp_path: Path
) -> None:
    """At start-up, before a stop requested before the crash ends the search and loses its trials."""
    settings = Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=False)
    with TestClient(create_app(settings)) as before_the_crash:
        search_id = _search(before_the_crash)
        assert before_the_crash.post(f"/api/v1/searches/{search_id}/stop").status_code == 202

    with TestClient(create_app(settings)) as restarted:  # its start-up recovers the search
        states = _states(restarted, search_id)
        search = storage_of(restarted).get_search(search_id)
    assert (search.state, search.state_reason) == (SearchState.SUCCEEDED, "stopped by user")
    assert [states[n][0] for n in range(5)] == [
        TrialState.SUCCEEDED,
        TrialState.INFEASIBLE,
        TrialState.LOST,  # the search ends here, so the trial with a step to run is lost
        TrialState.LOST,
        TrialState.SUCCEEDED,
    ]

"""A multi-fidelity scheduler's decisions about a trial (continue, pause, resume, stop) are stored in
order with their reasons, a pause makes the trial paused and its next start running again, while a
resume decision alone waits for that start (a paused trial
is unfinished: counted, listed, canceled, and set aside or lost like a running one), a decision about
a finished trial is history only; they reach the API (detail, listing, change feed), come through the
driver's listener, and migration 0007 keeps the rows of a 0006 database."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from running_trials import running_trial, storage_of
from sqlalchemy import DateTime, bindparam, text

from service.dispatch import StorageListener
from service.storage import Storage
from service.storage.engine import make_engine
from service.storage.migrate import alembic_config
from supernas.errors import NotFoundError
from supernas.states import SearchState, TrialState

SPEC = {
    "name": "decisions",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4, "max_parallel": 2},
    "fidelity": {"finetune_epochs": 2},
}
PAUSE = {
    "action": "pause",
    "fidelity": 3,
    "reason": "freeze-thaw: another trial has the higher expected improvement",
    "rung": 1,
    "predicted": {"fidelity": 8, "mean": 0.91, "std": 0.03},
    "acquisition": 0.42,
}
OLD = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
RETRY = {"at": "2026-11-01T10:30:00+00:00", "reason": "worker lost", "attempt": 1}
RESUME = {"action": "resume", "fidelity": 3, "reason": "freeze-thaw: now the best to thaw", "rung": None}


def _running_trial(client: TestClient, number: int = 0) -> str:
    return running_trial(client, SPEC, number, fidelity=1.0)


def test_decisions_are_appended_in_order_a_pause_moves_the_trial_and_a_resume_waits_for_its_start(
    client: TestClient,
) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    started_at = storage.get_trial(search_id, 0).started_at
    assert storage.get_trial(search_id, 0).decisions == ()

    kept = storage.record_trial_decision(
        search_id, 0, {"action": "continue", "fidelity": 1, "reason": "top 1/3 at rung 0", "rung": 0}
    )
    assert kept.state is TrialState.RUNNING and kept.fidelity == 1.0  # nothing else changes
    paused = storage.record_trial_decision(search_id, 0, PAUSE)
    assert paused.state is TrialState.PAUSED and not paused.state.is_terminal
    assert paused.finished_at is None and paused.started_at == started_at
    resumed = storage.record_trial_decision(search_id, 0, RESUME | {"reason": "x" * 3000})
    # chosen, but it runs only once Ray Tune starts it again (which may wait for a free worker)
    assert resumed.state is TrialState.PAUSED
    storage.mark_trial_running(search_id, 0)
    running = storage.get_trial(search_id, 0)
    assert running.state is TrialState.RUNNING and running.started_at == started_at  # the first start

    decisions = resumed.decisions
    assert [d["action"] for d in decisions] == ["continue", "pause", "resume"]
    assert decisions[1] == {"at": decisions[1]["at"], **PAUSE}  # every key kept as given
    assert decisions[2]["rung"] is None and decisions[2]["reason"] == "x" * 2000
    at = [datetime.fromisoformat(d["at"]) for d in decisions]
    assert all(t.tzinfo is not None for t in at) and at == sorted(at)
    assert resumed.updated_at >= paused.updated_at >= kept.updated_at

    # the driver may also resume a paused trial by starting it again, without a resume decision
    storage.record_trial_decision(search_id, 0, PAUSE)
    storage.mark_trial_running(search_id, 0)
    again = storage.get_trial(search_id, 0)
    assert again.state is TrialState.RUNNING and again.started_at == started_at

    with pytest.raises(NotFoundError):
        storage.record_trial_decision(search_id, 7, PAUSE)


def test_a_paused_trial_is_unfinished(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    storage.create_trial(search_id, 1, {"depth_s0": 2})
    storage.create_trial(search_id, 2, {"depth_s0": 3})
    storage.finish_trial(search_id, 2, TrialState.SUCCEEDED, None, None, {"accuracy": 0.8})
    storage.record_trial_decision(search_id, 0, PAUSE)

    counts = storage.trial_counts(search_id)
    assert (counts["paused"], counts["pending"], counts["running"], counts["succeeded"]) == (1, 1, 0, 1)
    listed = storage.list_trials(search_id, 10, state=TrialState.PAUSED)
    assert [t.number for t in listed.items] == [0] and listed.total == 1
    base = f"/api/v1/searches/{search_id}"
    search = client.get(base).json()
    assert search["trial_counts"]["paused"] == 1 and search["progress"]["trials_done"] == 1
    assert [
        t["number"] for t in client.get(f"{base}/trials", params={"state": "paused"}).json()["items"]
    ] == [0]

    # a paused trial can still end (a stop, then the driver's trial_finished)
    storage.record_trial_decision(search_id, 0, {"action": "stop", "fidelity": 3, "reason": "budget"})
    assert storage.get_trial(search_id, 0).state is TrialState.PAUSED  # a stop alone changes nothing
    stopped = storage.finish_trial(search_id, 0, TrialState.PRUNED, "stopped by freeze-thaw")
    assert (stopped.state, stopped.state_reason) == (TrialState.PRUNED, "stopped by freeze-thaw")

    # the end of a search cancels paused trials with the pending and running ones
    storage.create_trial(search_id, 3, {"depth_s0": 4})
    storage.mark_trial_running(search_id, 3)
    storage.record_trial_decision(search_id, 3, PAUSE)
    assert storage.cancel_unfinished_trials(search_id, "search canceled") == 2  # trials 1 and 3
    assert storage.get_trial(search_id, 3).state is TrialState.CANCELED


def test_a_restart_sets_aside_trials_to_resume_or_start_again(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)  # trial 0 reported fidelity 1
    assert storage.claim_next_queued_search().id == search_id
    storage.create_trial(search_id, 1, {"depth_s0": 2})
    storage.mark_trial_running(search_id, 1)  # trial 1 never reported
    storage.record_trial_decision(search_id, 0, PAUSE)

    assert storage.recover_interrupted_searches() == [search_id]
    assert storage.get_search(search_id).state is SearchState.QUEUED
    kept, again = storage.all_trials(search_id)
    assert (kept.state, kept.state_reason) == (
        TrialState.PAUSED,
        "worker lost: service restarted: resumes from its last checkpoint when the search runs again",
    )
    assert kept.finished_at is None and kept.fidelity == 1.0
    assert (again.state, again.state_reason) == (
        TrialState.PAUSED,
        "worker lost: service restarted: starts again from the beginning when the search runs again",
    )
    assert again.finished_at is None and again.fidelity is None
    assert [d["action"] for d in storage.get_trial(search_id, 0).decisions] == ["pause"]

    # the next run records the resume, and the trial's start makes it running, without the old reason
    storage.record_trial_decision(search_id, 0, RESUME)
    storage.mark_trial_running(search_id, 0)
    resumed = storage.get_trial(search_id, 0)
    assert (resumed.state, resumed.state_reason) == (TrialState.RUNNING, None)


def test_a_restart_of_a_search_that_ends_there_loses_all_its_unfinished_trials(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    assert storage.claim_next_queued_search().id == search_id
    storage.record_trial_decision(search_id, 0, PAUSE)
    storage.request_stop(search_id)

    assert storage.recover_interrupted_searches() == []
    assert storage.get_search(search_id).state is SearchState.SUCCEEDED
    trial = storage.get_trial(search_id, 0)
    assert (trial.state, trial.state_reason) == (TrialState.LOST, "worker lost: service restarted")


def test_a_decision_about_a_finished_trial_is_history_only(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    done = storage.finish_trial(search_id, 0, TrialState.SUCCEEDED, "completed", None, {"accuracy": 0.7})
    for decision in (PAUSE, RESUME, {"action": "stop", "fidelity": 2, "reason": "late"}):
        after = storage.record_trial_decision(search_id, 0, decision)
        assert (after.state, after.state_reason, after.finished_at) == (
            TrialState.SUCCEEDED,
            "completed",
            done.finished_at,
        )
    storage.mark_trial_running(search_id, 0)
    trial = storage.get_trial(search_id, 0)
    assert trial.state is TrialState.SUCCEEDED
    assert [d["action"] for d in trial.decisions] == ["pause", "resume", "stop"]
    assert [t.decisions for t in storage.all_trials(search_id)] == [trial.decisions]


def test_the_driver_listener_records_a_decision(client: TestClient, tmp_path: Path) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client, number=3)
    listener = StorageListener(storage, search_id, tmp_path)
    listener.trial_decided(3, PAUSE)
    trial = storage.get_trial(search_id, 3)
    (decision,) = trial.decisions
    assert trial.state is TrialState.PAUSED and decision == {"at": decision["at"], **PAUSE}
    listener.trial_started(3)  # a resumed trial starts again
    assert storage.get_trial(search_id, 3).state is TrialState.RUNNING


def test_the_api_shows_decisions_on_the_trial_its_listing_and_the_change_feed(client: TestClient) -> None:
    storage = storage_of(client)
    search_id = _running_trial(client)
    storage.create_trial(search_id, 1, {"depth_s0": 2})
    base = f"/api/v1/searches/{search_id}"
    assert client.get(f"{base}/trials/0").json()["decisions"] == []
    cursor = client.get(f"{base}/changes").json()["cursor"]

    storage.record_trial_decision(search_id, 0, PAUSE | {"acquisition": math.inf})
    detail = client.get(f"{base}/trials/0").json()
    assert detail["state"] == "paused"
    (decision,) = detail["decisions"]
    assert set(decision) == {"at", *PAUSE}
    assert decision["predicted"] == PAUSE["predicted"] and decision["acquisition"] == "Infinity"
    listing = client.get(f"{base}/trials").json()["items"]
    assert [(t["state"], t["decisions"]) for t in listing] == [("paused", [decision]), ("pending", [])]
    changed = client.get(f"{base}/changes", params={"after": cursor}).json()["trials"]
    assert [(t["number"], t["state"], t["decisions"]) for t in changed] == [(0, "paused", [decision])]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["TrialOut"]
    assert "decisions" in schema["required"] and schema["properties"]["decisions"]["description"]


def test_migration_0007_keeps_the_trials_of_a_0006_database(database_url: str) -> None:
    at = bindparam("at", OLD, type_=DateTime(timezone=True))  # bound as SQLAlchemy stores timestamps
    config, engine = alembic_config(), make_engine(database_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
            connection.execute(
                text(
                    "INSERT INTO searches (id, name, spec, state, created_at, updated_at) "
                    "VALUES ('5eed0006', 'old', '{}', 'running', :at, :at)"
                ).bindparams(at)
            )
            insert_trial = text(
                "INSERT INTO trials (search_id, number, state, config, metrics, created_at, updated_at, "
                "retries) VALUES ('5eed0006', :number, 'running', :config, :metrics, :at, :at, :retries)"
            ).bindparams(at)
            for number, retries in ((0, None), (1, [RETRY])):
                connection.execute(
                    insert_trial,
                    {
                        "number": number,
                        "config": json.dumps({"d": 1}),
                        "metrics": json.dumps({"accuracy": 0.5}),
                        "retries": None if retries is None else json.dumps(retries),
                    },
                )
    finally:
        engine.dispose()

    storage = Storage(database_url)
    try:
        storage.upgrade()
        with storage.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() >= "0007"
        old = storage.all_trials("5eed0006")
        assert [(t.number, t.state, t.config, t.metrics, t.decisions) for t in old] == [
            (0, TrialState.RUNNING, {"d": 1}, {"accuracy": 0.5}, ()),
            (1, TrialState.RUNNING, {"d": 1}, {"accuracy": 0.5}, ()),
        ]
        assert [t.retries for t in old] == [(), (RETRY,)]
        assert all(t.created_at == OLD for t in old)
        paused = storage.record_trial_decision("5eed0006", 1, PAUSE)
        assert paused.state is TrialState.PAUSED and paused.retries == old[1].retries
    finally:
        storage.dispose()

"""Stopping the service mid-search (kill -9 or SIGTERM) loses no finished trial; a restart resumes the
search, and the trial that was running goes on from its last checkpoint under its own number."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from service_process import poll, running_service

pytestmark = pytest.mark.slow

FINETUNE_EPOCHS = 5
SEARCH = {
    "name": "e2e-crash",
    "task": "digits",
    "space": {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "budget": {"max_trials": 4, "max_parallel": 1, "max_duration_s": 900},
    "scheduler": {"type": "fifo"},
    "supernet": {"epochs": 1, "batch_size": 64},
    "fidelity": {"finetune_epochs": FINETUNE_EPOCHS},
    "seed": 5,
}


def _trials(client: httpx.Client, search_id: str) -> list[dict]:
    return client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 500}).json()["items"]


def test_kill_9_mid_search_then_restart_resumes_without_losing_finished_trials(
    database_url: str, tmp_path: Path
) -> None:
    _interrupt_and_resume(database_url, tmp_path, signal.SIGKILL, "worker lost: service restarted")


def test_sigterm_requeues_the_search_and_a_restart_finishes_it(tmp_path: Path) -> None:
    _interrupt_and_resume(
        f"sqlite:///{tmp_path}/supernas.db", tmp_path, signal.SIGTERM, "interrupted by service shutdown"
    )


def _two_finished_and_one_mid_way(trials: list[dict]) -> bool:
    """Two trials finished, and the running one reported a step (so it has a checkpoint) and has two
    or more to go."""
    mid_way = [
        t
        for t in trials
        if t["state"] == "running" and t["fidelity"] is not None and t["fidelity"] <= FINETUNE_EPOCHS - 2
    ]
    return sum(t["state"] == "succeeded" for t in trials) >= 2 and bool(mid_way)


def _interrupt_and_resume(
    database_url: str, tmp_path: Path, signum: signal.Signals, interrupted_reason: str
) -> None:
    with running_service(tmp_path, database_url) as first:
        client = httpx.Client(base_url=first.url, timeout=30)
        search_id = client.post("/api/v1/searches", json=SEARCH).json()["id"]
        poll(
            lambda: _two_finished_and_one_mid_way(_trials(client, search_id)),
            timeout_s=240,
            what="two finished trials and one running mid-way",
        )
        os.kill(first.process.pid, signum)
        assert first.process.wait(timeout=60) == -signum  # uvicorn re-raises SIGTERM once it has shut down
        if signum == signal.SIGTERM:
            assert "Application shutdown complete." in first.log()
    before = {t["number"]: t for t in _trials_from_db(database_url, search_id)}
    finished_before = {n: t for n, t in before.items() if t["state"] == "succeeded"}
    assert len(finished_before) >= 2
    if signum == signal.SIGTERM:  # a graceful stop sets the running trial aside itself; a crash, the restart
        [set_aside] = [t for t in before.values() if t["state"] == "paused"]
        assert set_aside["state_reason"] == (
            f"{interrupted_reason}: resumes from its last checkpoint when the search runs again"
        )

    with running_service(tmp_path, database_url) as second:
        client = httpx.Client(base_url=second.url, timeout=30)
        final = poll(
            lambda: (
                (s := client.get(f"/api/v1/searches/{search_id}").json())["state"] in {"succeeded", "failed"}
                and s
            ),
            timeout_s=300,
            what="the resumed search to end",
        )
        assert final["state"] == "succeeded", final
        after = {t["number"]: t for t in _trials(client, search_id)}
        if signum == signal.SIGKILL:  # a graceful stop requeues by itself; a crash is found at start-up
            assert (
                f"requeued 1 search(es) interrupted by a previous shutdown: ['{search_id}']" in second.log()
            )
        interrupted = [n for n, t in before.items() if t["state"] not in {"succeeded", "pruned", "failed"}]
        resumed = [
            client.get(f"/api/v1/searches/{search_id}/trials/{n}").json()
            for n in interrupted
            if n in after and any(d["action"] == "resume" for d in after[n]["decisions"])
        ]

    for number, trial in finished_before.items():  # finished trials survive unchanged
        assert after[number]["state"] == "succeeded"
        assert after[number]["config"] == trial["config"]
        assert after[number]["metrics"] == trial["metrics"]
    # the trial running at the interruption went on from its checkpoint, under its own number
    [trial] = resumed
    assert trial["state"] == "succeeded" and trial["config"] == before[trial["number"]]["config"]
    assert [r["fidelity"] for r in trial["reports"]] == list(range(FINETUNE_EPOCHS + 1))
    assert [r["step"] for r in trial["reports"]] == list(range(1, FINETUNE_EPOCHS + 2))
    [resume] = [d for d in trial["decisions"] if d["action"] == "resume"]
    assert resume["reason"].startswith("the search runs again: resumes from its checkpoint of fidelity step")
    assert 0 <= resume["fidelity"] <= FINETUNE_EPOCHS - 1
    # nothing interrupted is lost: a trial that had not reported yet starts again under its number
    assert {after[n]["state"] for n in interrupted} == {"succeeded"}, [after[n] for n in interrupted]
    counted = [t for t in after.values() if t["state"] in {"succeeded", "pruned", "failed"}]
    assert len(counted) == SEARCH["budget"]["max_trials"], "interrupted trials do not use up the budget"
    assert sorted(after) == list(range(len(after))), "numbers stay dense and are never reused"


def _trials_from_db(database_url: str, search_id: str) -> list[dict]:
    """Read trials straight from storage while no service runs (the crash left them as they were)."""
    from service.storage import Storage

    storage = Storage(database_url)
    try:
        return [
            {
                "number": t.number,
                "state": t.state.value,
                "state_reason": t.state_reason,
                "config": t.config,
                "metrics": t.metrics,
            }
            for t in storage.all_trials(search_id)
        ]
    finally:
        storage.dispose()

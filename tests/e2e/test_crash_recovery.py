"""Stopping the service mid-search (kill -9 or SIGTERM) loses no finished trial; a restart resumes it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from service_process import poll, running_service

pytestmark = pytest.mark.slow

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
    "fidelity": {"finetune_epochs": 3},
    "seed": 5,
}


def _trials(client: httpx.Client, search_id: str) -> list[dict]:
    return client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 500}).json()["items"]


def test_kill_9_mid_search_then_restart_resumes_without_losing_finished_trials(
    database_url: str, tmp_path: Path
) -> None:
    _interrupt_and_resume(database_url, tmp_path, signal.SIGKILL, "lost", "service restarted")


def test_sigterm_requeues_the_search_and_a_restart_finishes_it(tmp_path: Path) -> None:
    _interrupt_and_resume(
        f"sqlite:///{tmp_path}/supernas.db",
        tmp_path,
        signal.SIGTERM,
        "canceled",
        "interrupted by service shutdown",
    )


def _interrupt_and_resume(
    database_url: str, tmp_path: Path, signum: signal.Signals, interrupted_state: str, interrupted_reason: str
) -> None:
    with running_service(tmp_path, database_url) as first:
        client = httpx.Client(base_url=first.url, timeout=30)
        search_id = client.post("/api/v1/searches", json=SEARCH).json()["id"]
        poll(
            lambda: (
                sum(t["state"] == "succeeded" for t in _trials(client, search_id)) >= 2
                and any(t["state"] == "running" for t in _trials(client, search_id))
            ),
            timeout_s=240,
            what="two finished trials and one running",
        )
        os.kill(first.process.pid, signum)
        assert first.process.wait(timeout=60) == -signum  # uvicorn re-raises SIGTERM once it has shut down
        if signum == signal.SIGTERM:
            assert "Application shutdown complete." in first.log()
    before = {t["number"]: t for t in _trials_from_db(database_url, search_id)}
    finished_before = {n: t for n, t in before.items() if t["state"] == "succeeded"}
    assert len(finished_before) >= 2

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

    for number, trial in finished_before.items():  # finished trials survive unchanged
        assert after[number]["state"] == "succeeded"
        assert after[number]["config"] == trial["config"]
        assert after[number]["metrics"] == trial["metrics"]
    interrupted = [t for t in after.values() if t["state"] == interrupted_state]
    assert interrupted, f"the trial running at the interruption is recorded as {interrupted_state}"
    assert all(interrupted_reason in t["state_reason"] for t in interrupted)
    counted = [t for t in after.values() if t["state"] in {"succeeded", "pruned", "failed"}]
    assert len(counted) == SEARCH["budget"]["max_trials"], "interrupted trials do not use up the budget"
    assert sorted(after) == list(range(len(after))), "numbers stay dense and are never reused"


def _trials_from_db(database_url: str, search_id: str) -> list[dict]:
    """Read trials straight from storage while no service runs (the crash left them as they were)."""
    from service.storage import Storage

    storage = Storage(database_url)
    try:
        return [
            {"number": t.number, "state": t.state.value, "config": t.config, "metrics": t.metrics}
            for t in storage.all_trials(search_id)
        ]
    finally:
        storage.dispose()

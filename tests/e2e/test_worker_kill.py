"""Killing a trial's Ray worker process (kill -9) mid-trial: Tune retries the trial from its latest
checkpoint, the retry is recorded on the trial, and the search completes within its budget.

The worker is found among the service's own descendants (the embedded Ray is its child tree), by the
pid Tune recorded for the trial, so no process of another test on this machine is ever touched.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from service_process import ServiceHandle, poll, running_service
from test_end_to_end import LONG_SEARCH, TERMINAL

pytestmark = pytest.mark.slow

SEARCH = LONG_SEARCH | {
    "name": "e2e-worker-kill",
    "budget": {"max_trials": 3, "max_parallel": 1, "max_duration_s": 600},
    "fidelity": {"finetune_epochs": 6},
    # tiny fine-tuning batches (1,078 training images, so never a batch of one): each epoch takes
    # about a second, time enough to kill a trial between its first epoch and its last
    "hyperparameters": {"finetune_batch_size": {"type": "categorical", "choices": [2]}},
}
WORKER_PREFIX = "ray::ImplicitFunc"  # what Ray names the process of a function trainable


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of each of its threads, recursively)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = {int(c) for c in children.read_text().split()}
            except OSError:  # the thread or process ended meanwhile
                continue
            todo += sorted(kids - found)
            found |= kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def _trial_worker(service: ServiceHandle, search_id: str, number: int) -> int:
    """The pid of the Ray worker running trial ``number`` of the search: a descendant of the service,
    named like a function trainable, working in that trial's directory (Tune runs each trial in a
    working directory named after its experiment, ``<search id>-attempt<n>``, and its config)."""

    def find() -> int | None:
        for pid in sorted(_descendants(service.process.pid)):
            cwd = _cwd(pid)
            if (
                _cmdline(pid).startswith(WORKER_PREFIX)
                and f"/{search_id}-attempt" in cwd
                and f"_number={number}," in Path(cwd).name
            ):
                return pid
        return None

    return poll(find, 10, f"the worker process of trial {number}")


def _trials(client: httpx.Client, search_id: str) -> list[dict]:
    return client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 100}).json()["items"]


def _fine_tuning(client: httpx.Client, search_id: str) -> dict | None:
    """A running trial that has reported at least one fine-tuning epoch (so it has a checkpoint)."""
    running = [t for t in _trials(client, search_id) if t["state"] == "running"]
    return next((t for t in running if (t["fidelity"] or 0) >= 1), None)


def test_a_killed_worker_is_retried_from_its_checkpoint_and_the_search_completes(tmp_path: Path) -> None:
    started = time.monotonic()
    data_dir = tmp_path / "service"
    with running_service(data_dir, f"sqlite:///{tmp_path}/supernas.db") as service:
        client = httpx.Client(base_url=service.url, timeout=30)
        created = client.post("/api/v1/searches", json=SEARCH)
        assert created.status_code == 201, created.text
        search_id = created.json()["id"]

        victim = poll(lambda: _fine_tuning(client, search_id), 150, "a trial past its first epoch")
        number = victim["number"]
        pid = _trial_worker(service, search_id, number)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        poll(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in _cmdline(pid), 10, "the worker to die")

        final = poll(
            lambda: (s := client.get(f"/api/v1/searches/{search_id}").json())["state"] in TERMINAL and s,
            timeout_s=180,
            what="the search to end",
        )
        assert final["state"] == "succeeded", final
        trials = _trials(client, search_id)
        detail = client.get(f"/api/v1/searches/{search_id}/trials/{number}").json()

    # the budget holds: three trials, each number once, all finished
    assert [t["number"] for t in trials] == [0, 1, 2], trials
    assert sum(final["trial_counts"].values()) == 3, final["trial_counts"]
    assert all(t["state"] == "succeeded" for t in trials), [(t["number"], t["state"]) for t in trials]
    assert final["trial_counts"]["failed"] == 0

    # the killed trial was retried once, for a lost worker, and ended succeeded with a model
    assert detail["state"] == "succeeded" and detail["has_model"], detail
    (retry,) = detail["retries"]
    assert retry["attempt"] == 1 and retry["reason"].startswith(f"worker lost (pid {pid},"), retry
    assert all(t["retries"] == [] for t in trials if t["number"] != number)

    # it continued from its checkpoint: every step once, in order, and none redone after the retry
    reports = detail["reports"]
    steps = [r["step"] for r in reports]
    assert steps == list(range(1, 8)), steps  # fidelity 0 (inherited weights), then 6 epochs
    assert [r["fidelity"] for r in reports] == [s - 1 for s in steps]
    retried_at = datetime.fromisoformat(retry["at"])
    before = [r["step"] for r in reports if datetime.fromisoformat(r["created_at"]) < retried_at]
    after = [r["step"] for r in reports if datetime.fromisoformat(r["created_at"]) >= retried_at]
    assert before and before[-1] >= 2 and after, (before, after)  # killed after fine-tuning began
    # the first report of the retry is the epoch after the last checkpoint (each report but the last
    # carries one); a restart from scratch would have reported step 1 again
    assert after[0] == before[-1] + 1, (before, after)

    elapsed = time.monotonic() - started
    print(f"worker killed after {killed_at - started:.1f} s; search done in {elapsed:.1f} s")

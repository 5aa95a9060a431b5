"""The search lifecycle end to end on the real service and Ray (SQLite; the storage side of every
verb also runs on PostgreSQL in tests/service): a pause sets the running trial aside after its
current step and the resume goes on from its checkpoint, a stop lets running trials finish, and a
budget changed while a search runs takes effect."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from service_process import poll, running_service, wait_for_search
from test_end_to_end import LONG_SEARCH, TERMINAL, _all_trials

pytestmark = pytest.mark.slow
EPOCHS = 16  # about 5 s a trial: a pause (read at the next decision) lands mid-trial


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = tmp_path_factory.mktemp("lifecycle")
    with running_service(data_dir, f"sqlite:///{data_dir}/supernas.db") as handle:
        yield httpx.Client(base_url=handle.url, timeout=30)


def test_pause_sets_the_running_trial_aside_resume_goes_on_from_it_and_stop_lets_trials_finish(
    service: httpx.Client,
) -> None:
    spec = LONG_SEARCH | {"name": "e2e-lifecycle", "fidelity": {"finetune_epochs": EPOCHS}}
    search_id = service.post("/api/v1/searches", json=spec).json()["id"]
    poll(
        lambda: any(
            t["state"] == "running" and t["fidelity"] is not None and t["fidelity"] <= 2
            for t in _all_trials(service, search_id)
        ),
        timeout_s=300,
        what="a trial running its first epochs",
    )
    assert service.post(f"/api/v1/searches/{search_id}/pause").status_code == 202
    paused = wait_for_search(service, search_id, lambda s: s["state"] in TERMINAL | {"paused"})
    assert (paused["state"], paused["state_reason"]) == ("paused", "paused by user")
    before = _all_trials(service, search_id)
    [set_aside] = [t for t in before if t["state"] != "succeeded"]
    assert set_aside["state"] == "paused" and set_aside["fidelity"] < EPOCHS, "paused after its step, not cut"
    assert set_aside["state_reason"] == (
        "paused with the search: resumes from its last checkpoint when the search runs again"
    )

    assert service.post(f"/api/v1/searches/{search_id}/resume").json()["state"] == "queued"
    wait_for_search(service, search_id, lambda s: s["progress"]["trials_done"] > len(before))
    assert service.post(f"/api/v1/searches/{search_id}/stop").status_code == 202
    final = wait_for_search(service, search_id, lambda s: s["state"] in TERMINAL)
    assert (final["state"], final["state_reason"]) == ("succeeded", "stopped by user")
    after = _all_trials(service, search_id)
    assert [t["number"] for t in after] == list(range(len(after))), "numbers continue after the resume"
    assert all(t["state"] == "succeeded" for t in after), "a stop lets running trials finish"
    assert len(after) < spec["budget"]["max_trials"]
    resumed = service.get(f"/api/v1/searches/{search_id}/trials/{set_aside['number']}").json()
    assert [r["fidelity"] for r in resumed["reports"]] == list(range(EPOCHS + 1)), "no step run twice"
    pause, resume = resumed["decisions"]
    assert (pause["action"], pause["fidelity"]) == ("pause", set_aside["fidelity"])
    assert pause["reason"].startswith("the search is pausing"), pause
    assert (resume["action"], resume["fidelity"]) == ("resume", set_aside["fidelity"])


def test_budget_changed_while_running_takes_effect(service: httpx.Client) -> None:
    # trials of about 5 s, so that the change lands while trial 1 runs (one at a time before it);
    # with 4 epochs, trial 2 had started by then in 1 of 3 runs beside other tests
    spec = LONG_SEARCH | {"name": "e2e-budget", "fidelity": {"finetune_epochs": EPOCHS}}
    search_id = service.post("/api/v1/searches", json=spec).json()["id"]
    wait_for_search(service, search_id, lambda s: s["progress"]["trials_done"] >= 1)
    changed = service.patch(f"/api/v1/searches/{search_id}/budget", json={"max_trials": 3, "max_parallel": 2})
    assert changed.status_code == 200, changed.text
    final = wait_for_search(service, search_id, lambda s: s["state"] in TERMINAL)
    assert final["state"] == "succeeded", final["state_reason"]
    trials = _all_trials(service, search_id)
    assert [t["number"] for t in trials] == [0, 1, 2]
    assert all(t["state"] == "succeeded" for t in trials)

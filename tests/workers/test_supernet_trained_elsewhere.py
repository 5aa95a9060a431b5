"""A search with ``fidelity.supernet_epochs`` on a supernet that a stand-alone job or another search
trains: it waits for the first of those epochs, then follows the supernet's stored state, and ends
queued again (the supernet is queued: its search paused) or failed (it will not be trained)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from supernas.states import SearchState, SupernetState
from workers.driver import SearchJob, SearchOutcome, _follow_elsewhere, _TrainingElsewhere
from workers.supernet_training import SupernetPaths

SPEC: dict[str, Any] = {
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "supernet": {"epochs": 4},
    "fidelity": {"supernet_epochs": [2]},
}


class _Progress:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, message: str) -> None:
        self.lines.append(message)


class _StoredState:
    def __init__(self, state: SupernetState, reason: str) -> None:
        self.value = (state, reason)

    def __call__(self) -> tuple[SupernetState, str | None]:
        return self.value


def _job(tmp_path: Path) -> SearchJob:
    return SearchJob("s1", 1, SPEC, str(tmp_path), supernet_id="sn_1", supernet_trains_elsewhere=True)


def test_the_search_starts_once_the_first_early_epoch_is_written(tmp_path: Path) -> None:
    job, listener, stored = _job(tmp_path), _Progress(), _StoredState(SupernetState.TRAINING, "epoch 1/4")
    snapshot = SupernetPaths(job.supernet_dir).snapshot(2)

    def write_epoch_2() -> None:
        time.sleep(1.0)
        snapshot.parent.mkdir(parents=True)
        snapshot.write_bytes(b"weights")

    writer = threading.Thread(target=write_epoch_2)
    writer.start()
    outcome, following = _follow_elsewhere(job, 2, listener, lambda: False, stored)  # type: ignore[arg-type]
    writer.join()
    assert outcome is None and following is not None and snapshot.exists()
    assert listener.lines == [
        "waiting for epoch 2 of supernet sn_1",
        "evaluating sub-networks from epoch 2 of supernet sn_1 while it trains",
    ]
    assert following.failure() is None
    stored.value = (SupernetState.READY, "trained")
    assert following.join() is None


def test_the_search_ends_as_the_supernet_it_waits_for_does(tmp_path: Path) -> None:
    stored = _StoredState(SupernetState.FAILED, "supernet collapsed")
    outcome, following = _follow_elsewhere(_job(tmp_path), 2, _Progress(), lambda: False, stored)  # type: ignore[arg-type]
    assert following is None
    assert outcome == SearchOutcome(SearchState.FAILED, "supernet sn_1 is failed: supernet collapsed")

    stored.value = (SupernetState.TRAINING, "epoch 1/4")
    outcome, _ = _follow_elsewhere(_job(tmp_path), 2, _Progress(), lambda: True, stored)  # type: ignore[arg-type]
    assert outcome == SearchOutcome(SearchState.CANCELED, "canceled while supernet sn_1 trained")


def test_a_supernet_queued_again_requeues_the_search_and_a_canceled_one_fails_it() -> None:
    stored = _StoredState(SupernetState.QUEUED, "paused with search s0; trains when it resumes")
    following = _TrainingElsewhere("sn_1", stored)
    reason = "waiting for supernet sn_1 to train again: paused with search s0; trains when it resumes"
    assert following.join() == SearchOutcome(SearchState.QUEUED, reason)
    assert following.failure() == reason  # the trials stop, to resume with the search
    stored.value = (SupernetState.CANCELED, "canceled by user (search s0)")
    assert following.join() == SearchOutcome(
        SearchState.FAILED, "supernet sn_1 is canceled: canceled by user (search s0)"
    )

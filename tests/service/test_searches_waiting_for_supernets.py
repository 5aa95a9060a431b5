"""A search naming a supernet that is still queued or training waits queued, and younger searches go
first; it is claimed once the supernet is ready, or once it ended otherwise (the dispatcher then
fails it with the supernet's reason). A search paused or interrupted while training its supernet
leaves the supernet queued, so the searches waiting for it go on waiting; one canceled or stopped
cancels it. A search with ``fidelity.supernet_epochs`` waits only while the supernet is queued: it
starts on the early epochs while the supernet trains, and is queued again (its trials set aside)
while the supernet is. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.dispatch import Dispatcher
from service.settings import Settings
from service.storage import Storage
from supernas.states import SearchState, SupernetState, TrialState
from workers.driver import SearchOutcome

SUPERNET_SPEC: dict[str, Any] = {"name": "shared", "task": "digits", "space": {"family": "elastic_cnn"}}
OWNER_SPEC: dict[str, Any] = {  # a whole spec: the dispatcher reads it when the search ends
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4},
}


def _search_on(storage: Storage, supernet_id: str, name: str) -> str:
    search, _ = storage.create_search({"task": "digits", "supernet_id": supernet_id}, name)
    return search.id


def test_a_search_waits_while_its_supernet_is_queued_or_training(storage: Storage) -> None:
    supernet, _ = storage.create_supernet(SUPERNET_SPEC)
    waiting = _search_on(storage, supernet.id, "waiting")
    record = storage.get_search(waiting)
    assert record.state is SearchState.QUEUED
    assert record.state_reason == f"waiting for supernet {supernet.id} to be trained"
    younger, _ = storage.create_search({"task": "digits"}, "younger")

    assert storage.claim_next_queued_search().id == younger.id  # the older search waits
    assert storage.claim_next_queued_search() is None
    assert storage.claim_next_queued_supernet().id == supernet.id  # training now
    assert storage.claim_next_queued_search() is None

    storage.set_supernet_state(supernet.id, SupernetState.READY, "trained", {"snapshot_epochs": [1]})
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == waiting and claimed.state is SearchState.RUNNING


def test_a_search_naming_a_ready_supernet_is_not_told_to_wait(storage: Storage) -> None:
    supernet, _ = storage.create_supernet(SUPERNET_SPEC)
    storage.set_supernet_state(supernet.id, SupernetState.READY, "trained", {})
    search = storage.get_search(_search_on(storage, supernet.id, "ready"))
    assert search.state_reason == "waiting for a dispatcher"
    assert storage.claim_next_queued_search().id == search.id


def test_a_search_is_claimed_once_its_supernet_failed(storage: Storage) -> None:
    supernet, _ = storage.create_supernet(SUPERNET_SPEC)
    search_id = _search_on(storage, supernet.id, "doomed")
    storage.claim_next_queued_supernet()
    storage.set_supernet_state(supernet.id, SupernetState.FAILED, "supernet collapsed")
    assert storage.claim_next_queued_search().id == search_id  # for the dispatcher to fail it


def test_a_search_training_its_own_supernet_does_not_wait_for_it(storage: Storage) -> None:
    own, _ = storage.create_search(
        {"task": "digits"}, "own", supernet_spec=SUPERNET_SPEC | {"name": "its own"}
    )
    assert own.supernet_id is not None
    assert storage.get_supernet(own.supernet_id).state is SupernetState.QUEUED
    other = _search_on(storage, own.supernet_id, "on another search's supernet")
    assert "waiting for supernet" in (storage.get_search(other).state_reason or "")

    assert storage.claim_next_queued_search().id == own.id  # it trains the supernet itself
    storage.set_supernet_state(own.supernet_id, SupernetState.TRAINING, "epoch 1/2")
    assert storage.claim_next_queued_search() is None  # the other waits for that training
    storage.set_supernet_state(own.supernet_id, SupernetState.READY, "trained", {})
    assert storage.claim_next_queued_search().id == other


def _dispatcher(storage: Storage, database_url: str, tmp_path: Path) -> Dispatcher:
    """A dispatcher on ``storage`` whose loop is not started (its end-of-search bookkeeping only)."""
    return Dispatcher(storage, Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False))


def _owner_and_waiting(storage: Storage) -> tuple[str, str, str]:
    """A search training its own supernet (claimed, training it) and a younger one naming it."""
    owner, _ = storage.create_search(OWNER_SPEC, "owner", supernet_spec=SUPERNET_SPEC | {"name": "own"})
    assert owner.supernet_id is not None
    waiting = _search_on(storage, owner.supernet_id, "waiting")
    assert storage.claim_next_queued_search().id == owner.id
    storage.set_supernet_state(owner.supernet_id, SupernetState.TRAINING, "epoch 1/2")
    return owner.id, owner.supernet_id, waiting


def test_pausing_the_search_that_trains_a_supernet_keeps_the_searches_waiting_for_it(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    owner, supernet_id, waiting = _owner_and_waiting(storage)
    dispatcher = _dispatcher(storage, database_url, tmp_path)
    # a pause during the training: the driver cancels the training, records it, and winds down
    storage.request_pause(owner)
    storage.set_supernet_state(supernet_id, SupernetState.CANCELED, "canceled during supernet training")
    dispatcher._finish(owner, SearchOutcome(SearchState.SUCCEEDED, "wound down"), user_canceled=False)

    assert storage.get_search(owner).state is SearchState.PAUSED
    supernet = storage.get_supernet(supernet_id)
    assert supernet.state is SupernetState.QUEUED
    assert supernet.state_reason == f"paused with search {owner}; trains when it resumes"
    assert storage.claim_next_queued_search() is None  # the waiting search goes on waiting

    storage.request_resume(owner)
    assert storage.claim_next_queued_search().id == owner  # the owner first: it trains the supernet
    storage.set_supernet_state(supernet_id, SupernetState.READY, "trained", {})
    assert storage.claim_next_queued_search().id == waiting


def test_a_search_interrupted_by_a_shutdown_leaves_its_supernet_queued(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    owner, supernet_id, _ = _owner_and_waiting(storage)
    dispatcher = _dispatcher(storage, database_url, tmp_path)
    dispatcher._shutdown.set()
    storage.set_supernet_state(supernet_id, SupernetState.CANCELED, "canceled during supernet training")
    dispatcher._finish(owner, SearchOutcome(SearchState.CANCELED, "canceled"), user_canceled=False)

    assert storage.get_search(owner).state is SearchState.QUEUED
    supernet = storage.get_supernet(supernet_id)
    assert supernet.state is SupernetState.QUEUED  # not canceled: a waiting search is not failed
    assert supernet.state_reason == f"interrupted by service shutdown; trains when search {owner} runs again"
    assert storage.claim_next_queued_search().id == owner  # the waiting one still waits


def test_canceling_or_stopping_a_paused_search_cancels_its_untrained_supernet(storage: Storage) -> None:
    for verb in ("cancel", "stop"):
        owner, supernet_id, waiting = _owner_and_waiting(storage)
        storage.set_supernet_state(supernet_id, SupernetState.QUEUED, "paused with the search")
        storage.set_search_state(owner, SearchState.PAUSED, "paused by user")
        getattr(storage, f"request_{verb}")(owner)

        supernet = storage.get_supernet(supernet_id)
        reason = "canceled by user" if verb == "cancel" else "stopped by user"
        assert supernet.state is SupernetState.CANCELED
        assert supernet.state_reason == f"{reason} (search {owner})"
        assert storage.claim_next_queued_search().id == waiting  # for the dispatcher to fail it
        storage.set_search_state(waiting, SearchState.FAILED, "test done")


def test_a_search_is_claimed_once_the_search_training_its_supernet_ended_without_it(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    owner, supernet_id, waiting = _owner_and_waiting(storage)
    storage.set_search_state(owner, SearchState.FAILED, "search driver error: lost")  # supernet left training
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == waiting
    dispatcher = _dispatcher(storage, database_url, tmp_path)
    assert dispatcher._unusable_supernet(claimed) == (
        f"supernet {supernet_id} will not be trained: its search {owner} is failed"
    )


# --- fidelity.supernet_epochs: a search starts on the early epochs of a supernet trained elsewhere ---


def _early_search_on(storage: Storage, supernet_id: str, name: str) -> str:
    spec = OWNER_SPEC | {"supernet_id": supernet_id, "fidelity": {"supernet_epochs": [1]}}
    search, _ = storage.create_search(spec, name)
    return search.id


def test_a_search_on_early_supernet_epochs_is_claimed_once_the_supernet_trains(storage: Storage) -> None:
    supernet, _ = storage.create_supernet(SUPERNET_SPEC)
    whole = _search_on(storage, supernet.id, "needs the trained supernet")
    early = _early_search_on(storage, supernet.id, "starts on epoch 1")
    assert storage.get_search(early).state_reason == f"waiting for supernet {supernet.id} to start training"
    assert storage.claim_next_queued_search() is None  # queued: neither starts

    assert storage.claim_next_queued_supernet().id == supernet.id
    storage.set_supernet_state(supernet.id, SupernetState.TRAINING, "epoch 1/20")
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == early  # the older one goes on waiting
    assert storage.claim_next_queued_search() is None
    storage.set_supernet_state(supernet.id, SupernetState.READY, "trained", {"snapshot_epochs": [1]})
    assert storage.claim_next_queued_search().id == whole


def test_a_search_on_early_epochs_of_another_searchs_supernet_follows_its_pause(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    owner, supernet_id, whole = _owner_and_waiting(storage)
    early = _early_search_on(storage, supernet_id, "starts on epoch 1")
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == early  # the owner trains: it may start
    dispatcher = _dispatcher(storage, database_url, tmp_path)
    assert dispatcher._unusable_supernet(claimed) is None
    assert dispatcher._trains_elsewhere(claimed)
    storage.create_trial(early, 0, {"depth": 1})

    # the owner pauses: its supernet is queued again, and the driver following it ends the search so
    reason = f"waiting for supernet {supernet_id} to train again: paused with search {owner}"
    storage.set_supernet_state(supernet_id, SupernetState.QUEUED, f"paused with search {owner}")
    dispatcher._finish(early, SearchOutcome(SearchState.QUEUED, reason), user_canceled=False)
    record = storage.get_search(early)
    assert (record.state, record.state_reason) == (SearchState.QUEUED, reason)
    assert [t.state for t in storage.all_trials(early)] == [TrialState.PAUSED]  # resumes with it
    assert storage.claim_next_queued_search() is None  # both wait while the supernet is queued

    storage.set_supernet_state(supernet_id, SupernetState.TRAINING, "epoch 2/2")
    assert storage.claim_next_queued_search().id == early
    storage.set_search_state(owner, SearchState.CANCELED, "canceled by user")
    storage.set_supernet_state(supernet_id, SupernetState.CANCELED, "canceled during supernet training")
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == whole
    assert dispatcher._unusable_supernet(claimed) == (
        f"supernet {supernet_id} is canceled: canceled during supernet training"
    )


def test_a_search_requeued_with_its_supernet_while_a_pause_was_requested_pauses(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    supernet, _ = storage.create_supernet(SUPERNET_SPEC)
    early = _early_search_on(storage, supernet.id, "starts on epoch 1")
    storage.claim_next_queued_supernet()
    storage.set_supernet_state(supernet.id, SupernetState.TRAINING, "epoch 1/20")
    assert storage.claim_next_queued_search().id == early
    storage.request_pause(early)
    outcome = SearchOutcome(SearchState.QUEUED, "waiting for the supernet to train again")
    _dispatcher(storage, database_url, tmp_path)._finish(early, outcome, user_canceled=False)
    assert storage.get_search(early).state is SearchState.PAUSED

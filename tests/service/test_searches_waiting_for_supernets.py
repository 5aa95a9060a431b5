"""A search naming a supernet that is still queued or training waits queued, and younger searches go
first; it is claimed once the supernet is ready, or once it ended otherwise (the dispatcher then
fails it with the supernet's reason). Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from service.storage import Storage
from supernas.states import SearchState, SupernetState

SUPERNET_SPEC: dict[str, Any] = {"name": "shared", "task": "digits", "space": {"family": "elastic_cnn"}}


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

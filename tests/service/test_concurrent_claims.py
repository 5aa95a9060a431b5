"""Several service processes on one database never claim the same queued search or supernet.

The claimers are separate OS processes (``spawn``), each with its own ``Storage`` and connection pool,
as when several replicas of the service share a PostgreSQL database (or one SQLite file).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from collections import Counter
from typing import Any

import pytest
from db_helpers import postgres_database
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.storage import Storage
from supernas.states import SearchState, SupernetState

SPEC: dict[str, Any] = {
    "name": "contended",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4, "max_parallel": 1},
}
SUPERNET_SPEC: dict[str, Any] = {"name": "shared", "task": "digits", "space": {"family": "elastic_cnn"}}
SEARCHES = 40
SUPERNETS = 20
PROCESSES = 4
RESULT_TIMEOUT_S = 60


def _claim_until_empty(database_url: str, slot: int, start: Any, results: Any) -> None:
    """Child process: claim searches and supernets as fast as possible until neither is left."""
    try:
        storage = Storage(database_url)
        storage.ping()  # connect before the start line, so the claim loops really overlap
        searches: list[str] = []
        supernets: list[str] = []
        start.wait(timeout=RESULT_TIMEOUT_S)
        searches_left = supernets_left = True
        while searches_left or supernets_left:
            if searches_left:
                search = storage.claim_next_queued_search()
                searches_left = search is not None
                if search is not None:
                    searches.append(search.id)
            if supernets_left:
                supernet = storage.claim_next_queued_supernet()
                supernets_left = supernet is not None
                if supernet is not None:
                    supernets.append(supernet.id)
        storage.dispose()
        results.put((slot, searches, supernets, None))
    except BaseException:
        results.put((slot, [], [], traceback.format_exc()))


def _storage_with_queue(database_url: str) -> tuple[Storage, set[str], set[str]]:
    storage = Storage(database_url)
    storage.upgrade()
    searches = {storage.create_search(SPEC, f"search {i}")[0].id for i in range(SEARCHES)}
    supernets = {storage.create_supernet(SUPERNET_SPEC)[0].id for _ in range(SUPERNETS)}
    return storage, searches, supernets


def test_claimer_processes_never_claim_the_same_search_or_supernet(database_url: str) -> None:
    storage, searches, supernets = _storage_with_queue(database_url)
    try:
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(PROCESSES)
        results = ctx.Queue()
        processes = [
            ctx.Process(target=_claim_until_empty, args=(database_url, slot, start, results), daemon=True)
            for slot in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        try:
            outcomes = [results.get(timeout=RESULT_TIMEOUT_S) for _ in processes]
        finally:
            for process in processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
        errors = [error for _, _, _, error in outcomes if error is not None]
        assert not errors, errors[0]

        claimed_searches = Counter(sid for _, ids, _, _ in outcomes for sid in ids)
        claimed_supernets = Counter(sid for _, _, ids, _ in outcomes for sid in ids)
        assert [sid for sid, n in claimed_searches.items() if n > 1] == []
        assert [sid for sid, n in claimed_supernets.items() if n > 1] == []
        assert set(claimed_searches) == searches
        assert set(claimed_supernets) == supernets
        # more than one process took part, so the claims did race
        assert sum(1 for _, ids, sn_ids, _ in outcomes if ids or sn_ids) >= 2

        for search_id in searches:
            search = storage.get_search(search_id)
            assert search.state is SearchState.RUNNING and search.attempt == 1
            assert search.state_reason == "claimed by dispatcher" and search.started_at is not None
        for supernet_id in supernets:
            supernet = storage.get_supernet(supernet_id)
            assert supernet.state is SupernetState.TRAINING and supernet.attempt == 1
        assert storage.claim_next_queued_search() is None
        assert storage.claim_next_queued_supernet() is None
    finally:
        storage.dispose()


def _claim_in_thread(claim: Any) -> Any:
    """Run ``claim`` in a thread; fail (rather than hang) if it is still blocked after a generous wait."""
    outcome: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=lambda: outcome.put(claim()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the claim waited on another transaction's row lock"
    return outcome.get_nowait()


@pytest.mark.postgres
def test_a_row_locked_by_another_transaction_is_skipped_not_waited_for() -> None:
    """PostgreSQL only: SQLite has no row locks (a writer locks the whole database)."""
    with postgres_database() as database_url:
        assert make_url(database_url).get_backend_name() == "postgresql"
        storage, _, _ = _storage_with_queue(database_url)
        try:
            oldest = storage.list_searches(SEARCHES).items[-1]
            second = storage.list_searches(SEARCHES).items[-2]
            oldest_supernet, second_supernet = storage.list_supernets(SUPERNETS).items[-1:-3:-1]
            with storage.engine.connect() as holder:
                lock = holder.begin()
                try:
                    locked = holder.execute(
                        text("SELECT id FROM searches WHERE state = 'queued' ORDER BY pk LIMIT 1 FOR UPDATE")
                    ).scalar_one()
                    holder.execute(
                        text(
                            "SELECT id FROM supernets WHERE state = 'queued' AND search_id IS NULL "
                            "ORDER BY pk LIMIT 1 FOR UPDATE"
                        )
                    )
                    assert locked == oldest.id

                    claimed = _claim_in_thread(storage.claim_next_queued_search)
                    assert claimed is not None and claimed.id == second.id
                    claimed_supernet = _claim_in_thread(storage.claim_next_queued_supernet)
                    assert claimed_supernet is not None and claimed_supernet.id == second_supernet.id
                finally:
                    lock.rollback()
            # the lock released, the oldest is still queued and is the next claimed
            assert storage.get_search(oldest.id).state is SearchState.QUEUED
            assert storage.claim_next_queued_search().id == oldest.id
            assert storage.claim_next_queued_supernet().id == oldest_supernet.id
        finally:
            storage.dispose()

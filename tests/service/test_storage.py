"""Storage contract tests; every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from service.storage import Storage
from service.storage.migrate import upgrade_schema
from service.storage.models import Base
from supernas.errors import ConflictError, InvalidInputError, NotFoundError, SchemaMismatchError
from supernas.states import SearchState, TrialState

SPEC = {"task": "digits", "budget": {"max_trials": 4}}


def _run_threads(targets: list[Callable[[], object]]) -> None:
    """Run the targets in threads at once; re-raise the first exception any of them raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _alembic_version(store: Storage) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


# schema


def test_migrations_create_the_schema_the_models_describe(storage: Storage) -> None:
    storage.ping()
    assert _alembic_version(storage) == ["0008"]
    assert {"searches", "trials", "trial_reports"} <= set(inspect(storage.engine).get_table_names())
    with storage.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_twice_is_a_no_op(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "kept")
    storage.upgrade()
    upgrade_schema(storage.database_url)  # the URL form too
    assert _alembic_version(storage) == ["0008"]
    assert storage.get_search(search.id) == search


def test_unknown_schema_revision_refuses_to_start(storage: Storage) -> None:
    with storage.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe1234'"))
    with pytest.raises(SchemaMismatchError, match="f00dcafe1234 is unknown to this version of supernas"):
        storage.upgrade()


# searches


def test_create_and_get_search(storage: Storage) -> None:
    search, created = storage.create_search(SPEC, "first")
    assert created
    assert len(search.id) == 32
    assert search.state is SearchState.QUEUED and search.state_reason
    assert search.attempt == 0 and not search.cancel_requested
    assert search.created_at.tzinfo is not None and search.started_at is None
    fetched = storage.get_search(search.id)
    assert fetched == search
    assert fetched.spec == SPEC and fetched.created_at.utcoffset().total_seconds() == 0


def test_list_searches_pages_newest_first(storage: Storage) -> None:
    ids = [storage.create_search(SPEC, f"s{i}")[0].id for i in range(5)]
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = storage.list_searches(page_size=2, page_token=token)
        pages += 1
        assert page.total == 5
        assert len(page.items) == (2 if pages < 3 else 1)
        seen += [search.id for search in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))
    # a token is stable: the same token gives the same page
    second = storage.list_searches(2, storage.list_searches(2).next_page_token)
    assert [s.id for s in second.items] == seen[2:4]


@pytest.mark.parametrize("token", ["not base64 at all!", "e30", "eyJiZWZvcmUiOiAiMSJ9", "", "%%%"])
def test_invalid_page_token_is_rejected(storage: Storage, token: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid page_token") as info:
        storage.list_searches(2, token)
    assert info.value.loc == ("query", "page_token")


def test_idempotency_key_returns_the_same_search(storage: Storage) -> None:
    first, created = storage.create_search(SPEC, "a", idempotency_key="key-1")
    again, created_again = storage.create_search({"other": 1}, "b", idempotency_key="key-1")
    assert created and not created_again
    assert again == first
    assert storage.list_searches(10).total == 1


def test_idempotency_key_under_a_race(storage: Storage) -> None:
    barrier = threading.Barrier(4)
    results: list[tuple[str, bool]] = []

    def create() -> None:
        barrier.wait()
        search, created = storage.create_search(SPEC, "raced", idempotency_key="race")
        results.append((search.id, created))

    _run_threads([create] * 4)
    assert len({search_id for search_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert storage.list_searches(10).total == 1


def test_claim_takes_the_oldest_queued_search(storage: Storage) -> None:
    older, _ = storage.create_search(SPEC, "older")
    newer, _ = storage.create_search(SPEC, "newer")
    claimed = storage.claim_next_queued_search()
    assert claimed is not None and claimed.id == older.id
    assert claimed.state is SearchState.RUNNING and claimed.state_reason == "claimed by dispatcher"
    assert claimed.attempt == 1 and claimed.started_at is not None
    assert storage.claim_next_queued_search().id == newer.id
    assert storage.claim_next_queued_search() is None


def test_concurrent_dispatchers_never_claim_the_same_search(storage: Storage) -> None:
    for _ in range(8):
        storage.create_search(SPEC, "contended")
    barrier = threading.Barrier(4)
    claims: list[list[str]] = [[], [], [], []]

    def dispatcher(slot: int) -> None:
        barrier.wait()
        while (claimed := storage.claim_next_queued_search()) is not None:
            claims[slot].append(claimed.id)

    _run_threads([lambda slot=slot: dispatcher(slot) for slot in range(4)])
    all_claims = [search_id for claimed in claims for search_id in claimed]
    assert len(all_claims) == 8 and len(set(all_claims)) == 8


def test_one_queued_search_two_claimers_exactly_one_wins(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "single")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def claim() -> None:
        barrier.wait()
        results.append(storage.claim_next_queued_search())

    _run_threads([claim, claim])
    winners = [result for result in results if result is not None]
    assert len(results) == 2 and len(winners) == 1
    assert storage.get_search(search.id).attempt == 1


def test_cancel_semantics(storage: Storage) -> None:
    queued, _ = storage.create_search(SPEC, "queued")
    canceled = storage.request_cancel(queued.id)
    assert canceled.state is SearchState.CANCELED and canceled.finished_at is not None
    assert canceled.state_reason == "canceled by user"
    assert storage.request_cancel(queued.id) == canceled  # idempotent

    running, _ = storage.create_search(SPEC, "running")
    assert storage.claim_next_queued_search() is not None
    flagged = storage.request_cancel(running.id)
    assert flagged.state is SearchState.RUNNING and flagged.cancel_requested
    assert flagged.state_reason == "cancel requested"
    assert storage.request_cancel(running.id).cancel_requested

    done, _ = storage.create_search(SPEC, "done")
    storage.set_search_state(done.id, SearchState.SUCCEEDED, "budget exhausted")
    with pytest.raises(ConflictError, match="already succeeded"):
        storage.request_cancel(done.id)


def test_a_cancel_requested_search_is_not_claimed(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    storage.claim_next_queued_search()
    storage.request_cancel(search.id)
    storage.set_search_state(search.id, SearchState.QUEUED, "requeued")
    assert storage.claim_next_queued_search() is None


def test_set_search_state_sets_finished_at_for_terminal_states(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    paused = storage.set_search_state(search.id, SearchState.PAUSED, "paused by user")
    assert paused.state is SearchState.PAUSED and paused.finished_at is None
    failed = storage.set_search_state(search.id, SearchState.FAILED, "too many failed trials")
    assert failed.state is SearchState.FAILED and failed.finished_at is not None
    assert storage.get_search(search.id).state_reason == "too many failed trials"


def test_recover_interrupted_searches(storage: Storage) -> None:
    interrupted, _ = storage.create_search(SPEC, "interrupted")
    canceling, _ = storage.create_search(SPEC, "canceling")
    untouched, _ = storage.create_search(SPEC, "untouched")
    storage.claim_next_queued_search()
    storage.claim_next_queued_search()
    storage.request_cancel(canceling.id)
    for search_id in (interrupted.id, canceling.id):
        storage.create_trial(search_id, 0, {"lr": 0.1})
        storage.finish_trial(search_id, 0, TrialState.SUCCEEDED, metrics={"accuracy": 0.9})
        storage.create_trial(search_id, 1, {"lr": 0.2})
        storage.mark_trial_running(search_id, 1)
        storage.create_trial(search_id, 2, {"lr": 0.3})

    assert storage.recover_interrupted_searches() == [interrupted.id]

    requeued = storage.get_search(interrupted.id)
    assert requeued.state is SearchState.QUEUED and requeued.state_reason == "requeued after service restart"
    assert storage.get_search(canceling.id).state is SearchState.CANCELED
    assert storage.get_search(untouched.id).state is SearchState.QUEUED
    trials = storage.all_trials(interrupted.id)  # it runs again: its trials start again there
    assert [t.state for t in trials] == [TrialState.SUCCEEDED, TrialState.PAUSED, TrialState.PAUSED]
    assert {t.state_reason for t in trials[1:]} == {
        "worker lost: service restarted: starts again from the beginning when the search runs again"
    }
    trials = storage.all_trials(canceling.id)  # it ends here: so do its trials
    assert [t.state for t in trials] == [TrialState.SUCCEEDED, TrialState.LOST, TrialState.LOST]
    assert trials[1].state_reason == "worker lost: service restarted"
    again = storage.claim_next_queued_search()
    assert again is not None and again.id == interrupted.id and again.attempt == 2
    assert again.started_at == requeued.started_at


# trials


def test_trial_lifecycle_with_reports(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    trial = storage.create_trial(search.id, 0, {"width": 32})
    assert trial.state is TrialState.PENDING and trial.metrics == {} and trial.reports == ()
    assert storage.create_trial(search.id, 0, {"width": 64}) == trial  # idempotent

    storage.record_trial_report(search.id, 0, step=1, fidelity=1.0, metrics={"accuracy": 0.5})
    storage.record_trial_report(search.id, 0, step=2, fidelity=2.0, metrics={"accuracy": 0.7})
    running = storage.get_trial(search.id, 0)
    assert running.state is TrialState.RUNNING and running.started_at is not None
    assert running.metrics == {"accuracy": 0.7} and running.fidelity == 2.0
    assert [(r.step, r.fidelity, r.metrics["accuracy"]) for r in running.reports] == [
        (1, 1.0, 0.5),
        (2, 2.0, 0.7),
    ]

    finished = storage.finish_trial(
        search.id, 0, TrialState.SUCCEEDED, reason="done", artifact_dir="trials/0", metrics={"accuracy": 0.8}
    )
    assert finished.state is TrialState.SUCCEEDED and finished.finished_at is not None
    assert finished.metrics == {"accuracy": 0.8} and finished.artifact_dir == "trials/0"
    # the first terminal state wins
    assert storage.finish_trial(search.id, 0, TrialState.FAILED, reason="late") == finished
    assert storage.get_trial(search.id, 0).state is TrialState.SUCCEEDED


def test_finish_without_metrics_keeps_the_reported_ones(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    storage.create_trial(search.id, 0, {})
    storage.record_trial_report(search.id, 0, 1, 0.5, {"loss": 1.5})
    pruned = storage.finish_trial(search.id, 0, TrialState.PRUNED, reason="asha: bottom half at rung 0")
    assert pruned.metrics == {"loss": 1.5} and pruned.state_reason == "asha: bottom half at rung 0"
    with pytest.raises(InvalidInputError):
        storage.finish_trial(search.id, 0, TrialState.RUNNING)


def test_reporting_the_same_step_twice_is_a_no_op(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    storage.create_trial(search.id, 0, {})
    storage.record_trial_report(search.id, 0, 3, 1.0, {"accuracy": 0.6})
    storage.record_trial_report(search.id, 0, 3, 1.0, {"accuracy": 0.6})
    storage.record_trial_report(search.id, 0, 3, 9.0, {"accuracy": 0.1})
    trial = storage.get_trial(search.id, 0)
    assert len(trial.reports) == 1 and trial.reports[0].metrics == {"accuracy": 0.6}
    assert trial.metrics == {"accuracy": 0.6}
    # the session is still usable afterwards (on PostgreSQL a failed INSERT would poison it)
    storage.record_trial_report(search.id, 0, 4, 2.0, {"accuracy": 0.65})
    assert [r.step for r in storage.get_trial(search.id, 0).reports] == [3, 4]


def test_concurrent_duplicate_creates_and_reports_are_no_ops(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    barrier = threading.Barrier(4)

    def create_and_report() -> None:
        barrier.wait()
        storage.create_trial(search.id, 0, {"lr": 0.1})
        storage.record_trial_report(search.id, 0, 1, 1.0, {"accuracy": 0.5})

    _run_threads([create_and_report] * 4)
    trials = storage.all_trials(search.id)
    assert len(trials) == 1 and len(trials[0].reports) == 1


def test_a_late_older_report_does_not_overwrite_current_metrics(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    storage.create_trial(search.id, 0, {})
    storage.record_trial_report(search.id, 0, 2, 2.0, {"accuracy": 0.7})
    storage.record_trial_report(search.id, 0, 1, 1.0, {"accuracy": 0.5})
    trial = storage.get_trial(search.id, 0)
    assert trial.metrics == {"accuracy": 0.7} and trial.fidelity == 2.0
    assert [r.step for r in trial.reports] == [1, 2]


def test_non_finite_metrics_round_trip(storage: Storage) -> None:
    search, _ = storage.create_search({"note": [math.inf]}, "s")
    storage.create_trial(search.id, 0, {"lr": 0.1})
    odd = {"loss": math.nan, "latency_ms": math.inf, "gap": -math.inf, "nested": {"curve": [1.0, math.nan]}}
    storage.record_trial_report(search.id, 0, 1, 1.0, odd)
    storage.finish_trial(search.id, 0, TrialState.FAILED, reason="diverged", metrics=odd)
    trial = storage.get_trial(search.id, 0)
    for metrics in (trial.metrics, trial.reports[0].metrics):
        assert math.isnan(metrics["loss"])
        assert metrics["latency_ms"] == math.inf and metrics["gap"] == -math.inf
        assert metrics["nested"]["curve"][0] == 1.0 and math.isnan(metrics["nested"]["curve"][1])
    assert storage.get_search(search.id).spec == {"note": [math.inf]}


def test_trial_counts_and_next_number(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    assert storage.next_trial_number(search.id) == 0
    assert storage.trial_counts(search.id) == {state.value: 0 for state in TrialState}
    for number in range(4):
        storage.create_trial(search.id, number, {"n": number})
    storage.mark_trial_running(search.id, 1)
    storage.finish_trial(search.id, 2, TrialState.SUCCEEDED)
    storage.finish_trial(search.id, 3, TrialState.INFEASIBLE, reason="latency over budget")
    counts = storage.trial_counts(search.id)
    assert counts["pending"] == 1 and counts["running"] == 1
    assert counts["succeeded"] == 1 and counts["infeasible"] == 1
    assert sum(counts.values()) == 4 and set(counts) == {state.value for state in TrialState}
    assert storage.next_trial_number(search.id) == 4

    assert storage.cancel_unfinished_trials(search.id, "search canceled") == 2
    assert storage.trial_counts(search.id)["canceled"] == 2
    assert storage.get_trial(search.id, 0).state_reason == "search canceled"


def test_set_aside_pauses_the_trials_to_resume_or_start_again(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    for number in range(5):
        storage.create_trial(search.id, number, {"n": number})
    storage.record_trial_report(search.id, 0, 1, 0.0, {"accuracy": 0.1})  # running, reported
    storage.record_trial_report(search.id, 1, 1, 0.0, {"accuracy": 0.2})
    storage.record_trial_decision(search.id, 1, {"action": "pause", "fidelity": 0, "reason": "step done"})
    storage.mark_trial_running(search.id, 2)  # running, never reported; trial 3 stays pending
    storage.finish_trial(search.id, 4, TrialState.PRUNED, "stopped by the scheduler")

    assert storage.set_aside_unfinished_trials(search.id, "paused with the search") == 4
    trials = storage.all_trials(search.id)
    assert [t.state for t in trials] == [TrialState.PAUSED] * 4 + [TrialState.PRUNED]
    assert {t.state_reason for t in trials[:2]} == {
        "paused with the search: resumes from its last checkpoint when the search runs again"
    }
    assert {t.state_reason for t in trials[2:4]} == {
        "paused with the search: starts again from the beginning when the search runs again"
    }
    assert [t.finished_at is None for t in trials] == [True] * 4 + [False]
    assert trials[4].state_reason == "stopped by the scheduler"
    unfinished = storage.all_trials(search.id, unfinished_only=True)
    assert [t.number for t in unfinished] == [0, 1, 2, 3]
    assert [len(t.reports) for t in unfinished] == [1, 1, 0, 0]


@pytest.mark.parametrize("verb", ["cancel", "stop"])
def test_ending_a_paused_search_ends_its_set_aside_trials(storage: Storage, verb: str) -> None:
    search, _ = storage.create_search(SPEC, "s")
    storage.claim_next_queued_search()
    storage.create_trial(search.id, 0, {"n": 0})
    storage.record_trial_report(search.id, 0, 1, 0.0, {"accuracy": 0.1})
    storage.set_aside_unfinished_trials(search.id, "paused with the search")
    storage.set_search_state(search.id, SearchState.PAUSED, "paused by user")

    ended = storage.request_cancel(search.id) if verb == "cancel" else storage.request_stop(search.id)

    assert ended.state is (SearchState.CANCELED if verb == "cancel" else SearchState.SUCCEEDED)
    trial = storage.get_trial(search.id, 0)
    assert trial.state is TrialState.CANCELED and trial.finished_at is not None
    assert trial.state_reason == ("canceled by user" if verb == "cancel" else "stopped by user")


def test_list_trials_pages_and_filters(storage: Storage) -> None:
    search, _ = storage.create_search(SPEC, "s")
    for number in range(5):
        storage.create_trial(search.id, number, {"n": number})
        storage.record_trial_report(search.id, number, 1, 1.0, {"accuracy": number / 10})
    for number in (1, 3, 4):
        storage.finish_trial(search.id, number, TrialState.SUCCEEDED)

    numbers: list[int] = []
    token: str | None = None
    while True:
        page = storage.list_trials(search.id, page_size=2, page_token=token)
        assert page.total == 5 and all(trial.reports == () for trial in page.items)
        numbers += [trial.number for trial in page.items]
        if (token := page.next_page_token) is None:
            break
    assert numbers == [0, 1, 2, 3, 4]

    first = storage.list_trials(search.id, 2, state=TrialState.SUCCEEDED)
    assert [t.number for t in first.items] == [1, 3] and first.total == 3
    rest = storage.list_trials(search.id, 2, first.next_page_token, state=TrialState.SUCCEEDED)
    assert [t.number for t in rest.items] == [4] and rest.next_page_token is None
    with pytest.raises(InvalidInputError):
        storage.list_trials(search.id, 2, "bogus")

    everything = storage.all_trials(search.id)
    assert [t.number for t in everything] == [0, 1, 2, 3, 4]
    assert all(len(t.reports) == 1 for t in everything)


def test_unknown_ids_raise_not_found(storage: Storage) -> None:
    missing = "0" * 32
    search, _ = storage.create_search(SPEC, "s")
    with pytest.raises(NotFoundError, match=f"no search with id '{missing}'"):
        storage.get_search(missing)
    calls = [
        lambda: storage.request_cancel(missing),
        lambda: storage.set_search_state(missing, SearchState.FAILED),
        lambda: storage.create_trial(missing, 0, {}),
        lambda: storage.get_trial(missing, 0),
        lambda: storage.list_trials(missing, 10),
        lambda: storage.all_trials(missing),
        lambda: storage.trial_counts(missing),
        lambda: storage.next_trial_number(missing),
        lambda: storage.get_trial(search.id, 7),
        lambda: storage.mark_trial_running(search.id, 7),
        lambda: storage.record_trial_report(search.id, 7, 0, 1.0, {}),
        lambda: storage.finish_trial(search.id, 7, TrialState.FAILED),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()


def test_storage_creates_the_sqlite_directory(tmp_path: Path) -> None:
    store = Storage(f"sqlite:///{tmp_path}/nested/dir/supernas.db")
    store.upgrade()
    try:
        assert (tmp_path / "nested" / "dir" / "supernas.db").exists()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()


def test_upgrade_from_the_first_schema_keeps_existing_rows(database_url: str) -> None:
    """A database written by the 0001 schema upgrades in place; its trials read back with no suggestion."""
    from alembic import command

    from service.storage.engine import make_engine
    from service.storage.migrate import alembic_config

    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO searches "
                "(id, name, spec, state, cancel_requested, attempt, created_at, updated_at) "
                "VALUES (:sid, 'old', '{}', 'succeeded', :no, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"sid": "a" + "0" * 31, "no": False},
        )
        connection.execute(
            text(
                "INSERT INTO trials (search_id, number, state, config, metrics, created_at) "
                "VALUES (:sid, 0, 'succeeded', '{\"depth_s0\": 1}', '{\"accuracy\": 0.5}', CURRENT_TIMESTAMP)"
            ),
            {"sid": "a" + "0" * 31},
        )
    engine.dispose()
    storage = Storage(database_url)
    try:
        storage.upgrade()
        assert _alembic_version(storage) == ["0008"]
        trial = storage.get_trial("a" + "0" * 31, 0)
        assert trial.metrics == {"accuracy": 0.5} and trial.suggestion is None
        storage.create_trial(
            "a" + "0" * 31, 1, {"depth_s0": 2}, {"strategy": "botorch", "acquisition_value": 1.5}
        )
        assert storage.get_trial("a" + "0" * 31, 1).suggestion["acquisition_value"] == 1.5
    finally:
        storage.dispose()

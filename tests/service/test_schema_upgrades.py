"""A database written at each released schema revision upgrades to the head and keeps every row.

Each case loads a committed snapshot (``schema_snapshots/<revision>_<dialect>.sql``, made by
``make_schema_snapshots.py``, whose rows are the expectations here) into a fresh SQLite file or
PostgreSQL database, runs ``Storage.upgrade()`` and reads everything back through ``Storage``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from db_helpers import postgres_database
from make_schema_snapshots import (
    DATASETS,
    DIALECTS,
    REPORTS,
    REVISIONS,
    SEARCHES,
    SPEC,
    SUPERNETS,
    TRIALS,
    at_revision,
    has_table,
    search_id,
    snapshot_path,
    supernet_id,
)
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.storage import Storage
from service.storage.json_type import MARKER, decode_non_finite
from service.storage.migrate import alembic_config
from service.storage.models import Base
from supernas.states import SearchState, SupernetState, TrialState

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
CASES = [
    pytest.param(
        (revision, dialect),
        id=f"{revision}-{dialect}",
        marks=[pytest.mark.postgres] if dialect == "postgresql" else [],
    )
    for revision in REVISIONS
    for dialect in DIALECTS
]


@contextmanager
def _snapshot_database(revision: str, dialect: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database loaded from the snapshot, still at ``revision``; yields its URL."""
    script = snapshot_path(revision, dialect).read_text()
    if dialect == "sqlite":
        path = tmp_path / "snapshot.db"
        connection = sqlite3.connect(path)
        try:
            connection.executescript(script)
        finally:
            connection.close()
        yield f"sqlite:///{path}"
        return
    with postgres_database() as url:
        # a pool of its own: the dump empties the session's search_path
        loader = create_engine(url, poolclass=NullPool)
        try:
            raw = loader.raw_connection()
            try:
                raw.cursor().execute(script)  # no parameters: many statements in one call
                raw.commit()
            finally:
                raw.close()
        finally:
            loader.dispose()
        yield url


@pytest.fixture(params=CASES)
def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Storage, str]]:
    """(Storage on the snapshot after ``upgrade()``, the snapshot's revision); the dialect is
    ``request.param[1]``."""
    revision, dialect = request.param
    with _snapshot_database(revision, dialect, tmp_path) as url:
        storage = Storage(url)
        try:
            assert _alembic_version(storage) == [revision]
            storage.upgrade()
            yield storage, revision
        finally:
            storage.dispose()


def _alembic_version(storage: Storage) -> list[str]:
    with storage.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _json(value: Any) -> str:
    """Canonical JSON; NaN and the infinities print as such, so a marker left undecoded would differ."""
    return json.dumps(value, sort_keys=True)


def _same_json(read: Any, stored: Any) -> bool:
    return _json(read) == _json(decode_non_finite(stored))


def _expected(table: str, row: dict[str, Any], revision: str) -> dict[str, Any]:
    """What the row reads back as at the head: columns added after ``revision`` are None."""
    kept = at_revision(table, row, revision)
    return {column: kept.get(column) for column in row}


def test_upgrade_reaches_the_head_and_matches_the_models(upgraded: tuple[Storage, str]) -> None:
    storage, _ = upgraded
    assert _alembic_version(storage) == [HEAD]
    with storage.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        counts = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("searches", "trials")
        }
    assert counts == {"searches": len(SEARCHES), "trials": len(TRIALS)}


def test_every_search_survives_with_its_values(upgraded: tuple[Storage, str]) -> None:
    storage, revision = upgraded
    for stored in SEARCHES:
        row = _expected("searches", stored, revision)
        search = storage.get_search(row["id"])
        assert (search.name, search.state, search.state_reason) == (
            row["name"],
            SearchState(row["state"]),
            row["state_reason"],
        )
        assert search.spec == row["spec"]
        assert (search.cancel_requested, search.attempt) == (row["cancel_requested"], row["attempt"])
        assert (search.created_at, search.started_at, search.finished_at) == (
            row["created_at"],
            row["started_at"],
            row["finished_at"],
        )
        assert search.supernet_id == row["supernet_id"]
        assert search.requested_action is None  # the column 0004 added, NULL for old rows

    page = storage.list_searches(4)
    assert page.total == len(SEARCHES)
    assert [s.id for s in page.items] == [s["id"] for s in reversed(SEARCHES)][:4]
    rest = storage.list_searches(4, page.next_page_token)
    assert [s.id for s in rest.items] == [s["id"] for s in reversed(SEARCHES)][4:]
    assert rest.next_page_token is None
    assert [s.id for s in storage.list_searches(10, name_contains="_100%").items] == [search_id(6)]


def test_every_trial_survives_nan_included(upgraded: tuple[Storage, str]) -> None:
    storage, revision = upgraded
    for stored in TRIALS:
        row = _expected("trials", stored, revision)
        trial = storage.get_trial(row["search_id"], row["number"])
        assert trial.state is TrialState(row["state"])
        assert trial.config == row["config"]
        assert _same_json(trial.metrics, row["metrics"]), trial.metrics
        assert _same_json(trial.suggestion, row["suggestion"]), trial.suggestion
        assert (trial.fidelity, trial.state_reason, trial.artifact_dir) == (
            row["fidelity"],
            row["state_reason"],
            row["artifact_dir"],
        )
        assert (trial.created_at, trial.started_at, trial.finished_at) == (
            row["created_at"],
            row["started_at"],
            row["finished_at"],
        )
        # 0004 filled the new updated_at from the latest of the trial's own timestamps
        assert trial.updated_at == (row["finished_at"] or row["started_at"] or row["created_at"])

    diverged = storage.get_trial(search_id(1), 1)
    assert math.isnan(diverged.metrics["accuracy"]) and diverged.metrics["loss"] == math.inf
    if revision >= "0002":
        assert diverged.suggestion["acquisition_value"] == -math.inf
        assert math.isnan(storage.get_trial(search_id(1), 0).suggestion["stds"]["accuracy"])

    outcomes = storage.trial_outcomes(search_id(1))
    assert [o.number for o in outcomes] == [0, 1, 2, 3]
    assert math.isnan(outcomes[1].metrics["accuracy"]) and outcomes[1].state is TrialState.FAILED
    assert [o.updated_at for o in outcomes] == [o.finished_at for o in outcomes]
    counts = {state: n for state, n in storage.trial_counts(search_id(4)).items() if n}
    assert counts == {"succeeded": 1, "running": 1, "pending": 1}


def test_supernets_and_datasets_survive(upgraded: tuple[Storage, str]) -> None:
    storage, revision = upgraded
    supernets = storage.list_supernets(10)
    datasets = storage.list_datasets(10)
    if not has_table("supernets", revision):
        assert (supernets.total, datasets.total) == (0, 0)  # the tables came with 0003, empty
        return
    assert [s.id for s in supernets.items] == [s["id"] for s in reversed(SUPERNETS)]
    for record, row in zip(supernets.items, reversed(SUPERNETS), strict=True):
        assert (record.name, record.spec, record.state, record.state_reason) == (
            row["name"],
            row["spec"],
            SupernetState(row["state"]),
            row["state_reason"],
        )
        assert (record.family, record.task, record.data_fingerprint, record.search_id) == (
            row["family"],
            row["task"],
            row["data_fingerprint"],
            row["search_id"],
        )
        assert _same_json(record.summary, row["summary"]), record.summary
        assert (record.created_at, record.finished_at, record.attempt) == (
            row["created_at"],
            row["finished_at"],
            row["attempt"],
        )
    assert math.isnan(storage.get_supernet(supernet_id(1)).summary["val_accuracy"]["smallest"])
    assert [s.id for s in storage.list_supernets(10, task="wine").items] == []

    assert [d.id for d in datasets.items] == [d["id"] for d in reversed(DATASETS)]
    for row in DATASETS:
        record = storage.get_dataset(row["id"])
        assert (record.name, record.format, record.kind) == (row["name"], row["format"], row["kind"])
        assert (record.input_shape, record.label_names) == (
            tuple(row["input_shape"]),
            tuple(row["label_names"]),
        )
        assert (record.num_examples, record.num_classes, record.size_bytes) == (
            row["num_examples"],
            row["num_classes"],
            row["size_bytes"],
        )
        assert (record.fingerprint, record.created_at) == (row["fingerprint"], row["created_at"])
    assert storage.dataset_by_key("upload-1").id == DATASETS[0]["id"]


def test_the_upgraded_database_takes_new_writes(upgraded: tuple[Storage, str]) -> None:
    storage, revision = upgraded
    # the oldest queued search first; a requeued search keeps its first start and counts the attempt
    requeued = storage.claim_next_queued_search()
    assert requeued.id == search_id(6) and requeued.attempt == 2
    assert requeued.started_at == SEARCHES[5]["started_at"]
    assert storage.claim_next_queued_search().id == search_id(7)
    assert storage.claim_next_queued_search() is None
    claimed_supernet = storage.claim_next_queued_supernet()
    if has_table("supernets", revision):
        assert claimed_supernet.id == supernet_id(4) and claimed_supernet.state is SupernetState.TRAINING
    else:
        assert claimed_supernet is None

    # new rows get fresh keys after the loaded ones (PostgreSQL: the dumped sequences were restored)
    again, created = storage.create_search(SPEC, "again", idempotency_key="snapshot-key-1")
    assert (again.id, created) == (search_id(1), False)
    new, created = storage.create_search(SPEC, "after upgrade")
    assert created and storage.list_searches(1).items[0].id == new.id
    number = storage.next_trial_number(search_id(4))
    assert number == 3
    storage.create_trial(search_id(4), number, {"depth_s0": 2}, {"strategy": "botorch", "means": {}})
    storage.mark_trial_running(search_id(4), number)
    storage.record_trial_report(search_id(4), number, 1, 1.0, {"accuracy": math.nan})
    storage.finish_trial(search_id(4), number, TrialState.SUCCEEDED, None, None, {"accuracy": 0.9})
    trial = storage.get_trial(search_id(4), number)
    assert trial.metrics == {"accuracy": 0.9} and math.isnan(trial.reports[0].metrics["accuracy"])
    assert trial.updated_at >= trial.created_at

    # the lifecycle verbs that need 0004's requested_action work on an old running search
    paused = storage.request_pause(search_id(4))
    assert paused.state is SearchState.RUNNING and paused.requested_action == "pause"
    assert storage.request_cancel(search_id(5)).cancel_requested


def test_every_trial_report_survives(upgraded: tuple[Storage, str]) -> None:
    storage, _ = upgraded
    with storage.engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM trial_reports")).scalar_one()
    assert count == len(REPORTS)
    for stored in TRIALS:
        trial = storage.get_trial(stored["search_id"], stored["number"])
        reports = [r for r in REPORTS if (search_id(r[0]), r[1]) == (trial.search_id, trial.number)]
        assert [(r.step, r.fidelity, r.created_at) for r in trial.reports] == [
            (step, fidelity, created_at) for _, _, step, fidelity, _, created_at in reports
        ]
        for report, (*_, metrics, _) in zip(trial.reports, reports, strict=True):
            assert _same_json(report.metrics, metrics), report.metrics
    assert math.isnan(storage.get_trial(search_id(1), 1).reports[0].metrics["accuracy"])
    curve = storage.get_trial(search_id(1), 0).reports
    assert [r.metrics["accuracy"] for r in curve] == [0.71, 0.85, 0.912]


@pytest.mark.parametrize(("revision", "dialect"), [(r, d) for r in REVISIONS for d in DIALECTS])
def test_snapshots_hold_the_nan_marker_as_stored_by_supernas(revision: str, dialect: str) -> None:
    """The snapshots store non-finite metrics as the JSON marker, the way supernas writes them."""
    script = snapshot_path(revision, dialect).read_text()
    assert f'{{"{MARKER}": "NaN"}}' in script
    assert f"schema revision {revision} ({dialect})" in script.splitlines()[0]

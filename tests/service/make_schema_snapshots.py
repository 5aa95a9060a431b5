"""Write ``schema_snapshots/<revision>_<dialect>.sql``: a database at each released schema revision,
with realistic rows, for ``test_schema_upgrades.py`` to upgrade.

Run from the repository root with PostgreSQL reachable (``SUPERNAS_TEST_POSTGRES_URL``, default
127.0.0.1:5432 user postgres) and ``pg_dump`` on the PATH::

    .venv/bin/python tests/service/make_schema_snapshots.py

For each revision it upgrades a fresh database to that revision with the shipped Alembic migrations,
inserts the rows below with plain SQL (stored the way SQLAlchemy stores them: JSON text with the
non-finite markers of ``service/storage/json_type.py``, UTC timestamps), and dumps it: SQLite with
``sqlite3``'s ``iterdump()``, PostgreSQL with ``pg_dump --no-owner --no-privileges --column-inserts``.
The snapshots are committed; regenerate them only when a new revision is released (add it to
``REVISIONS``), never for a released one, whose databases already exist in the field.

The rows are also the expectations of the test, which imports them from here.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (HERE.parent.parent, HERE.parent):  # the repository root (service) and tests/ (db_helpers)
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from alembic import command  # noqa: E402
from db_helpers import postgres_database  # noqa: E402
from sqlalchemy import Connection, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from service.storage.engine import make_engine  # noqa: E402
from service.storage.migrate import alembic_config  # noqa: E402

SNAPSHOT_DIR = HERE / "schema_snapshots"
REVISIONS = ("0001", "0002", "0003")  # released schemas; the newest migration is not released yet
DIALECTS = ("sqlite", "postgresql")

# columns and tables that did not exist from the first revision on: (table, column) -> first revision
COLUMN_SINCE = {("trials", "suggestion"): "0002", ("searches", "supernet_id"): "0003"}
TABLE_SINCE = {"supernets": "0003", "datasets": "0003"}

NAN = {"__supernas_float__": "NaN"}
INF = {"__supernas_float__": "Infinity"}
NEG_INF = {"__supernas_float__": "-Infinity"}


def snapshot_path(revision: str, dialect: str) -> Path:
    return SNAPSHOT_DIR / f"{revision}_{dialect}.sql"


def at(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, micro, tzinfo=UTC)


def search_id(n: int) -> str:
    return f"5eed{n:028x}"


def supernet_id(n: int) -> str:
    return f"sn_5eed{n:028x}"


SPEC = {
    "name": "snapshot",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "constraints": [{"metric": "params", "max": 100000}],
    "budget": {"max_trials": 8, "max_parallel": 2},
    "fidelity": {"finetune_epochs": 3},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    "strategy": {"type": "botorch", "seed": 7},
}


def _search(n: int, name: str, state: str, reason: str | None, **values: Any) -> dict[str, Any]:
    row = {
        "id": search_id(n),
        "name": name,
        "spec": SPEC | {"name": name},
        "state": state,
        "state_reason": reason,
        "cancel_requested": False,
        "attempt": 1,
        "idempotency_key": None,
        "created_at": at(5, 9, n),
        "started_at": at(5, 10, n),
        "finished_at": None,
        "updated_at": at(5, 10, n, 30),
        "supernet_id": None,
    }
    return row | values


# in insertion (pk) order
SEARCHES: list[dict[str, Any]] = [
    _search(
        1,
        "baseline sweep",
        "succeeded",
        "budget exhausted",
        idempotency_key="snapshot-key-1",
        finished_at=at(5, 11, 30, 0, 250000),
        updated_at=at(5, 11, 30, 0, 250000),
        supernet_id=supernet_id(1),
    ),
    _search(
        2,
        "crashed run",
        "failed",
        "worker crashed: CUDA out of memory",
        finished_at=at(5, 10, 40),
        updated_at=at(5, 10, 40),
    ),
    _search(
        3,
        "canceled while queued",
        "canceled",
        "canceled by user",
        attempt=0,
        started_at=None,
        finished_at=at(5, 9, 45),
        updated_at=at(5, 9, 45),
    ),
    _search(4, "long run", "running", "claimed by dispatcher", attempt=2, supernet_id=supernet_id(2)),
    _search(5, "being canceled", "running", "cancel requested", cancel_requested=True),
    _search(6, "Requeued_100%", "queued", "requeued after service restart"),
    _search(
        7, "fresh", "queued", "waiting for a dispatcher", attempt=0, started_at=None, updated_at=at(5, 9, 7)
    ),
]


def trial_time(search: int, number: int, seconds: float = 0) -> datetime:
    """When trial ``number`` of search ``search`` was created, plus ``seconds``."""
    return at(5, 10, 10 + 10 * number, search) + timedelta(seconds=seconds)


def _trial(search: int, number: int, state: str, **values: Any) -> dict[str, Any]:
    row = {
        "search_id": search_id(search),
        "number": number,
        "state": state,
        "config": {"depth_s0": 1 + number % 3, "width_s0": 16 * (1 + number), "kernel_s0": 3},
        "metrics": {},
        "fidelity": None,
        "state_reason": None,
        "artifact_dir": None,
        "suggestion": None,
        "created_at": trial_time(search, number),
        "started_at": trial_time(search, number, 5),
        "finished_at": trial_time(search, number, 290.123456),
    }
    return row | values


TRIALS: list[dict[str, Any]] = [
    _trial(
        1,
        0,
        "succeeded",
        metrics={"accuracy": 0.912, "params": 48213, "latency_ms": 1.75},
        fidelity=3.0,
        artifact_dir=f"/var/lib/supernas/artifacts/{search_id(1)}/trial_0",
        suggestion={
            "strategy": "botorch",
            "acquisition_value": 0.42,
            "means": {"accuracy": 0.9, "params": 50000.0},
            "stds": {"accuracy": NAN, "params": 1200.5},
        },
    ),
    _trial(
        1,
        1,
        "failed",
        metrics={"accuracy": NAN, "loss": INF, "params": 61000},
        fidelity=1.0,
        state_reason="loss diverged",
        suggestion={"strategy": "botorch", "acquisition_value": NEG_INF},
    ),
    _trial(
        1,
        2,
        "pruned",
        metrics={"accuracy": 0.61, "params": 30011},
        fidelity=1.0,
        state_reason="pruned by asha at rung 0",
    ),
    _trial(
        1,
        3,
        "infeasible",
        metrics={"params": 250000},
        state_reason="params 250000 > 100000",
        started_at=None,
    ),
    _trial(2, 0, "failed", state_reason="worker crashed: CUDA out of memory"),
    _trial(4, 0, "succeeded", metrics={"accuracy": 0.88, "params": 41000}, fidelity=3.0),
    _trial(4, 1, "running", metrics={"accuracy": 0.7, "params": 52000}, fidelity=1.0, finished_at=None),
    _trial(4, 2, "pending", started_at=None, finished_at=None),
    _trial(5, 0, "running", finished_at=None),
]

# (search, trial number, step, fidelity, metrics, created_at)
REPORTS: list[tuple[int, int, int, float, dict[str, Any], datetime]] = [
    (1, 0, 1, 1.0, {"accuracy": 0.71, "params": 48213}, trial_time(1, 0, 100.5)),
    (1, 0, 2, 2.0, {"accuracy": 0.85, "params": 48213}, trial_time(1, 0, 190.25)),
    (1, 0, 3, 3.0, {"accuracy": 0.912, "params": 48213}, trial_time(1, 0, 280)),
    (1, 1, 1, 1.0, {"accuracy": NAN, "loss": INF, "params": 61000}, trial_time(1, 1, 100)),
    (1, 2, 1, 1.0, {"accuracy": 0.61, "params": 30011}, trial_time(1, 2, 100)),
    (4, 0, 1, 1.0, {"accuracy": 0.8, "params": 41000}, trial_time(4, 0, 100)),
    (4, 1, 1, 1.0, {"accuracy": 0.7, "params": 52000}, trial_time(4, 1, 100)),
]

SUPERNET_SPEC = {
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "training": {"method": "sandwich", "epochs": 5},
}


def _supernet(n: int, name: str, state: str, reason: str | None, **values: Any) -> dict[str, Any]:
    row = {
        "id": supernet_id(n),
        "name": name,
        "spec": SUPERNET_SPEC | {"name": name},
        "state": state,
        "state_reason": reason,
        "family": "elastic_cnn",
        "task": "digits",
        "data_fingerprint": None,
        "summary": None,
        "search_id": None,
        "cancel_requested": False,
        "attempt": 1,
        "idempotency_key": None,
        "created_at": at(4, 8, n),
        "finished_at": None,
        "updated_at": at(4, 8, n, 30),
    }
    return row | values


SUPERNETS: list[dict[str, Any]] = [
    _supernet(
        1,
        "digits cnn",
        "ready",
        "trained",
        data_fingerprint="a3" * 32,
        summary={
            "method": "sandwich",
            "epochs": 5,
            "final_loss": 0.31,
            "val_accuracy": {"largest": 0.95, "smallest": NAN},
            "data_fingerprint": "a3" * 32,
        },
        idempotency_key="snapshot-supernet-1",
        finished_at=at(4, 9, 15),
    ),
    _supernet(2, "long run", "training", "claimed by search", search_id=search_id(4)),
    _supernet(3, "diverged", "failed", "training diverged", finished_at=at(4, 8, 50)),
    _supernet(4, "waiting", "queued", "waiting for training", attempt=0),
]

DATASETS: list[dict[str, Any]] = [
    {
        "id": "ds_5eed" + "0" * 27 + "1",
        "name": "wine.csv",
        "format": "csv",
        "kind": "tabular",
        "input_shape": [13],
        "num_examples": 178,
        "num_classes": 3,
        "label_names": ["class_0", "class_1", "class_2"],
        "fingerprint": "b7" * 32,
        "size_bytes": 11290,
        "idempotency_key": "upload-1",
        "created_at": at(3, 7),
    },
    {
        "id": "ds_5eed" + "0" * 27 + "2",
        "name": "digits-28.npz",
        "format": "npz",
        "kind": "image",
        "input_shape": [1, 28, 28],
        "num_examples": 1000,
        "num_classes": 10,
        "label_names": [str(digit) for digit in range(10)],
        "fingerprint": "c4" * 32,
        "size_bytes": 785123,
        "idempotency_key": None,
        "created_at": at(3, 7, 30),
    },
]


def has_table(table: str, revision: str) -> bool:
    return revision >= TABLE_SINCE.get(table, "0001")


def at_revision(table: str, row: dict[str, Any], revision: str) -> dict[str, Any]:
    """The row without the columns its table did not have at ``revision``."""
    return {
        column: value
        for column, value in row.items()
        if revision >= COLUMN_SINCE.get((table, column), "0001")
    }


def _stored(value: Any, dialect: str) -> Any:
    """A Python value as SQLAlchemy would bind it: JSON as text, SQLite timestamps as naive UTC text."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _insert(connection: Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    names = ", ".join(f":{column}" for column in row)
    dialect = connection.dialect.name
    params = {column: _stored(value, dialect) for column, value in row.items()}
    connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({names})"), params)


def insert_rows(connection: Connection, revision: str) -> None:
    for row in SEARCHES:
        _insert(connection, "searches", at_revision("searches", row, revision))
    for row in TRIALS:
        _insert(connection, "trials", at_revision("trials", row, revision))
    for search, number, step, fidelity, metrics, created_at in REPORTS:
        trial_pk = connection.execute(
            text("SELECT pk FROM trials WHERE search_id = :search_id AND number = :number"),
            {"search_id": search_id(search), "number": number},
        ).scalar_one()
        row = {"trial_pk": trial_pk, "step": step, "fidelity": fidelity, "metrics": metrics}
        _insert(connection, "trial_reports", row | {"created_at": created_at})
    for table, rows in (("supernets", SUPERNETS), ("datasets", DATASETS)):
        if has_table(table, revision):
            for row in rows:
                _insert(connection, table, row)


def build_database(url: str, revision: str) -> None:
    """Upgrade the empty database at ``url`` to ``revision`` and fill it."""
    engine = make_engine(url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            insert_rows(connection, revision)
    finally:
        engine.dispose()


def _header(revision: str, dialect: str) -> str:
    return (
        f"-- supernas database at schema revision {revision} ({dialect}), with rows;\n"
        "-- generated by tests/service/make_schema_snapshots.py: do not edit by hand\n"
    )


def dump_sqlite(revision: str) -> str:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "snapshot.db"
        build_database(f"sqlite:///{path}", revision)
        connection = sqlite3.connect(path)
        try:
            return "\n".join(connection.iterdump()) + "\n"
        finally:
            connection.close()


def dump_postgresql(revision: str) -> str:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise SystemExit("pg_dump is not on the PATH (Debian: apt-get install postgresql-client)")
    with postgres_database() as url:
        build_database(url, revision)
        libpq_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        dumped = subprocess.run(
            [pg_dump, "--no-owner", "--no-privileges", "--column-inserts", f"--dbname={libpq_url}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    # pg_dump >= 15.14 wraps the script in psql-only \restrict / \unrestrict lines (with a random
    # key); the snapshot is loaded by a driver, not psql, and should not change on every run
    lines = [line for line in dumped.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]
    return "\n".join(lines) + "\n"


def main() -> None:
    SNAPSHOT_DIR.mkdir(exist_ok=True)
    for revision in REVISIONS:
        for dialect, dump in (("sqlite", dump_sqlite), ("postgresql", dump_postgresql)):
            path = snapshot_path(revision, dialect)
            path.write_text(_header(revision, dialect) + dump(revision))
            print(f"wrote {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()

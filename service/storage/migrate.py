"""Bringing a database to the newest schema with Alembic, and refusing databases from the future."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from service.storage.engine import make_engine
from supernas.errors import SchemaMismatchError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config that needs no alembic.ini: the migrations ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_schema(engine_or_url: Engine | str) -> None:
    """Run ``alembic upgrade head``; an empty database gets every table.

    Raises SchemaMismatchError when the database carries a revision these migrations do not know
    (it was written by a newer supernas), rather than running on a schema we do not understand.
    """
    owns_engine = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    config = alembic_config()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    try:
        with (
            engine.connect() as connection,
            _foreign_keys_off_on_sqlite(connection),
            connection.begin(),
        ):
            current = MigrationContext.configure(connection).get_current_heads()
            for revision in current:
                if revision not in known:
                    raise SchemaMismatchError(
                        f"database schema revision {revision} is unknown to this version of supernas; "
                        "refusing to start"
                    )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        if owns_engine:
            engine.dispose()


@contextmanager
def _foreign_keys_off_on_sqlite(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it, dropping the original and renaming the copy; with foreign
    keys on, dropping ``trials`` would cascade-delete every learning-curve report. So migrations run
    with them off (the pragma only takes effect outside a transaction), and are checked afterwards."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
        violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.commit()
        if violations:
            raise SchemaMismatchError(f"the migration left rows with dangling foreign keys: {violations[:5]}")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()

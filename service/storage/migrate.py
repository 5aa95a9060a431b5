"""Bringing a database to the newest schema with Alembic, and refusing databases from the future."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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
        with engine.begin() as connection:
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

"""Database helpers for tests: a throwaway PostgreSQL database per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

POSTGRES_URL_ENV = "SUPERNAS_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a fresh database ``supernas_test_<hex>``, yield its URL, drop it afterwards.

    The server comes from ``SUPERNAS_TEST_POSTGRES_URL``. An unreachable server is an error, not a
    skip: a green run must mean PostgreSQL was tested.
    """
    server_url = make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    name = f"supernas_test_{secrets.token_hex(6)}"
    connect_args = {"connect_timeout": 5} if server_url.get_backend_name() == "postgresql" else {}
    admin = create_engine(
        server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args=connect_args
    )
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as exc:
            raise RuntimeError(
                f"cannot reach PostgreSQL at {server_url.render_as_string(hide_password=True)} ({exc.orig}); "
                f"start PostgreSQL (or point {POSTGRES_URL_ENV} at one), "
                'or deselect these tests with -m "not postgres"'
            ) from exc
        try:
            yield server_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()

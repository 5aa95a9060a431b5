"""Fixtures of the service tests on the test's database (SQLite or PostgreSQL): the in-process API
client (the real app, dispatcher off, auth off; tests/service/test_auth.py covers auth) and the
storage itself, schema upgraded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.storage import Storage


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    store = Storage(database_url)
    store.upgrade()
    yield store
    store.dispose()

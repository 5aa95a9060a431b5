"""The in-process API client of the service tests: the real app on the test's database (SQLite or
PostgreSQL), dispatcher off, auth off (tests/service/test_auth.py covers auth)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, run_dispatcher=False, auth=False)
    with TestClient(create_app(settings)) as test_client:
        yield test_client

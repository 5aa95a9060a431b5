"""Fixtures of the dashboard's browser tests: Debian's Chromium driven by Playwright (sync API, one
browser per test file), the real service in a subprocess on a SQLite file with its dispatcher off
(one per session), and a page per test (see ``harness.py``).

Playwright's sync API keeps an event loop running in the main thread while it is open, and no code
of the same process may then call ``asyncio.run`` (the load benchmarks do). So the browser closes at
the end of each file, whatever runs after it on the same pytest-xdist worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CHROMIUM, CHROMIUM_ARGS, Dashboard, OfflineService, dashboard_page
from playwright.sync_api import Browser, Playwright, sync_playwright
from service_process import running_service

from service.storage import Storage


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/install.sh does)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def offline_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineService]:
    """The service with its dispatcher off: searches inserted through ``storage`` stay as inserted."""
    data_dir = tmp_path_factory.mktemp("dashboard-offline")
    database_url = f"sqlite:///{data_dir}/supernas.db"
    with running_service(data_dir, database_url, extra_env={"SUPERNAS_RUN_DISPATCHER": "false"}) as handle:
        storage = Storage(database_url)
        storage.upgrade()  # done by the service already: a no-op
        try:
            yield OfflineService(handle.url, storage, handle)
        finally:
            storage.dispose()


@pytest.fixture
def dash(
    browser: Browser, offline_service: OfflineService, request: pytest.FixtureRequest
) -> Iterator[Dashboard]:
    """A page on the offline service."""
    yield from dashboard_page(browser, offline_service.url, request.node.name)

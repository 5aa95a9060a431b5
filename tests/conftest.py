"""Shared fixtures: ``database_url`` runs a test on SQLite and on PostgreSQL (marker ``postgres``).

Under pytest-xdist (``scripts/test.sh`` runs ``-n 2``) each worker process keeps torch to one
thread, so that two workers share two cores instead of each spinning two threads on both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
# tests/ for db_helpers; the repository root so that a bare `pytest` imports the uninstalled packages
for path in (TESTS_DIR, TESTS_DIR.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from db_helpers import postgres_database  # noqa: E402 (needs the sys.path entry above)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/supernas.db"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    tiny tensors gain nothing from intra-op threads, and spinning threads crawl on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

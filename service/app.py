"""``create_app(settings)``: the FastAPI application, its storage and its dispatcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import supernas
from service.api import health, searches
from service.api.problems import install_problem_handlers
from service.dispatch import Dispatcher
from service.settings import Settings
from service.storage import Storage

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    storage = Storage(settings.resolved_database_url)
    dispatcher = Dispatcher(storage, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage.upgrade()  # refuses to start on an unknown schema revision
        requeued = storage.recover_interrupted_searches()
        if requeued:
            log.warning("requeued %d search(es) interrupted by a previous shutdown: %s", len(requeued), requeued)
        if settings.run_dispatcher:
            dispatcher.start()
        yield
        dispatcher.stop()
        storage.dispose()

    app = FastAPI(title="supernas", version=supernas.__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.storage = storage
    app.state.dispatcher = dispatcher
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(searches.router)
    return app

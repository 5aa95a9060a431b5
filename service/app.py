"""``create_app(settings)``: the FastAPI application, its storage and its dispatcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.gzip import GZipMiddleware

import supernas
from service.api import datasets, health, searches, supernets, tokens, views
from service.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from service.auth import FIRST_TOKEN_NOTICE, authenticate, bootstrap_admin_token
from service.dashboard import pages
from service.dispatch import Dispatcher
from service.settings import Settings
from service.storage import Storage
from service.summaries import SummaryCache
from workers.ray_runtime import ensure_ray, shutdown_ray

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    storage = Storage(settings.resolved_database_url)
    dispatcher = Dispatcher(storage, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage.upgrade()  # refuses to start on an unknown schema revision
        if settings.auth and (token := bootstrap_admin_token(storage)) is not None:
            print(f"{FIRST_TOKEN_NOTICE} {token}", flush=True)
            log.warning("created the first admin token (printed once on stdout)")
        for search in storage.interrupted_searches():
            dispatcher.end_trials_by_last_report(search)
        requeued = storage.recover_interrupted_searches()
        if requeued:
            log.warning(
                "requeued %d search(es) interrupted by a previous shutdown: %s", len(requeued), requeued
            )
        requeued_supernets = storage.recover_interrupted_supernets()
        if requeued_supernets:
            log.warning("requeued supernet training interrupted by a shutdown: %s", requeued_supernets)
        if settings.run_dispatcher:
            # in the main thread, which lives as long as the service: Ray's processes die with the
            # thread that starts them (see ensure_ray)
            ensure_ray(settings.ray_num_cpus)  # keeps uvicorn's SIGTERM/SIGINT handlers
            dispatcher.start()
        yield
        dispatcher.stop()
        shutdown_ray()  # stops the embedded Ray processes this service started
        storage.dispose()

    app = FastAPI(title="supernas", version=supernas.__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.storage = storage
    app.state.dispatcher = dispatcher
    app.state.summaries = SummaryCache(storage, size=settings.summary_cache_size)
    install_problem_handlers(app)
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.include_router(health.router)
    authenticated = {"responses": PROBLEM_RESPONSES, "dependencies": [Depends(authenticate)]}
    for api in (searches, views, supernets, datasets, tokens):
        app.include_router(api.router, **authenticated)
    app.include_router(pages.router)
    return app

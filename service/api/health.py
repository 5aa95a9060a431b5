"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> dict[str, object]:
    """200 when the service answers and its database is reachable."""
    request.app.state.storage.ping()
    return {"status": "ok", "active_searches": request.app.state.dispatcher.active_searches()}

"""RFC 9457 problem+json responses for every error the API returns, each with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from supernas.errors import InvalidInputError, SupernasError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ProblemFieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem; ``code`` is stable, ``errors`` (on 422) names each offending field."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemFieldError] | None = None


def _documented(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_JSON: {}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Malformed request body"),
    401: _documented("Missing, unknown, expired or revoked bearer token"),
    403: _documented("An admin-only action"),
    404: _documented("No such resource"),
    409: _documented("Not allowed in the resource's current state, or an Idempotency-Key reused"),
    413: _documented("Upload larger than the service accepts"),
    422: _documented("Invalid input; `errors` names each field"),
    500: _documented("Internal error"),
}


def problem(
    status: int, title: str, detail: str, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_problem(errors: list[dict[str, Any]]) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = "; ".join(f"malformed JSON: {e.get('ctx', {}).get('error', e['msg'])}" for e in errors)
        return problem(400, "Malformed request body", detail, "malformed_body")
    cleaned = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e.get("type", "")} for e in errors]
    detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in cleaned)
    return problem(422, "Invalid input", detail, "invalid_input", errors=cleaned)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(list(exc.errors()))

    @app.exception_handler(InvalidInputError)
    async def _on_invalid(_: Request, exc: InvalidInputError) -> JSONResponse:
        return _validation_problem([{"loc": exc.loc, "msg": exc.message, "type": "value_error"}])

    @app.exception_handler(SupernasError)
    async def _on_error(_: Request, exc: SupernasError) -> JSONResponse:
        return problem(exc.status_code, exc.title, str(exc), exc.code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, "HTTP error", str(exc.detail), code, headers=headers)

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the service failed to handle this request", "internal_error")

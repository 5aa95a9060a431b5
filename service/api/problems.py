"""RFC 9457 problem+json responses for every error the API returns."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from supernas.errors import InvalidInputError, SupernasError

PROBLEM_JSON = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _validation_problem(errors: list[dict[str, Any]]) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = "; ".join(f"malformed JSON: {e.get('ctx', {}).get('error', e['msg'])}" for e in errors)
        return problem(400, "Malformed request body", detail)
    cleaned = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e.get("type", "")} for e in errors]
    detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in cleaned)
    return problem(422, "Invalid input", detail, errors=cleaned)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(list(exc.errors()))

    @app.exception_handler(InvalidInputError)
    async def _on_invalid(_: Request, exc: InvalidInputError) -> JSONResponse:
        return _validation_problem([{"loc": exc.loc, "msg": exc.message, "type": "value_error"}])

    @app.exception_handler(SupernasError)
    async def _on_error(_: Request, exc: SupernasError) -> JSONResponse:
        return problem(exc.status_code, exc.title, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "HTTP error", str(exc.detail))

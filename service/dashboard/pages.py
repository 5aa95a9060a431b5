"""Routes of the dashboard's HTML pages and static files (left out of the OpenAPI schema).

The pages are static shells; their JavaScript reads the ids from the URL and calls the JSON API.
Plotly comes from the installed ``plotly`` package, gzip-compressed once and cached by browsers.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from supernas.errors import NotFoundError

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# our own files may change with every release: the browser revalidates them (ETag) on each load
_OWN_CACHE = "no-cache"
# plotly changes only with the plotly package: a day without revalidation
_PLOTLY_CACHE = "public, max-age=86400"


def _etag(content: bytes) -> str:
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _cached_response(
    request: Request,
    content: bytes,
    media_type: str,
    cache_control: str,
    etag: str | None = None,
    **headers: str,
) -> Response:
    """``content`` with an ETag; 304 without a body when the browser already has it."""
    etag = etag or _etag(content)
    headers = {"ETag": etag, "Cache-Control": cache_control, **headers}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


def _static_file(request: Request, name: str) -> Response:
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise NotFoundError(f"no static file {name!r}")
    path = STATIC_DIR / name
    media_type = _MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file():
        raise NotFoundError(f"no static file {name!r}")
    return _cached_response(request, path.read_bytes(), media_type, _OWN_CACHE)


@cache
def _plotly() -> tuple[bytes, bytes, str]:
    """plotly.min.js as shipped, gzip-compressed and its ETag (once per process: it is about 4.6 MB)."""
    content = (importlib.resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return content, gzip.compress(content, compresslevel=6, mtime=0), _etag(content)


@router.get("/")
def searches_page(request: Request) -> Response:
    return _static_file(request, "searches.html")


@router.get("/searches/{search_id}")
def search_page(search_id: str, request: Request) -> Response:
    return _static_file(request, "search.html")


@router.get("/searches/{search_id}/trials/{number}")
def trial_page(search_id: str, number: str, request: Request) -> Response:
    return _static_file(request, "trial.html")


@router.get("/static/plotly.min.js")
def plotly_js(request: Request) -> Response:
    plain, compressed, etag = _plotly()
    media_type = _MEDIA_TYPES[".js"]
    if "gzip" in request.headers.get("accept-encoding", ""):
        # already compressed: GZipMiddleware leaves a response that has a Content-Encoding alone
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        gz_etag = etag[:-1] + '-gz"'
        return _cached_response(request, compressed, media_type, _PLOTLY_CACHE, gz_etag, **headers)
    return _cached_response(request, plain, media_type, _PLOTLY_CACHE, etag, Vary="Accept-Encoding")


@router.get("/static/{name}")
def static_file(name: str, request: Request) -> Response:
    return _static_file(request, name)

"""Who may see what: every search, supernet and data set has an owner; a principal sees its own
(an admin sees all). Anything another owner has is reported as not found, never as forbidden, so
ids of other users' resources leak nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from service.auth import principal_of
from service.storage import Storage
from supernas.errors import ConflictError, NotFoundError
from supernas.records import DatasetRecord, SearchRecord, SupernetRecord

_SEARCH_ID = re.compile(r"^[0-9a-f]{32}$")
_SUPERNET_ID = re.compile(r"^sn_[0-9a-f]{32}$")
_DATASET_ID = re.compile(r"^ds_[0-9a-f]{32}$")


WIND_DOWN_S = 30.0  # how long a delete waits for an ended search or training's thread to return


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


R = TypeVar("R", SearchRecord, SupernetRecord, DatasetRecord)


def _owned(
    request: Request, what: str, resource_id: str, pattern: re.Pattern[str], get: Callable[[str], R]
) -> R:
    """The resource ``get(resource_id)`` if the id is well-formed, it exists and the request's principal
    may see it; otherwise the same 404 in all three cases."""
    missing = f"no {what} with id {resource_id!r}"
    if not pattern.match(resource_id):
        raise NotFoundError(missing)
    record = get(resource_id)
    if not principal_of(request).sees(record.owner):
        raise NotFoundError(missing)
    return record


def owned_search(request: Request, search_id: str) -> SearchRecord:
    return _owned(request, "search", search_id, _SEARCH_ID, storage_of(request).get_search)


def owned_supernet(request: Request, supernet_id: str) -> SupernetRecord:
    return _owned(request, "supernet", supernet_id, _SUPERNET_ID, storage_of(request).get_supernet)


def owned_dataset(request: Request, dataset_id: str) -> DatasetRecord:
    return _owned(request, "data set", dataset_id, _DATASET_ID, storage_of(request).get_dataset)


def scoped_idempotency_key(request: Request, key: str | None) -> str | None:
    """Idempotency keys are per owner: one user's key never finds another user's resource."""
    return None if key is None else f"{principal_of(request).owner}/{key}"


def wait_for_wind_down(request: Request, what: str, resource_id: str) -> None:
    """A search or supernet training may read ended a moment before this process's thread running it
    returns: wait for that thread before deleting its files (``ConflictError`` after ``WIND_DOWN_S``)."""
    if not request.app.state.dispatcher.wait_until_done(resource_id, WIND_DOWN_S):
        raise ConflictError(f"{what} {resource_id} is still winding down; delete it in a moment")

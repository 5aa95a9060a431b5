"""Who may see what: every search, supernet and data set has an owner; a principal sees its own
(an admin sees all). Anything another owner has is reported as not found, never as forbidden, so
ids of other users' resources leak nothing."""

from __future__ import annotations

import re

from fastapi import Request

from service.auth import Principal, principal_of
from service.storage import Storage
from supernas.errors import NotFoundError
from supernas.records import DatasetRecord, SearchRecord, SupernetRecord

_SEARCH_ID = re.compile(r"^[0-9a-f]{32}$")
_SUPERNET_ID = re.compile(r"^sn_[0-9a-f]{32}$")
_DATASET_ID = re.compile(r"^ds_[0-9a-f]{32}$")


def storage_of(request: Request) -> Storage:
    return request.app.state.storage


def _visible_or_missing(principal: Principal, owner: str, what: str) -> None:
    if not principal.sees(owner):
        raise NotFoundError(what)


def owned_search(request: Request, search_id: str) -> SearchRecord:
    """The search, if it exists and the request's principal may see it; else 404."""
    missing = f"no search with id {search_id!r}"
    if not _SEARCH_ID.match(search_id):
        raise NotFoundError(missing)
    record = storage_of(request).get_search(search_id)
    _visible_or_missing(principal_of(request), record.owner, missing)
    return record


def owned_supernet(request: Request, supernet_id: str) -> SupernetRecord:
    missing = f"no supernet with id {supernet_id!r}"
    if not _SUPERNET_ID.match(supernet_id):
        raise NotFoundError(missing)
    record = storage_of(request).get_supernet(supernet_id)
    _visible_or_missing(principal_of(request), record.owner, missing)
    return record


def owned_dataset(request: Request, dataset_id: str) -> DatasetRecord:
    missing = f"no data set with id {dataset_id!r}"
    if not _DATASET_ID.match(dataset_id):
        raise NotFoundError(missing)
    record = storage_of(request).get_dataset(dataset_id)
    _visible_or_missing(principal_of(request), record.owner, missing)
    return record


def scoped_idempotency_key(request: Request, key: str | None) -> str | None:
    """Idempotency keys are per owner: one user's key never finds another user's resource."""
    return None if key is None else f"{principal_of(request).owner}/{key}"

"""Routes of trained supernets: train one on its own, list them, read one."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from search_spaces.spec import SupernetSpec
from service.api.schemas import SupernetOut, SupernetPage
from service.spec_validation import check_supernet_spec
from service.storage import Storage
from supernas.errors import IdempotencyKeyReusedError, NotFoundError

router = APIRouter(prefix="/api/v1/supernets", tags=["supernets"])

_SUPERNET_ID = re.compile(r"^sn_[0-9a-f]{32}$")


def _storage(request: Request) -> Storage:
    return request.app.state.storage


@router.post("", status_code=201, response_model=SupernetOut)
def create_supernet(
    spec: SupernetSpec,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> SupernetOut:
    """Queue the training of a supernet; searches on the same task can then name it as ``supernet_id``."""
    storage = _storage(request)
    check_supernet_spec(spec, storage)
    record, created = storage.create_supernet(spec.model_dump(mode="json"), idempotency_key)
    if not created:
        if record.spec != spec.model_dump(mode="json"):
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idempotency_key!r} was used for supernet {record.id} with another spec"
            )
        response.status_code = 200
    request.app.state.dispatcher.wake()
    return SupernetOut.build(record)


@router.get("", response_model=SupernetPage)
def list_supernets(
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: str | None = None,
    task: Annotated[str | None, Query(max_length=200)] = None,
) -> SupernetPage:
    page = _storage(request).list_supernets(page_size, page_token, task)
    return SupernetPage(
        items=[SupernetOut.build(r) for r in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{supernet_id}", response_model=SupernetOut)
def get_supernet(supernet_id: str, request: Request) -> SupernetOut:
    if not _SUPERNET_ID.match(supernet_id):
        raise NotFoundError(f"no supernet with id {supernet_id!r}")
    return SupernetOut.build(_storage(request).get_supernet(supernet_id))

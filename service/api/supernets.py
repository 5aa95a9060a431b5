"""Routes of trained supernets: train one on its own, list them, read one."""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from search_spaces.spec import SupernetSpec
from service.api.access import owned_supernet, scoped_idempotency_key, wait_for_wind_down
from service.api.schemas import SupernetOut, SupernetPage
from service.auth import principal_of
from service.spec_validation import check_supernet_spec
from service.storage import Storage
from supernas.errors import IdempotencyKeyReusedError
from workers.driver import supernet_dir

router = APIRouter(prefix="/api/v1/supernets", tags=["supernets"])


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
    principal = principal_of(request)
    check_supernet_spec(spec, storage, principal)
    record, created = storage.create_supernet(
        spec.model_dump(mode="json"), scoped_idempotency_key(request, idempotency_key), principal.owner
    )
    if not created:
        if SupernetSpec.model_validate(record.spec).model_dump(mode="json") != spec.model_dump(mode="json"):
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
    page = _storage(request).list_supernets(page_size, page_token, task, principal_of(request).owner_filter)
    return SupernetPage(
        items=[SupernetOut.build(r) for r in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{supernet_id}", response_model=SupernetOut)
def get_supernet(supernet_id: str, request: Request) -> SupernetOut:
    return SupernetOut.build(owned_supernet(request, supernet_id))


@router.delete("/{supernet_id}", status_code=204)
def delete_supernet(supernet_id: str, request: Request) -> Response:
    """Delete a supernet that has ended training (ready, failed or canceled) with its weights,
    snapshots and checkpoints. ``409`` while it trains or while a search that has not ended names it;
    searches that have ended keep their trials and models."""
    record = owned_supernet(request, supernet_id)
    if record.state.is_terminal:
        wait_for_wind_down(request, "supernet", record.id)
    _storage(request).delete_supernet(record.id)
    artifacts = request.app.state.settings.resolved_artifacts_dir
    shutil.rmtree(supernet_dir(artifacts, record.id), ignore_errors=True)
    return Response(status_code=204)

"""Routes of uploaded data sets: upload a ``.npz`` or ``.csv`` file, list them, read one.

The file is the raw request body (``curl --data-binary @train.csv '.../datasets?filename=train.csv'``).
A body over ``max_upload_bytes`` gets 413 from its ``Content-Length`` before any of it is read, or as
soon as the stream passes the limit. Files are parsed without unpickling anything, validated, and
stored in the artifact store as ``datasets/<id>/data.npz``; a spec then names the id as its ``task``.
"""

from __future__ import annotations

import re
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, Response

from service.api.access import owned_dataset, scoped_idempotency_key
from service.api.schemas import DatasetOut, DatasetPage
from service.auth import principal_of
from service.storage import Storage
from service.storage.datasets import new_dataset_id
from supernas.errors import IdempotencyKeyReusedError, InvalidInputError, PayloadTooLargeError
from workers.datasets import dataset_fingerprint, parse_dataset, save_dataset
from workers.task_source import dataset_dir

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(npz|csv)$")


def _storage(request: Request) -> Storage:
    return request.app.state.storage


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"upload of {int(declared)} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", status_code=201, response_model=DatasetOut)
async def upload_dataset(
    request: Request,
    response: Response,
    filename: Annotated[str, Query(max_length=205, description="Name of the file: *.npz or *.csv")],
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> DatasetOut:
    """Upload a data set. ``.npz``: arrays ``x`` (N, ...) and ``y`` (N,); ``.csv``: a header row and a
    ``label`` column, every other column a numeric feature."""
    if not _FILENAME.match(filename):
        raise InvalidInputError(
            "filename must end in .npz or .csv and use only letters, digits, '.', '_' and '-'",
            ("query", "filename"),
        )
    storage = _storage(request)
    content = await _read_body(request, request.app.state.settings.max_upload_bytes)
    parsed = await to_thread.run_sync(parse_dataset, content, filename)
    key = scoped_idempotency_key(request, idempotency_key)
    if key is not None and (found := storage.dataset_by_key(key)) is not None:
        if (found.fingerprint, found.name) != (dataset_fingerprint(parsed), name or filename):
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idempotency_key!r} was used for data set {found.id} with other data"
            )
        response.status_code = 200
        return DatasetOut.build(found)
    dataset_id = new_dataset_id()
    root = request.app.state.settings.resolved_artifacts_dir
    await to_thread.run_sync(save_dataset, parsed, dataset_dir(root, dataset_id))
    record = storage.create_dataset(
        key,
        owner=principal_of(request).owner,
        id=dataset_id,
        name=name or filename,
        format=parsed.format,
        kind=parsed.kind,
        input_shape=tuple(parsed.input_shape),
        num_examples=len(parsed.y),
        num_classes=parsed.num_classes,
        label_names=tuple(parsed.label_names),
        fingerprint=dataset_fingerprint(parsed),
        size_bytes=len(content),
    )
    return DatasetOut.build(record)


@router.get("", response_model=DatasetPage)
def list_datasets(
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: str | None = None,
) -> DatasetPage:
    page = _storage(request).list_datasets(page_size, page_token, principal_of(request).owner_filter)
    return DatasetPage(
        items=[DatasetOut.build(r) for r in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, request: Request) -> DatasetOut:
    return DatasetOut.build(owned_dataset(request, dataset_id))

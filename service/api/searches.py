"""Routes of searches and their trials, Pareto front and model downloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse

from search_spaces.spec import SearchSpec
from service.api.schemas import (
    BestValue,
    ObjectiveOut,
    ParetoOut,
    SearchOut,
    SearchPage,
    TrialOut,
    TrialPage,
)
from service.dispatch import Dispatcher
from service.results import best_values, pareto_front
from service.spec_validation import resolve_search_spec
from service.storage import Storage
from supernas.errors import ConflictError, NotFoundError
from supernas.records import SearchRecord
from supernas.states import TrialState
from workers.export import MANIFEST_FILE, ONNX_FILE, TORCHSCRIPT_FILE

router = APIRouter(prefix="/api/v1/searches", tags=["searches"])

_SEARCH_ID = re.compile(r"^[0-9a-f]{32}$")
PageSize = Annotated[int, Query(ge=1, le=500)]
MODEL_FORMATS = {
    "torchscript": (TORCHSCRIPT_FILE, "application/octet-stream"),
    "onnx": (ONNX_FILE, "application/octet-stream"),
    "manifest": (MANIFEST_FILE, "application/json"),
}


def _storage(request: Request) -> Storage:
    return request.app.state.storage


def _checked_id(search_id: str) -> str:
    if not _SEARCH_ID.match(search_id):
        raise NotFoundError(f"no search with id {search_id!r}")
    return search_id


def _search_out(storage: Storage, record: SearchRecord) -> SearchOut:
    spec = SearchSpec.model_validate(record.spec)
    best = best_values(storage.all_trials(record.id, with_reports=False), spec.objectives)
    first_metric = spec.objectives[0].metric.value
    return SearchOut.build(
        record,
        storage.trial_counts(record.id),
        {m: BestValue(value=v, trial_number=n) for m, (v, n) in best.items()},
        best[first_metric][1] if first_metric in best else None,
    )


@router.post("", status_code=201, response_model=SearchOut)
def create_search(
    spec: SearchSpec,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> SearchOut:
    """Queue a new search. The same ``Idempotency-Key`` returns the first search (200) instead.

    Without ``supernet_id`` the search trains its own supernet, which is then listed under
    ``/api/v1/supernets`` and can be reused by later searches."""
    storage = _storage(request)
    spec = resolve_search_spec(spec, storage)
    supernet_spec = None if spec.supernet_id else spec.supernet_spec().model_dump(mode="json")
    record, created = storage.create_search(
        spec.model_dump(mode="json"), spec.name, idempotency_key, supernet_spec=supernet_spec
    )
    if not created:
        response.status_code = 200
    request.app.state.dispatcher.wake()
    return _search_out(storage, record)


@router.get("", response_model=SearchPage)
def list_searches(request: Request, page_size: PageSize = 50, page_token: str | None = None) -> SearchPage:
    storage = _storage(request)
    page = storage.list_searches(page_size, page_token)
    return SearchPage(
        items=[_search_out(storage, r) for r in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{search_id}", response_model=SearchOut)
def get_search(search_id: str, request: Request) -> SearchOut:
    storage = _storage(request)
    return _search_out(storage, storage.get_search(_checked_id(search_id)))


@router.post("/{search_id}/cancel", status_code=202, response_model=SearchOut)
def cancel_search(search_id: str, request: Request) -> SearchOut:
    """Cancel: running trials are stopped, every record is kept; the search ends ``canceled``."""
    storage = _storage(request)
    record = storage.request_cancel(_checked_id(search_id))
    dispatcher: Dispatcher = request.app.state.dispatcher
    dispatcher.cancel(search_id)
    return _search_out(storage, record)


@router.get("/{search_id}/trials", response_model=TrialPage)
def list_trials(
    search_id: str,
    request: Request,
    page_size: PageSize = 100,
    page_token: str | None = None,
    state: TrialState | None = None,
) -> TrialPage:
    page = _storage(request).list_trials(_checked_id(search_id), page_size, page_token, state)
    return TrialPage(
        items=[TrialOut.build(t) for t in page.items], next_page_token=page.next_page_token, total=page.total
    )


@router.get("/{search_id}/trials/{number}", response_model=TrialOut)
def get_trial(search_id: str, number: int, request: Request) -> TrialOut:
    """One trial with its learning curve (one report per fidelity)."""
    return TrialOut.build(_storage(request).get_trial(_checked_id(search_id), number), with_reports=True)


@router.get("/{search_id}/pareto", response_model=ParetoOut)
def get_pareto(search_id: str, request: Request) -> ParetoOut:
    """Non-dominated succeeded trials for the search's objectives."""
    storage = _storage(request)
    record = storage.get_search(_checked_id(search_id))
    spec = SearchSpec.model_validate(record.spec)
    front = pareto_front(storage.all_trials(record.id, with_reports=False), spec.objectives)
    return ParetoOut(
        search_id=record.id,
        objectives=[
            ObjectiveOut(metric=o.metric.value, direction=o.direction.value) for o in spec.objectives
        ],
        trials=[TrialOut.build(t) for t in front],
    )


@router.get("/{search_id}/trials/{number}/model")
def download_model(
    search_id: str,
    number: int,
    request: Request,
    format: Annotated[str, Query(pattern="^(torchscript|onnx|manifest)$")] = "torchscript",
) -> FileResponse:
    """The trial's sub-network as a standalone TorchScript or ONNX file (both verified against
    PyTorch before being offered), or its JSON manifest."""
    trial = _storage(request).get_trial(_checked_id(search_id), number)
    if trial.artifact_dir is None:
        why = trial.state_reason or "it has not finished"
        raise ConflictError(
            f"trial {number} of search {search_id} has no model (state {trial.state.value}: {why}); "
            "only trials that ran to the last fidelity are exported"
        )
    root: Path = request.app.state.settings.resolved_artifacts_dir
    filename, media_type = MODEL_FORMATS[format]
    path = (root / trial.artifact_dir / filename).resolve()  # stored relative to the root
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError(f"model file of trial {number} is missing from the artifact store")
    download_name = f"supernas-{search_id[:8]}-trial{number}-{filename}"
    return FileResponse(path, media_type=media_type, filename=download_name)

"""Routes of searches and their trials, Pareto front and model downloads."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import yaml
from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ValidationError

from search_spaces.spec import Budget, SearchSpec
from service.api.access import owned_search, scoped_idempotency_key, wait_for_wind_down
from service.api.schemas import (
    BestValue,
    ObjectiveOut,
    ParetoOut,
    Progress,
    SearchOut,
    SearchPage,
    TrialOut,
    TrialPage,
    ValidatedSpec,
)
from service.auth import principal_of
from service.dispatch import Dispatcher
from service.spec_validation import resolve_search_spec
from service.storage import Storage
from service.storage.trial_views import SORT_COLUMNS
from service.summaries import SearchSummary, SummaryCache, best_values
from supernas.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    MalformedInputError,
    NotFoundError,
    PayloadTooLargeError,
)
from supernas.objectives import Metric
from supernas.records import SearchRecord, TrialRecord
from supernas.states import TrialState
from workers.export import MANIFEST_FILE, ONNX_FILE, QUANTIZED_ONNX_FILE, TORCHSCRIPT_FILE
from workers.trial_checkpoints import search_artifacts

router = APIRouter(prefix="/api/v1/searches", tags=["searches"])

PageSize = Annotated[int, Query(ge=1, le=500)]
MAX_SPEC_BYTES = 1_000_000
MODEL_FORMATS = {
    "torchscript": (TORCHSCRIPT_FILE, "application/octet-stream"),
    "onnx": (ONNX_FILE, "application/octet-stream"),
    "onnx-quantized": (QUANTIZED_ONNX_FILE, "application/octet-stream"),
    "manifest": (MANIFEST_FILE, "application/json"),
}


def _storage(request: Request) -> Storage:
    return request.app.state.storage


BUDGET_STATES = ("succeeded", "pruned", "failed", "infeasible")
SORT_FIELDS = "|".join((*SORT_COLUMNS, *(m.value for m in Metric)))


def summary_of(request: Request, record: SearchRecord) -> tuple[SearchSpec, SearchSummary]:
    """The search's spec and its (cached) summary: trial outcomes, chart points, front."""
    spec = SearchSpec.model_validate(record.spec)
    cache: SummaryCache = request.app.state.summaries
    return spec, cache.get(record.id, spec, record.started_at)


def search_out(request: Request, record: SearchRecord) -> SearchOut:
    spec, summary = summary_of(request, record)
    outcomes = summary.outcomes
    best = best_values(summary.points, spec.objectives)
    first_metric = spec.objectives[0].metric.value
    counts = {state.value: 0 for state in TrialState}
    for trial in outcomes:
        counts[trial.state.value] += 1
    elapsed = None
    if record.started_at is not None:
        elapsed = ((record.finished_at or datetime.now(UTC)) - record.started_at).total_seconds()
    progress = Progress(
        trials_done=sum(counts[s] for s in BUDGET_STATES),
        max_trials=spec.budget.max_trials,
        elapsed_s=elapsed,
    )
    return SearchOut.build(
        record,
        counts,
        {m: BestValue(value=v, trial_number=n) for m, (v, n) in best.items()},
        best[first_metric][1] if first_metric in best else None,
        progress,
    )


def trial_out(request: Request, trial: TrialRecord, with_reports: bool = False) -> TrialOut:
    """A trial on the wire, with the model formats whose files exist in the artifact store."""
    formats = []
    if trial.artifact_dir is not None:
        root: Path = request.app.state.settings.resolved_artifacts_dir
        directory = (root / trial.artifact_dir).resolve()
        if directory.is_relative_to(root):
            formats = [name for name, (file, _) in MODEL_FORMATS.items() if (directory / file).is_file()]
    return TrialOut.build(trial, with_reports=with_reports, model_formats=formats)


@router.post("", status_code=201, response_model=SearchOut)
def create_search(
    spec: SearchSpec,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> SearchOut:
    """Queue a new search. The same ``Idempotency-Key`` with the same spec returns the first search
    (200) instead; with another spec it is refused (409 ``idempotency_key_reused``).

    Without ``supernet_id`` the search trains its own supernet, which is then listed under
    ``/api/v1/supernets`` and can be reused by later searches. A search naming a supernet that is
    still queued or training waits queued until it is ready."""
    storage = _storage(request)
    principal = principal_of(request)
    spec = resolve_search_spec(spec, storage, principal)
    supernet_spec = None if spec.supernet_id else spec.supernet_spec().model_dump(mode="json")
    record, created = storage.create_search(
        spec.model_dump(mode="json"),
        spec.name,
        scoped_idempotency_key(request, idempotency_key),
        supernet_spec=supernet_spec,
        owner=principal.owner,
    )
    if not created:
        if SearchSpec.model_validate(record.spec).model_dump(mode="json") != spec.model_dump(mode="json"):
            raise IdempotencyKeyReusedError(
                f"Idempotency-Key {idempotency_key!r} was used for search {record.id} with another spec"
            )
        response.status_code = 200
    request.app.state.dispatcher.wake()
    return search_out(request, record)


_SPEC_TEXT = {"schema": {"type": "string"}}  # longer than MAX_SPEC_BYTES: 413


@router.post(
    "/validate",
    response_model=ValidatedSpec,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": _SPEC_TEXT, "application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def validate_spec(request: Request) -> ValidatedSpec:
    """Check a spec written in YAML or JSON (JSON is YAML; send either content type) without creating
    anything: the normalised spec, or the same 400/422 problems that creating the search would give."""
    body = await request.body()
    if len(body) > MAX_SPEC_BYTES:
        raise PayloadTooLargeError(f"a spec is at most {MAX_SPEC_BYTES} bytes")
    try:
        document = yaml.safe_load(body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MalformedInputError(f"malformed YAML/JSON: {exc}".replace("\n", " ")) from exc
    if not isinstance(document, dict):
        raise InvalidInputError("a spec must be a mapping of fields, e.g. 'task: digits'", ("body",))
    try:
        spec = SearchSpec.model_validate(document)
    except ValidationError as exc:
        raise _BodyValidationError(exc) from exc
    spec = await to_thread.run_sync(resolve_search_spec, spec, _storage(request), principal_of(request))
    return ValidatedSpec(spec=spec.model_dump(mode="json"))


class _BodyValidationError(RequestValidationError):
    def __init__(self, exc: ValidationError) -> None:
        super().__init__([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


@router.get("", response_model=SearchPage)
def list_searches(
    request: Request,
    page_size: PageSize = 50,
    page_token: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
) -> SearchPage:
    storage = _storage(request)
    page = storage.list_searches(page_size, page_token, q, principal_of(request).owner_filter)
    return SearchPage(
        items=[search_out(request, r) for r in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{search_id}", response_model=SearchOut)
def get_search(search_id: str, request: Request) -> SearchOut:
    return search_out(request, owned_search(request, search_id))


@router.delete("/{search_id}", status_code=204)
def delete_search(search_id: str, request: Request) -> Response:
    """Delete an ended search: its record, trials, reports and files (models, checkpoints, Tune
    results). ``409`` until it has ended. A supernet it trained is kept."""
    record = owned_search(request, search_id)
    if record.state.is_terminal:
        wait_for_wind_down(request, "search", record.id)
    _storage(request).delete_search(record.id)
    for path in search_artifacts(request.app.state.settings.resolved_artifacts_dir, record.id):
        shutil.rmtree(path, ignore_errors=True)
    return Response(status_code=204)


@router.post("/{search_id}/cancel", status_code=202, response_model=SearchOut)
def cancel_search(search_id: str, request: Request) -> SearchOut:
    """Cancel: running trials are stopped, every record is kept; the search ends ``canceled``."""
    storage = _storage(request)
    record = storage.request_cancel(owned_search(request, search_id).id)
    dispatcher: Dispatcher = request.app.state.dispatcher
    dispatcher.cancel(search_id)
    return search_out(request, record)


class BudgetChange(BaseModel):
    """Fields to change; the others keep their values. ``null`` clears max_failed or max_duration_s."""

    model_config = {"extra": "forbid"}

    max_trials: int | None = None
    max_parallel: int | None = None
    max_failed: int | None = None
    max_duration_s: float | None = None
    max_retries: int | None = None  # applies to searches (re)started after the change


@router.patch("/{search_id}/budget", response_model=SearchOut)
def change_budget(search_id: str, change: BudgetChange, request: Request) -> SearchOut:
    """Change a queued, running or paused search's budget; a running search picks it up within
    seconds. Lowering ``max_parallel`` lets running trials finish; lowering ``max_trials`` below the
    trials already run ends the search once the running ones finish. Finished trials are never
    removed."""
    record = owned_search(request, search_id)
    current = SearchSpec.model_validate(record.spec).budget.model_dump(mode="json")
    updates = change.model_dump(mode="json", exclude_unset=True)
    for required in ("max_trials", "max_parallel", "max_retries"):
        if updates.get(required, 0) is None:
            raise InvalidInputError(f"{required} cannot be null", ("body", required))
    try:
        budget = Budget.model_validate(current | updates)
    except ValidationError as exc:
        raise _BodyValidationError(exc) from exc
    storage = _storage(request)
    updated = storage.update_budget(record.id, budget.model_dump(mode="json"))
    request.app.state.dispatcher.changed(record.id)
    return search_out(request, updated)


@router.post("/{search_id}/pause", status_code=202, response_model=SearchOut)
def pause_search(search_id: str, request: Request) -> SearchOut:
    """Pause: no new trials start, running ones pause after their current step, then ``paused``; a
    queued search pauses at once. Resuming the search resumes its paused trials from their checkpoints."""
    record = _storage(request).request_pause(owned_search(request, search_id).id)
    request.app.state.dispatcher.changed(record.id)
    return search_out(request, record)


@router.post("/{search_id}/resume", status_code=202, response_model=SearchOut)
def resume_search(search_id: str, request: Request) -> SearchOut:
    """Resume a paused search (queued again; it continues from its stored trials)."""
    storage = _storage(request)
    record = storage.request_resume(owned_search(request, search_id).id)
    request.app.state.dispatcher.wake()
    return search_out(request, record)


@router.post("/{search_id}/stop", status_code=202, response_model=SearchOut)
def stop_search(search_id: str, request: Request) -> SearchOut:
    """Stop: no new trials start, running ones finish, then the search ends ``succeeded``."""
    record = _storage(request).request_stop(owned_search(request, search_id).id)
    request.app.state.dispatcher.changed(record.id)
    return search_out(request, record)


@router.get("/{search_id}/trials", response_model=TrialPage)
def list_trials(
    search_id: str,
    request: Request,
    page_size: PageSize = 100,
    page_token: str | None = None,
    state: TrialState | None = None,
    sort: Annotated[str, Query(pattern=f"^({SORT_FIELDS})$")] = "number",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> TrialPage:
    """Trials sorted by number (keyset-paged), or by state, fidelity or a metric (trials without a
    value for it come last)."""
    storage = _storage(request)
    if sort == "number" and order == "asc":
        page = storage.list_trials(owned_search(request, search_id).id, page_size, page_token, state)
    else:
        page = storage.sorted_trials(
            owned_search(request, search_id).id, page_size, page_token, state, sort, order == "desc"
        )
    return TrialPage(
        items=[trial_out(request, t) for t in page.items],
        next_page_token=page.next_page_token,
        total=page.total,
    )


@router.get("/{search_id}/trials/{number}", response_model=TrialOut)
def get_trial(search_id: str, number: int, request: Request) -> TrialOut:
    """One trial with its learning curve (one report per fidelity)."""
    return trial_out(
        request, _storage(request).get_trial(owned_search(request, search_id).id, number), with_reports=True
    )


@router.get("/{search_id}/pareto", response_model=ParetoOut)
def get_pareto(search_id: str, request: Request) -> ParetoOut:
    """Non-dominated succeeded trials for the search's objectives."""
    storage = _storage(request)
    record = owned_search(request, search_id)
    spec, summary = summary_of(request, record)
    front = [p for p, on in zip(summary.points, summary.on_front, strict=True) if on]
    return ParetoOut(
        search_id=record.id,
        objectives=[
            ObjectiveOut(metric=o.metric.value, direction=o.direction.value) for o in spec.objectives
        ],
        trials=[
            trial_out(request, t) for t in storage.trials_by_number(record.id, [t.number for t in front])
        ],
    )


@router.get("/{search_id}/trials/{number}/model")
def download_model(
    search_id: str,
    number: int,
    request: Request,
    format: Annotated[str, Query(pattern="^(torchscript|onnx|onnx-quantized|manifest)$")] = "torchscript",
) -> FileResponse:
    """The trial's sub-network as a standalone TorchScript or ONNX file (both verified against
    PyTorch before being offered), its quantized ONNX model (``onnx-quantized``, searches with
    ``quantization`` whose policy quantizes some layer; it runs in stock ONNX Runtime), or its JSON
    manifest (which holds the policy and the quantized model's measured numbers)."""
    trial = _storage(request).get_trial(owned_search(request, search_id).id, number)
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

"""Dashboard views of a search, aggregated on the server: chart points, hypervolume over time,
learning curves, scheduler decisions, and live updates (a change feed with an ``after`` cursor, also
as server-sent events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from search_spaces.spec import SearchSpec
from service.api.access import owned_search
from service.api.schemas import (
    ChangesOut,
    CurveOut,
    CurvesOut,
    DecisionOut,
    DecisionPage,
    HypervolumeOut,
    HypervolumeStep,
    ObjectiveOut,
    PointsOut,
)
from service.api.searches import search_out, summary_of, trial_out
from service.storage import Storage
from service.storage.trial_views import ChangeCursor
from service.summaries import (
    CONFIGS_FOR_ALL_UP_TO,
    asha_rungs,
    front_mask,
    learning_curve,
    trial_decisions,
)
from supernas.objectives import Metric
from supernas.records import SearchRecord

router = APIRouter(prefix="/api/v1/searches", tags=["dashboard"])
CHANGES_PER_CALL = 500
EVENT_POLL_S = 1.0  # how often the event stream looks for changes
HEARTBEAT_S = 15.0


def _storage(request: Request) -> Storage:
    return request.app.state.storage


def _objectives(spec: SearchSpec) -> list[ObjectiveOut]:
    return [ObjectiveOut(metric=o.metric.value, direction=o.direction.value) for o in spec.objectives]


@router.get("/{search_id}/points", response_model=PointsOut)
def get_points(
    search_id: str,
    request: Request,
    before: Annotated[datetime | None, Query(description="Only trials finished before this time")] = None,
) -> PointsOut:
    """Every succeeded or infeasible trial's objective values, column by column, with the Pareto front
    of the feasible ones (as it was at ``before``, if given)."""
    storage = _storage(request)
    record = owned_search(request, search_id)
    _, cursor, _ = storage.trial_changes(record.id, None, 0)
    spec, summary = summary_of(request, record)
    finished = [p.finished_s for p in summary.points if p.finished_s is not None]
    points, on_front = summary.points, summary.on_front
    if before is not None and record.started_at is not None:
        limit_s = (before - record.started_at).total_seconds()
        points = [p for p in points if p.finished_s is not None and p.finished_s < limit_s]
        on_front = front_mask(points, spec.objectives)
    with_config = [
        p.number
        for p, front in zip(points, on_front, strict=True)
        if front or len(points) <= CONFIGS_FOR_ALL_UP_TO
    ]
    configs = storage.trial_configs(record.id, with_config)
    return PointsOut(
        search_id=record.id,
        objectives=_objectives(spec),
        started_at=record.started_at,
        total=len(points),
        numbers=[p.number for p in points],
        states=[p.state.value for p in points],
        values=[list(p.values) for p in points],
        on_front=on_front.tolist(),
        feasible=[p.state.value == "succeeded" for p in points],
        finished_s=[p.finished_s for p in points],
        reasons=[p.reason for p in points],
        configs=[configs.get(p.number) for p in points],
        first_finished_s=min(finished, default=None),
        last_finished_s=max(finished, default=None),
        cursor=cursor.encode(),
    )


@router.get("/{search_id}/hypervolume", response_model=HypervolumeOut)
def get_hypervolume(search_id: str, request: Request) -> HypervolumeOut:
    """Hypervolume of the feasible front after each trial that raised it, in finishing order; the
    reference point is each objective's worst feasible value widened by 10% of its range."""
    record = owned_search(request, search_id)
    spec, summary = summary_of(request, record)
    reference, series = summary.hypervolume()
    return HypervolumeOut(
        objectives=_objectives(spec),
        reference_point=reference,
        series=[HypervolumeStep(**step) for step in series],
    )


@router.get("/{search_id}/curves", response_model=CurvesOut)
def get_curves(
    search_id: str,
    request: Request,
    metric: Metric | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CurvesOut:
    """Learning curves (metric per fidelity) of the front's trials, then of the most recently changed."""
    storage = _storage(request)
    record = owned_search(request, search_id)
    spec, summary = summary_of(request, record)
    name = (metric or spec.objectives[0].metric).value
    front = {p.number for p, on in zip(summary.points, summary.on_front, strict=True) if on}
    recent = sorted(summary.outcomes, key=lambda t: (t.updated_at, t.number), reverse=True)[:limit]
    numbers = list(dict.fromkeys([*sorted(front), *(t.number for t in recent)]))[:limit]
    trials = storage.trials_by_number(record.id, numbers, with_reports=True)
    return CurvesOut(
        metric=name,
        trials=[
            CurveOut(
                number=t.number, state=t.state.value, on_front=t.number in front, **learning_curve(t, name)
            )
            for t in trials
        ],
    )


@router.get("/{search_id}/decisions", response_model=DecisionPage)
def get_decisions(
    search_id: str,
    request: Request,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
    page_token: str | None = None,
) -> DecisionPage:
    """The scheduler's decisions (promoted at a rung, stopped, completed, failed...), with reasons,
    for the most recently changed trials first; a page covers ``page_size`` trials."""
    storage = _storage(request)
    record = owned_search(request, search_id)
    rungs = asha_rungs(SearchSpec.model_validate(record.spec))
    page = storage.recently_updated_trials(record.id, page_size, page_token)
    items = [DecisionOut(**d) for t in page.items for d in trial_decisions(t, rungs)]
    return DecisionPage(items=items, next_page_token=page.next_page_token, total=page.total)


def _changes(request: Request, record: SearchRecord, after: str | None) -> ChangesOut:
    cursor = ChangeCursor.decode(after) if after is not None else None
    trials, new_cursor, more = _storage(request).trial_changes(record.id, cursor, CHANGES_PER_CALL)
    return ChangesOut(
        search=search_out(request, record),
        trials=[trial_out(request, t) for t in trials],
        cursor=new_cursor.encode(),
        has_more=more,
    )


@router.get("/{search_id}/changes", response_model=ChangesOut)
def get_changes(
    search_id: str,
    request: Request,
    after: Annotated[str | None, Query(max_length=200, description="Cursor from /points or /changes")] = None,
) -> ChangesOut:
    """Trials created or changed since ``after`` (at most 500; call again while ``has_more``), with the
    search itself. Without ``after``: only the current cursor."""
    return _changes(request, owned_search(request, search_id), after)


@router.get(
    "/{search_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of change events"}},
)
async def stream_events(
    search_id: str,
    request: Request,
    after: Annotated[str | None, Query(max_length=200, description="Cursor to start after")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=200)] = None,
) -> StreamingResponse:
    """Server-sent events: a ``changes`` event (the body of ``/changes``, its cursor as the event id)
    whenever trials or the search change, a comment every 15 s to keep the connection open, and an
    ``end`` event once the search has ended. A reconnecting client resumes from ``Last-Event-ID``."""
    record = await to_thread.run_sync(owned_search, request, search_id)
    start = last_event_id or after
    if start is not None:
        ChangeCursor.decode(start)  # a bad cursor is a 422 before the stream starts
    return StreamingResponse(_event_stream(request, record.id, start), media_type="text/event-stream")


def _signature(record: SearchRecord) -> tuple[object, ...]:
    """What an event stream's client sees of the search itself (besides its trials)."""
    return (
        record.state,
        record.state_reason,
        record.requested_action,
        record.cancel_requested,
        str(record.spec),
    )


async def _event_stream(request: Request, search_id: str, cursor: str | None) -> AsyncIterator[str]:
    """Polls once a second with two cheap reads (the search row and the trials changed after the
    cursor); the full ``changes`` body is built only when something changed."""
    storage = _storage(request)
    seen, quiet_s = None, 0.0
    while not await request.is_disconnected():
        record = await to_thread.run_sync(storage.get_search, search_id)
        after = ChangeCursor.decode(cursor) if cursor is not None else None
        trials, new_cursor, more = await to_thread.run_sync(
            storage.trial_changes, search_id, after, CHANGES_PER_CALL
        )
        if trials or _signature(record) != seen or cursor is None:
            search = await to_thread.run_sync(search_out, request, record)
            changes = ChangesOut(
                search=search,
                trials=[trial_out(request, t) for t in trials],
                cursor=new_cursor.encode(),
                has_more=more,
            )
            yield f"id: {changes.cursor}\nevent: changes\ndata: {changes.model_dump_json()}\n\n"
            cursor, seen, quiet_s = changes.cursor, _signature(record), 0.0
            if more:
                continue
        if record.state.is_terminal and not more:
            yield f"id: {cursor}\nevent: end\ndata: {json.dumps({'state': record.state.value})}\n\n"
            return
        if quiet_s >= HEARTBEAT_S:
            yield ": keep-alive\n\n"
            quiet_s = 0.0
        await asyncio.sleep(EVENT_POLL_S)
        quiet_s += EVENT_POLL_S

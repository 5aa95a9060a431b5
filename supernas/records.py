"""Frozen records that cross layer boundaries (ORM rows never leave storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from supernas.states import SearchState, TrialState

JSONDict = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class SearchRecord:
    id: str
    name: str
    spec: JSONDict
    state: SearchState
    state_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = False
    attempt: int = 0


@dataclass(frozen=True)
class TrialReport:
    """One intermediate result of a trial at a given fidelity (a point of its learning curve)."""

    step: int
    fidelity: float
    metrics: JSONDict
    created_at: datetime


@dataclass(frozen=True)
class TrialRecord:
    search_id: str
    number: int
    state: TrialState
    config: JSONDict
    metrics: JSONDict
    fidelity: float | None
    state_reason: str | None
    artifact_dir: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reports: tuple[TrialReport, ...] = field(default_factory=tuple)
    suggestion: JSONDict | None = None  # what the strategy predicted when it chose this config


@dataclass(frozen=True)
class Observation:
    """What a strategy sees of a past trial: its config, final state, fidelity and metrics."""

    number: int
    config: JSONDict
    state: TrialState
    metrics: JSONDict
    fidelity: float | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is opaque and None on the last page."""

    items: list[T]
    next_page_token: str | None
    total: int

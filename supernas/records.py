"""Frozen records that cross layer boundaries (ORM rows never leave storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from supernas.states import SearchState, SupernetState, TrialState

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
    supernet_id: str | None = None
    requested_action: str | None = None  # "pause" or "stop" while the running trials finish
    owner: str = "local"
    # fidelity.supernet_epochs on a named supernet: may start while a stand-alone job or another
    # search trains it
    starts_on_training_supernet: bool = False


@dataclass(frozen=True)
class SupernetRecord:
    """A weight-sharing supernet: trained on its own or implicitly by the search ``search_id``."""

    id: str
    name: str
    spec: JSONDict  # a SupernetSpec: task, space, training, seed
    state: SupernetState
    state_reason: str | None
    family: str
    task: str
    data_fingerprint: str | None
    summary: JSONDict | None  # what training reported: config, history, metrics
    search_id: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt: int = 0
    owner: str = "local"


@dataclass(frozen=True)
class DatasetRecord:
    """An uploaded data set; its arrays live in the artifact store, never in the database."""

    id: str
    name: str
    format: str
    kind: str
    input_shape: tuple[int, ...]
    num_examples: int
    num_classes: int
    label_names: tuple[str, ...]
    fingerprint: str
    size_bytes: int
    created_at: datetime
    owner: str = "local"


@dataclass(frozen=True)
class TokenRecord:
    """An API token's public side; its secret is shown once at creation and stored only hashed."""

    id: str
    owner: str
    description: str
    is_admin: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


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
    updated_at: datetime | None = None  # last change of state, metrics or reports
    retries: tuple[JSONDict, ...] = ()  # each retry after a failure or lost worker: at, reason, attempt
    # each scheduler decision (continue, pause, resume, stop...): at, action, fidelity, reason, and
    # where the scheduler has them rung, predicted ({fidelity, mean, std}), acquisition
    decisions: tuple[JSONDict, ...] = ()


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

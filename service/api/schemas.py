"""Wire schemas of the API's responses, built from frozen records.

Non-finite metric values (NaN, inf) are sent as the strings "NaN", "Infinity", "-Infinity",
since JSON has no literal for them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from supernas.records import DatasetRecord, SearchRecord, SupernetRecord, TrialRecord, TrialReport


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class BestValue(BaseModel):
    value: float
    trial_number: int


class Progress(BaseModel):
    trials_done: int  # trials that used budget: succeeded, pruned, failed, infeasible
    max_trials: int
    elapsed_s: float | None  # since the search started, until it finished (or now)


class ObjectiveOut(BaseModel):
    metric: str
    direction: str


class SearchOut(BaseModel):
    id: str
    name: str
    state: str
    state_reason: str | None
    cancel_requested: bool
    requested_action: str | None  # "pause" or "stop" while the running trials pause or finish
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    supernet_id: str | None
    trial_counts: dict[str, int]
    best: dict[str, BestValue]
    best_trial: int | None
    objectives: list[ObjectiveOut]
    progress: Progress

    @classmethod
    def build(
        cls,
        record: SearchRecord,
        counts: dict[str, int],
        best: dict[str, BestValue],
        best_trial: int | None,
        progress: Progress,
    ) -> SearchOut:
        objectives = [ObjectiveOut(**o) for o in record.spec.get("objectives", [])]
        return cls(
            id=record.id,
            name=record.name,
            state=record.state.value,
            state_reason=record.state_reason,
            cancel_requested=record.cancel_requested,
            requested_action=record.requested_action,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            spec=record.spec,
            supernet_id=record.supernet_id,
            trial_counts=counts,
            best=best,
            best_trial=best_trial,
            objectives=objectives,
            progress=progress,
        )


class ReportOut(BaseModel):
    step: int
    fidelity: float
    metrics: dict[str, Any]
    created_at: datetime

    @classmethod
    def build(cls, report: TrialReport) -> ReportOut:
        return cls(
            step=report.step,
            fidelity=report.fidelity,
            metrics=json_safe(report.metrics),
            created_at=report.created_at,
        )


class TrialOut(BaseModel):
    number: int
    state: str
    state_reason: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    fidelity: float | None
    has_model: bool
    model_formats: list[str]  # the download formats whose files exist
    suggestion: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    retries: list[dict[str, Any]]  # each retry after a failure or a lost worker: at, reason, attempt
    decisions: list[dict[str, Any]] = Field(
        description=(
            "Each decision of the multi-fidelity scheduler about the trial, oldest first: at, action "
            "(continue, pause, resume, stop...), fidelity, reason, and where the scheduler has them "
            "rung, predicted ({fidelity, mean, std}) and acquisition"
        )
    )
    reports: list[ReportOut] | None = None

    @classmethod
    def build(
        cls, trial: TrialRecord, with_reports: bool = False, model_formats: list[str] | None = None
    ) -> TrialOut:
        return cls(
            number=trial.number,
            state=trial.state.value,
            state_reason=trial.state_reason,
            config=trial.config,
            metrics=json_safe(trial.metrics),
            fidelity=trial.fidelity,
            has_model=trial.artifact_dir is not None,
            model_formats=model_formats or [],
            suggestion=json_safe(trial.suggestion),
            created_at=trial.created_at,
            started_at=trial.started_at,
            finished_at=trial.finished_at,
            updated_at=trial.updated_at,
            retries=[dict(retry) for retry in trial.retries],
            decisions=[json_safe(decision) for decision in trial.decisions],
            reports=[ReportOut.build(r) for r in trial.reports] if with_reports else None,
        )


class SearchPage(BaseModel):
    items: list[SearchOut]
    next_page_token: str | None
    total: int


class TrialPage(BaseModel):
    items: list[TrialOut]
    next_page_token: str | None
    total: int


class ParetoOut(BaseModel):
    search_id: str
    objectives: list[ObjectiveOut]
    trials: list[TrialOut]


class PointsOut(BaseModel):
    """The points of a search's Pareto chart, column by column (compact at 10,000 trials)."""

    search_id: str
    objectives: list[ObjectiveOut]
    started_at: datetime | None
    total: int
    numbers: list[int]
    states: list[str]
    values: list[list[float]]
    on_front: list[bool]
    feasible: list[bool]
    finished_s: list[float | None]
    reasons: list[str | None]
    configs: list[dict[str, Any] | None]
    first_finished_s: float | None
    last_finished_s: float | None
    cursor: str


class HypervolumeStep(BaseModel):
    trial_number: int
    finished_s: float | None
    hypervolume: float


class HypervolumeOut(BaseModel):
    objectives: list[ObjectiveOut]
    reference_point: list[float] | None
    series: list[HypervolumeStep]


class CurveOut(BaseModel):
    number: int
    state: str
    on_front: bool
    fidelities: list[float]
    values: list[float | None]


class CurvesOut(BaseModel):
    metric: str
    trials: list[CurveOut]


class DecisionOut(BaseModel):
    trial_number: int
    decision: str  # promoted, stopped, paused, completed, failed, lost, canceled
    fidelity: float | None
    reason: str | None
    at: datetime | None


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    next_page_token: str | None
    total: int  # trials the decisions are about


class ChangesOut(BaseModel):
    search: SearchOut
    trials: list[TrialOut]
    cursor: str
    has_more: bool


class ValidatedSpec(BaseModel):
    spec: dict[str, Any]


# summary entries a supernet shows as its metrics
SUPERNET_FACTS = (
    "largest_val_accuracy",
    "smallest_val_accuracy",
    "chance_accuracy",
    "epochs",
    "torch_threads",
)


class SupernetOut(BaseModel):
    id: str
    name: str
    state: str
    state_reason: str | None
    family: str
    task: str
    data_fingerprint: str | None
    spec: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    snapshot_epochs: list[int]
    search_id: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def build(cls, record: SupernetRecord) -> SupernetOut:
        summary = record.summary or {}
        metrics = {k: summary[k] for k in SUPERNET_FACTS if k in summary}
        return cls(
            id=record.id,
            name=record.name,
            state=record.state.value,
            state_reason=record.state_reason,
            family=record.family,
            task=record.task,
            data_fingerprint=record.data_fingerprint,
            spec=record.spec,
            training=record.spec.get("training", {}),
            metrics=json_safe(metrics),
            history=json_safe(summary.get("history", [])),
            snapshot_epochs=summary.get("snapshot_epochs", []),
            search_id=record.search_id,
            created_at=record.created_at,
            finished_at=record.finished_at,
        )


class SupernetPage(BaseModel):
    items: list[SupernetOut]
    next_page_token: str | None
    total: int


class DatasetOut(BaseModel):
    id: str
    name: str
    format: str
    kind: str
    input_shape: list[int]
    num_examples: int
    num_classes: int
    label_names: list[str]
    fingerprint: str
    size_bytes: int
    created_at: datetime

    @classmethod
    def build(cls, record: DatasetRecord) -> DatasetOut:
        return cls(
            id=record.id,
            name=record.name,
            format=record.format,
            kind=record.kind,
            input_shape=list(record.input_shape),
            num_examples=record.num_examples,
            num_classes=record.num_classes,
            label_names=list(record.label_names),
            fingerprint=record.fingerprint,
            size_bytes=record.size_bytes,
            created_at=record.created_at,
        )


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next_page_token: str | None
    total: int

"""Server-side aggregation for the dashboard: the points of a Pareto chart, hypervolume over time,
learning curves and scheduler decisions, computed from light trial rows so that a search with
10,000 trials is summarised in well under a second.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from search_spaces.spec import Objective, SearchSpec
from supernas.objectives import is_finite_number
from supernas.records import TrialRecord
from supernas.states import TrialState
from surrogates.hypervolume import hypervolume_growth
from surrogates.pareto import best_index, non_dominated_mask, to_minimization

PLOTTED_STATES = (TrialState.SUCCEEDED, TrialState.INFEASIBLE)
CONFIGS_FOR_ALL_UP_TO = 2000  # beyond this many points, only the front's configs are sent
REFERENCE_MARGIN = 0.1  # of each objective's range, beyond its worst feasible value


@dataclass(frozen=True)
class PlottedPoint:
    number: int
    state: TrialState
    values: tuple[float, ...]
    finished_s: float | None
    reason: str | None


def plotted_points(
    outcomes: Sequence[Any], objectives: Sequence[Objective], started: datetime | None
) -> list[PlottedPoint]:
    """Succeeded and infeasible trials with a finite value for every objective, by trial number."""
    metrics = [o.metric.value for o in objectives]
    points = []
    for trial in outcomes:
        if trial.state not in PLOTTED_STATES or not all(
            is_finite_number(trial.metrics.get(m)) for m in metrics
        ):
            continue
        finished_s = None
        if trial.finished_at is not None and started is not None:
            finished_s = max(0.0, (trial.finished_at - started).total_seconds())
        reason = trial.state_reason if trial.state is TrialState.INFEASIBLE else None
        points.append(
            PlottedPoint(
                trial.number, trial.state, tuple(float(trial.metrics[m]) for m in metrics), finished_s, reason
            )
        )
    return points


def front_mask(points: Sequence[PlottedPoint], objectives: Sequence[Objective]) -> np.ndarray:
    """Which points are on the Pareto front of the feasible (succeeded) points."""
    mask = np.zeros(len(points), dtype=bool)
    feasible = [i for i, p in enumerate(points) if p.state is TrialState.SUCCEEDED]
    if feasible:
        values = np.array([points[i].values for i in feasible])  # (F, M)
        mask[np.array(feasible)[non_dominated_mask(values, [o.direction for o in objectives])]] = True
    return mask


def best_values(
    points: Sequence[PlottedPoint], objectives: Sequence[Objective]
) -> dict[str, tuple[float, int]]:
    """metric -> (best value, trial number) among the feasible (succeeded) points: a trial with a
    non-finite objective value is not plotted, so it never wins "best". Trials that tie on the best
    value are told apart by the other objectives in order, so the winner is never dominated (on a
    small validation split, several architectures can share the best accuracy)."""
    feasible = [p for p in points if p.state is TrialState.SUCCEEDED]
    directions = [o.direction for o in objectives]
    best: dict[str, tuple[float, int]] = {}
    for i, objective in enumerate(objectives):
        index = best_index([p.values[i] for p in feasible], objective.direction)
        if index is None:
            continue
        order = [i, *(k for k in range(len(objectives)) if k != i)]
        tied = [p for p in feasible if p.values[i] == feasible[index].values[i]]
        costs = to_minimization(np.array([p.values for p in tied]), directions)[:, order]  # (T, M)
        winner = tied[min(range(len(tied)), key=lambda j: tuple(costs[j]))]
        best[objective.metric.value] = (winner.values[i], winner.number)
    return best


def reference_point(points: Sequence[PlottedPoint], objectives: Sequence[Objective]) -> list[float] | None:
    """The worst feasible value of each objective, widened by REFERENCE_MARGIN of its range
    (or of its magnitude when all values are equal); None without feasible points."""
    feasible = np.array([p.values for p in points if p.state is TrialState.SUCCEEDED])  # (F, M)
    if len(feasible) == 0:
        return None
    reference = []
    for column, objective in zip(feasible.T, objectives, strict=True):
        spread = float(column.max() - column.min()) or max(abs(float(column.max())), 1.0)
        if objective.direction.value == "maximize":
            reference.append(float(column.min()) - REFERENCE_MARGIN * spread)
        else:
            reference.append(float(column.max()) + REFERENCE_MARGIN * spread)
    return reference


def hypervolume_series(
    points: Sequence[PlottedPoint], objectives: Sequence[Objective]
) -> tuple[list[float] | None, list[dict[str, Any]]]:
    """The reference point and one entry per feasible trial that raised the hypervolume, in the order
    the trials finished."""
    reference = reference_point(points, objectives)
    if reference is None:
        return None, []
    feasible = [p for p in points if p.state is TrialState.SUCCEEDED]
    feasible.sort(key=lambda p: (p.finished_s if p.finished_s is not None else float("inf"), p.number))
    directions = [o.direction for o in objectives]
    costs = to_minimization(np.array([p.values for p in feasible]), directions)  # (F, M)
    ref_costs = to_minimization(np.array([reference]), directions)[0]
    curve = hypervolume_growth(costs, ref_costs)
    series, previous = [], 0.0
    for point, volume in zip(feasible, curve, strict=True):
        if volume > previous:
            series.append(
                {"trial_number": point.number, "finished_s": point.finished_s, "hypervolume": volume}
            )
            previous = volume
    return reference, series


@dataclass(frozen=True)
class SearchSummary:
    """A search's light trial rows, its plotted points and which of them are on the front."""

    outcomes: list[Any]
    points: list[PlottedPoint]
    on_front: np.ndarray  # (len(points),) bool
    objectives: tuple[Objective, ...]
    _memo: dict[str, Any] = field(default_factory=dict, compare=False)

    def hypervolume(self) -> tuple[list[float] | None, list[dict[str, Any]]]:
        """``hypervolume_series`` of the points, computed once per summary."""
        if "hypervolume" not in self._memo:
            self._memo["hypervolume"] = hypervolume_series(self.points, self.objectives)
        return self._memo["hypervolume"]


class SummaryCache:
    """The latest summary of the most recently viewed searches, rebuilt when a trial changed
    (checked through ``Storage.trials_stamp``), so that a dashboard's burst of requests and its
    polling read the trials once instead of once per request."""

    def __init__(self, storage: Any, size: int = 8) -> None:
        self._storage = storage
        self._size = size
        self._entries: OrderedDict[str, tuple[Any, SearchSummary]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, search_id: str, spec: SearchSpec, started: datetime | None) -> SearchSummary:
        stamp = (self._storage.trials_stamp(search_id), started)
        with self._lock:
            entry = self._entries.get(search_id)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(search_id)
                return entry[1]
        outcomes = self._storage.trial_outcomes(search_id)
        points = plotted_points(outcomes, spec.objectives, started)
        summary = SearchSummary(outcomes, points, front_mask(points, spec.objectives), tuple(spec.objectives))
        with self._lock:
            self._entries[search_id] = (stamp, summary)
            self._entries.move_to_end(search_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return summary


def learning_curve(trial: TrialRecord, metric: str) -> dict[str, Any]:
    fidelities = [r.fidelity for r in trial.reports]
    values = [float(v) if is_finite_number(v := r.metrics.get(metric)) else None for r in trial.reports]
    return {"fidelities": fidelities, "values": values}


def asha_rungs(spec: SearchSpec) -> list[int]:
    """Reports (training iterations) at which ASHA decides to promote or stop a trial (to show the
    decisions of searches run before decisions were recorded with their trials)."""
    if spec.scheduler.type != "asha":
        return []
    max_t = spec.max_fidelity + 1
    rungs, rung = [], float(spec.scheduler.grace_period)
    while rung < max_t:
        rungs.append(int(rung))
        rung *= spec.scheduler.reduction_factor
    return rungs


_FINAL_DECISIONS = {
    TrialState.SUCCEEDED: "completed",
    TrialState.INFEASIBLE: "completed",
    TrialState.PRUNED: "stopped",
    TrialState.FAILED: "failed",
    TrialState.LOST: "lost",
    TrialState.CANCELED: "canceled",
}


_ACTION_WORDS = {
    "promote": "promoted",
    "stop": "stopped",
    "pause": "paused",
    "resume": "resumed",
    "start": "started",
    "continue": "continued",
}


def trial_decisions(trial: TrialRecord, rungs: Sequence[int]) -> list[dict[str, Any]]:
    """The scheduler's decisions about one trial, newest first, then how it ended (with its reason).

    The decisions the scheduler recorded with the trial; for trials of searches run before
    decisions were recorded, a promotion at each ASHA rung (``rungs``) the trial passed."""
    decisions = [
        {
            "trial_number": trial.number,
            "decision": _ACTION_WORDS.get(str(d.get("action")), str(d.get("action"))),
            "fidelity": d.get("fidelity"),
            "reason": d.get("reason"),
            "at": d.get("at"),
        }
        for d in trial.decisions
    ]
    for rung in rungs if not trial.decisions else ():
        at_rung = next((r for r in trial.reports if r.step == rung), None)
        beyond = next((r for r in trial.reports if r.step > rung), None)
        if at_rung is not None and beyond is not None:
            decisions.append(
                {
                    "trial_number": trial.number,
                    "decision": "promoted",
                    "fidelity": at_rung.fidelity,
                    "reason": f"passed the rung at report {rung}",
                    "at": beyond.created_at,
                }
            )
    stopped_by_scheduler = bool(trial.decisions) and trial.decisions[-1].get("action") == "stop"
    if trial.state in _FINAL_DECISIONS and not (trial.state is TrialState.PRUNED and stopped_by_scheduler):
        decisions.append(
            {
                "trial_number": trial.number,
                "decision": _FINAL_DECISIONS[trial.state],
                "fidelity": trial.fidelity,
                "reason": trial.state_reason,
                "at": trial.finished_at or trial.updated_at,
            }
        )
    return decisions[::-1]

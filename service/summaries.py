"""Server-side aggregation for the dashboard: the points of a Pareto chart, hypervolume over time,
learning curves and scheduler decisions, computed from light trial rows so that a search with
10,000 trials is summarised in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from search_spaces.spec import Objective, SearchSpec
from supernas.objectives import is_finite_number
from supernas.records import TrialRecord
from supernas.states import TrialState
from surrogates.hypervolume import hypervolume_growth
from surrogates.pareto import non_dominated_mask, to_minimization

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


def learning_curve(trial: TrialRecord, metric: str) -> dict[str, Any]:
    fidelities = [r.fidelity for r in trial.reports]
    values = [float(v) if is_finite_number(v := r.metrics.get(metric)) else None for r in trial.reports]
    return {"fidelities": fidelities, "values": values}


def asha_rungs(spec: SearchSpec) -> list[int]:
    """Reports (training iterations) at which ASHA decides to promote or stop a trial."""
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


def trial_decisions(trial: TrialRecord, rungs: Sequence[int]) -> list[dict[str, Any]]:
    """The scheduler's decisions about one trial, newest first: a promotion at each rung it passed,
    then how it ended (with its reason)."""
    decisions = []
    for rung in rungs:
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
    if trial.state in _FINAL_DECISIONS:
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

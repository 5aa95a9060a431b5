"""Read-side summaries of a search: best values per objective and the Pareto front of its trials.

Only trials that ran to the last fidelity (``succeeded``) with a finite value for every objective
compete: a trial whose accuracy came out NaN is broken, so its small size must not win "best params".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from search_spaces.spec import Objective
from supernas.objectives import is_finite_number
from supernas.states import TrialState
from surrogates.pareto import best_index, non_dominated_mask


class Outcome(Protocol):
    """What these summaries read of a trial (a TrialRecord or a light TrialOutcome)."""

    @property
    def number(self) -> int: ...
    @property
    def state(self) -> TrialState: ...
    @property
    def metrics(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=Outcome)


def _competing(trials: Sequence[T], objectives: Sequence[Objective]) -> list[T]:
    metrics = [o.metric.value for o in objectives]
    return [
        t
        for t in trials
        if t.state == TrialState.SUCCEEDED and all(is_finite_number(t.metrics.get(m)) for m in metrics)
    ]


def best_values(trials: Sequence[Outcome], objectives: Sequence[Objective]) -> dict[str, tuple[float, int]]:
    """metric -> (best finite value, trial number) among succeeded trials."""
    competing = _competing(trials, objectives)
    best: dict[str, tuple[float, int]] = {}
    for objective in objectives:
        values = [t.metrics.get(objective.metric.value) for t in competing]
        index = best_index(values, objective.direction)
        if index is not None:
            best[objective.metric.value] = (float(values[index]), competing[index].number)
    return best


def pareto_front(trials: Sequence[T], objectives: Sequence[Objective]) -> list[T]:
    """Succeeded trials no other succeeded trial dominates, by trial number."""
    metrics = [o.metric.value for o in objectives]
    candidates = _competing(trials, objectives)
    if not candidates:
        return []
    values = np.array([[float(t.metrics[m]) for m in metrics] for t in candidates])  # (N, M)
    mask = non_dominated_mask(values, [o.direction for o in objectives])
    return [t for t, keep in zip(candidates, mask, strict=True) if keep]

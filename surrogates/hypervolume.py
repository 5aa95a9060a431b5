"""Exact hypervolume of minimised costs up to a reference point, and its growth trial by trial.

Two objectives use an O(F log F) sweep; three or more use BoTorch's exact ``Hypervolume`` (imported
only then). Points that do not strictly dominate the reference point, or have a non-finite value,
add nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from supernas.objectives import Direction
from surrogates.pareto import non_dominated_mask

_MINIMIZE = Direction.MINIMIZE


def _useful(costs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    costs = np.asarray(costs, dtype=np.float64).reshape(-1, len(reference))
    inside = np.all(np.isfinite(costs), axis=1) & np.all(costs < reference, axis=1)
    return costs[inside]


def front_of(costs: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows (F, M) of minimised costs (N, M)."""
    costs = np.unique(np.asarray(costs, dtype=np.float64), axis=0)
    if len(costs) == 0:
        return costs
    return costs[non_dominated_mask(costs, [_MINIMIZE] * costs.shape[1])]


@functools.cache
def _botorch_hypervolume(reference: tuple[float, ...]) -> Any:
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    return Hypervolume(ref_point=-torch.tensor(reference, dtype=torch.float64))


def hypervolume(costs: np.ndarray, reference: np.ndarray | list[float]) -> float:
    """Hypervolume dominated by minimised costs (N, M) up to ``reference`` (M,)."""
    reference = np.asarray(reference, dtype=np.float64)
    front = front_of(_useful(costs, reference))
    if len(front) == 0:
        return 0.0
    if len(reference) == 1:
        return float(reference[0] - front[:, 0].min())
    if len(reference) == 2:
        front = front[np.argsort(front[:, 0])]  # x ascending, so y descending along a front
        widths = np.diff(np.append(front[:, 0], reference[0]))
        return float(np.sum(widths * (reference[1] - front[:, 1])))
    import torch

    return float(_botorch_hypervolume(tuple(reference)).compute(torch.from_numpy(-front)))


def hypervolume_growth(costs: np.ndarray, reference: np.ndarray | list[float]) -> np.ndarray:
    """Hypervolume of the first k rows of ``costs`` (N, M), for k = 1..N (non-decreasing).

    Recomputed only when a row enters the front, so a long search with a stable front is cheap."""
    reference = np.asarray(reference, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64).reshape(-1, len(reference))
    curve = np.zeros(len(costs))  # (N,)
    front = np.empty((0, len(reference)))
    volume = 0.0
    for k, point in enumerate(costs):
        useful = bool(np.all(np.isfinite(point)) and np.all(point < reference))
        if useful and not np.any(np.all(front <= point, axis=1)):  # not weakly dominated by the front
            front = front_of(np.vstack([front, point]))
            volume = hypervolume(front, reference)
        curve[k] = volume
    return curve

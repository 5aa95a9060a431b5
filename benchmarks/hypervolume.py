"""Hypervolume of normalised costs and hypervolume-regret curves.

Costs are normalised so that the reference point is (1, ..., 1) (see ``benchmarks.problems``). The
hypervolume is BoTorch's exact ``Hypervolume`` in its maximisation form: the points are negated and
the reference point is (-1, ..., -1). Points that do not dominate the reference point, and points
with a non-finite value, add nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


@functools.cache
def _hypervolume_of(num_objectives: int) -> Any:  # a BoTorch Hypervolume (imported lazily)
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    return Hypervolume(ref_point=-torch.ones(num_objectives, dtype=torch.float64))


def non_dominated(costs: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows (F, M) of finite costs (N, M), all minimised, in O(N F) memory.

    After a lexicographic sort a row can be weakly dominated only by rows before it.
    """
    costs = np.asarray(costs, dtype=np.float64)
    costs = costs[np.all(np.isfinite(costs), axis=1)]
    front = np.empty((0, costs.shape[1]))
    for row in costs[np.lexsort(costs.T[::-1])]:
        if not np.any(np.all(front <= row, axis=1)):
            front = np.vstack([front, row])
    return front


def pareto_front(costs: np.ndarray) -> np.ndarray:
    """The non-dominated rows (F, M) of normalised costs (N, M) that lie strictly inside the reference box."""
    costs = np.asarray(costs, dtype=np.float64)
    return non_dominated(costs[np.all(costs < 1.0, axis=1)])


def hypervolume(costs: np.ndarray) -> float:
    """Hypervolume dominated by normalised costs (N, M) up to the reference point (1, ..., 1)."""
    import torch

    front = pareto_front(costs)
    if len(front) == 0:
        return 0.0
    return float(_hypervolume_of(front.shape[1]).compute(torch.from_numpy(-front)))


def hypervolume_curve(costs: np.ndarray) -> np.ndarray:
    """Hypervolume of the first k points, for k = 1..N (non-decreasing).  costs: (N, M) normalised."""
    costs = np.asarray(costs, dtype=np.float64)
    curve = np.zeros(len(costs))  # (N,)
    front = np.empty((0, costs.shape[1]))
    hv = 0.0
    for k, point in enumerate(costs):
        useful = bool(np.all(np.isfinite(point)) and np.all(point < 1.0))
        if useful and not np.any(np.all(front <= point, axis=1)):  # not weakly dominated by the front
            front = pareto_front(np.vstack([front, point]))
            hv = hypervolume(front)
        curve[k] = hv
    return curve


def regret_curve(costs: np.ndarray, max_hv: float) -> np.ndarray:
    """Hypervolume regret ``max_hv - hv(first k points)`` for k = 1..N (non-increasing)."""
    return max_hv - hypervolume_curve(costs)

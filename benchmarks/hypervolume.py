"""Hypervolume of normalised costs and hypervolume-regret curves for the strategy benchmarks.

Costs are normalised so that the reference point is (1, ..., 1) (see ``benchmarks.problems``); the
exact computation is :mod:`surrogates.hypervolume`, the one the service's dashboard uses too.
"""

from __future__ import annotations

import numpy as np

from surrogates.hypervolume import front_of, hypervolume_growth
from surrogates.hypervolume import hypervolume as hypervolume_to


def non_dominated(costs: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows (F, M) of the finite rows of costs (N, M), all minimised."""
    costs = np.asarray(costs, dtype=np.float64)
    return front_of(costs[np.all(np.isfinite(costs), axis=1)])


def hypervolume(costs: np.ndarray) -> float:
    """Hypervolume dominated by normalised costs (N, M) up to the reference point (1, ..., 1)."""
    costs = np.asarray(costs, dtype=np.float64)
    return hypervolume_to(costs, np.ones(costs.shape[-1]))


def hypervolume_curve(costs: np.ndarray) -> np.ndarray:
    """Hypervolume of the first k points, for k = 1..N (non-decreasing).  costs: (N, M) normalised."""
    costs = np.asarray(costs, dtype=np.float64)
    return hypervolume_growth(costs, np.ones(costs.shape[-1]))


def regret_curve(costs: np.ndarray, max_hv: float) -> np.ndarray:
    """Hypervolume regret ``max_hv - hv(first k points)`` for k = 1..N (non-increasing)."""
    return max_hv - hypervolume_curve(costs)

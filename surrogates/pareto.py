"""Pareto fronts and "best" values over objectives with mixed directions.

A few lines of numpy rather than BoTorch's ``is_non_dominated`` so the service need not import
BoTorch for a listing; non-finite values never enter a front and never win.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from supernas.objectives import Direction, is_finite_number


def to_minimization(values: np.ndarray, directions: Sequence[Direction]) -> np.ndarray:
    """Flip maximised columns so every column is minimised.  values: (N, M)."""
    signs = np.array([-1.0 if d == Direction.MAXIMIZE else 1.0 for d in directions])
    return values * signs  # (N, M)


def non_dominated_mask(values: np.ndarray, directions: Sequence[Direction]) -> np.ndarray:
    """Boolean mask of the rows of ``values`` (N, M) no other row dominates.

    Rows with a non-finite entry are never in the front.  Duplicated points are all kept.
    After a lexicographic sort a row can only be dominated by a row before it, and then also by a
    kept one, so each row is compared with the front found so far: O(N F) time, O(F M) memory.
    """
    costs = to_minimization(np.asarray(values, dtype=np.float64), directions)  # (N, M)
    mask = np.zeros(len(costs), dtype=bool)
    idx = np.flatnonzero(np.all(np.isfinite(costs), axis=1))
    if idx.size == 0:
        return mask
    order = idx[np.lexsort(costs[idx].T[::-1])]
    if costs.shape[1] == 2:
        mask[order] = ~_dominated_sorted_2d(costs[order])
        return mask
    front = np.empty((0, costs.shape[1]))  # (F, M)
    for i in order:
        row = costs[i]
        dominated = np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1))
        if not dominated:
            mask[i] = True
            front = np.vstack([front, row])
    return mask


def _dominated_sorted_2d(costs: np.ndarray) -> np.ndarray:
    """Dominated rows of lexicographically sorted 2-D costs (N, 2), vectorised: a row is dominated by
    an earlier row with a smaller x and no larger y, or with the same x and a smaller y."""
    x, y = costs[:, 0], costs[:, 1]
    group_start = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])  # first row of each run of equal x
    group_of = np.cumsum(np.r_[True, x[1:] != x[:-1]]) - 1  # (N,) run index of each row
    running_min = np.minimum.accumulate(y)
    before_group = np.r_[np.inf, running_min[group_start[1:] - 1]]  # min y over smaller x, per run
    return (before_group[group_of] <= y) | (y[group_start][group_of] < y)


def best_index(values: Sequence[object], direction: Direction) -> int | None:
    """Index of the best finite value, or None when there is none."""
    candidates = [(float(v), i) for i, v in enumerate(values) if is_finite_number(v)]
    if not candidates:
        return None
    pick = max if direction == Direction.MAXIMIZE else min
    return pick(candidates, key=lambda pair: pair[0])[1]

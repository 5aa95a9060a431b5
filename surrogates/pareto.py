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
    front = np.empty((0, costs.shape[1]))  # (F, M)
    for i in order:
        row = costs[i]
        dominated = np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1))
        if not dominated:
            mask[i] = True
            front = np.vstack([front, row])
    return mask


def best_index(values: Sequence[object], direction: Direction) -> int | None:
    """Index of the best finite value, or None when there is none."""
    candidates = [(float(v), i) for i, v in enumerate(values) if is_finite_number(v)]
    if not candidates:
        return None
    pick = max if direction == Direction.MAXIMIZE else min
    return pick(candidates, key=lambda pair: pair[0])[1]

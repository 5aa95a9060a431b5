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
    """
    costs = to_minimization(np.asarray(values, dtype=np.float64), directions)  # (N, M)
    finite = np.all(np.isfinite(costs), axis=1)  # (N,)
    mask = np.zeros(len(costs), dtype=bool)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return mask
    c = costs[idx]  # (F, M)
    no_worse = np.all(c[:, None, :] <= c[None, :, :], axis=2)  # (F, F): j no worse than i, at [j, i]
    better = np.any(c[:, None, :] < c[None, :, :], axis=2)  # (F, F)
    dominated = np.any(no_worse & better, axis=0)  # (F,)
    mask[idx[~dominated]] = True
    return mask


def best_index(values: Sequence[object], direction: Direction) -> int | None:
    """Index of the best finite value, or None when there is none."""
    candidates = [(float(v), i) for i, v in enumerate(values) if is_finite_number(v)]
    if not candidates:
        return None
    pick = max if direction == Direction.MAXIMIZE else min
    return pick(candidates, key=lambda pair: pair[0])[1]

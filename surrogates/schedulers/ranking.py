"""Rung promotion rules: is a trial among the best 1/eta of those that reached the same rung?

One objective: Ray Tune's ASHA rule exactly (``async_hyperband._Bracket``): the trial goes on unless
its value is below the (1 - 1/eta) percentile of the values recorded at the rung before it. Ray's
rule is reimplemented because its brackets need Ray Trial objects and know one metric only; a test
checks that the two agree decision by decision.

Several objectives (MO-ASHA, Schmucker et al. 2021): the rung's trials are ranked by non-dominated
sorting, ties within the front that is cut broken by hypervolume contribution (larger first, costs
min-max normalised over the rung); the trial goes on if it is among the best ceil(n / eta).
"""

from __future__ import annotations

import math

import numpy as np

from supernas.objectives import Direction
from surrogates.hypervolume import hypervolume
from surrogates.pareto import non_dominated_mask

_MIN = Direction.MINIMIZE


def passes_single(recorded: np.ndarray, cost: float, eta: float) -> bool:
    """Ray Tune's ASHA cutoff on costs: ``recorded`` (N,) costs of earlier trials at the rung."""
    rewards = -np.asarray(recorded, dtype=np.float64)
    rewards = rewards[np.isfinite(rewards)]
    if rewards.size == 0:
        return True
    cutoff = np.percentile(rewards, (1 - 1 / eta) * 100)
    return bool(-cost >= cutoff) if math.isfinite(cost) else False


def pareto_ranks(costs: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: 0 for the first front, 1 for the next, ...; non-finite rows last."""
    costs = np.asarray(costs, dtype=np.float64)
    ranks = np.full(len(costs), len(costs), dtype=int)
    remaining = np.flatnonzero(np.all(np.isfinite(costs), axis=1))
    level = 0
    while remaining.size:
        front = non_dominated_mask(costs[remaining], [_MIN] * costs.shape[1])
        ranks[remaining[front]] = level
        remaining = remaining[~front]
        level += 1
    return ranks


def hypervolume_contributions(costs: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume of each row (N, M) within its set (normalised to [0, 1], reference 1.1)."""
    low, high = costs.min(axis=0), costs.max(axis=0)
    scaled = (costs - low) / np.where(high > low, high - low, 1.0)
    reference = np.full(costs.shape[1], 1.1)
    total = hypervolume(scaled, reference)
    return np.array([total - hypervolume(np.delete(scaled, i, axis=0), reference) for i in range(len(costs))])


def passes_multi(recorded: np.ndarray, cost: np.ndarray, eta: float) -> tuple[bool, int, int, int]:
    """MO-ASHA among ``recorded`` (N, M) and ``cost`` (M,): (goes on, its Pareto front from 0, trials
    on better fronts, places that go on). Hypervolume contributions are computed only for its front,
    and only when the cut falls inside it."""
    recorded = np.asarray(recorded, dtype=np.float64).reshape(-1, len(cost))
    if len(recorded) == 0:
        return True, 0, 0, 1
    pool = np.vstack([recorded, cost])
    kept = max(1, math.ceil(len(pool) / eta))
    if not np.all(np.isfinite(cost)):
        return False, len(pool), len(recorded), kept
    ranks = pareto_ranks(pool)
    ahead = int(np.sum(ranks < ranks[-1]))  # trials on better fronts
    front = np.flatnonzero(ranks == ranks[-1])
    if ahead >= kept or ahead + len(front) <= kept:
        return ahead < kept, int(ranks[-1]), ahead, kept
    order = np.argsort(-hypervolume_contributions(pool[front]), kind="stable")  # the cut is in its front
    place = ahead + int(np.flatnonzero(front[order] == len(pool) - 1)[0])
    return place < kept, int(ranks[-1]), ahead, kept

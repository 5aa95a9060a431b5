"""Pareto fronts against a brute-force dominance check; non-finite values never win."""

from __future__ import annotations

import math

import numpy as np
import pytest

from supernas.objectives import Direction
from surrogates.pareto import best_index, non_dominated_mask

MAX, MIN = Direction.MAXIMIZE, Direction.MINIMIZE


def _dominates(a: np.ndarray, b: np.ndarray, directions: list[Direction]) -> bool:
    better_or_equal = all(
        (x >= y) if d == MAX else (x <= y) for x, y, d in zip(a, b, directions, strict=True)
    )
    strictly = any((x > y) if d == MAX else (x < y) for x, y, d in zip(a, b, directions, strict=True))
    return better_or_equal and strictly


def _brute_force(values: np.ndarray, directions: list[Direction]) -> np.ndarray:
    finite = [bool(np.all(np.isfinite(v))) for v in values]
    return np.array(
        [
            finite[i]
            and not any(
                finite[j] and _dominates(values[j], values[i], directions) for j in range(len(values))
            )
            for i in range(len(values))
        ]
    )


@pytest.mark.parametrize("seed", range(20))
def test_matches_brute_force_on_random_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    values = rng.integers(0, 6, size=(n, m)).astype(float)  # small integers: many ties and duplicates
    if seed % 3 == 0:
        values[rng.integers(0, n)] = [math.nan] * m
    directions = [MAX if rng.random() < 0.5 else MIN for _ in range(m)]
    np.testing.assert_array_equal(non_dominated_mask(values, directions), _brute_force(values, directions))


def test_nan_and_inf_never_enter_the_front() -> None:
    values = np.array([[0.9, 5.0], [math.nan, 1.0], [math.inf, 1.0], [0.5, 1.0]])
    mask = non_dominated_mask(values, [MAX, MIN])
    assert mask.tolist() == [True, False, False, True]


def test_best_index_skips_non_finite_values() -> None:
    assert best_index([0.2, math.nan, math.inf, 0.9, "x", None], MAX) == 3
    assert best_index([3.0, -math.inf, 1.0], MIN) == 2
    assert best_index([math.nan, None], MAX) is None

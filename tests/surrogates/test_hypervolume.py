"""Exact hypervolume (two-objective sweep and BoTorch for more) and the fast Pareto mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume

from supernas.objectives import Direction
from surrogates.hypervolume import front_of, hypervolume, hypervolume_growth
from surrogates.pareto import non_dominated_mask


def _brute_force_mask(costs: np.ndarray) -> np.ndarray:
    finite = np.all(np.isfinite(costs), axis=1)
    mask = np.zeros(len(costs), dtype=bool)
    for i, row in enumerate(costs):
        if not finite[i]:
            continue
        others = costs[finite]
        mask[i] = not np.any(np.all(others <= row, axis=1) & np.any(others < row, axis=1))
    return mask


@pytest.mark.parametrize("num_objectives", [2, 3])
def test_mask_matches_brute_force_with_ties_and_nan(num_objectives: int) -> None:
    rng = np.random.default_rng(0)
    costs = rng.integers(0, 6, size=(300, num_objectives)).astype(float)  # many ties and duplicates
    costs[::37, 0] = np.nan
    mask = non_dominated_mask(costs, [Direction.MINIMIZE] * num_objectives)
    np.testing.assert_array_equal(mask, _brute_force_mask(costs))


def test_mask_respects_directions() -> None:
    values = np.array([[0.9, 100.0], [0.8, 50.0], [0.7, 80.0]])  # accuracy max, params min
    mask = non_dominated_mask(values, [Direction.MAXIMIZE, Direction.MINIMIZE])
    assert mask.tolist() == [True, True, False]


@pytest.mark.parametrize("num_objectives", [2, 3])
def test_hypervolume_matches_botorch(num_objectives: int) -> None:
    rng = np.random.default_rng(1)
    costs = rng.uniform(0, 1.2, size=(200, num_objectives))  # some outside the reference box
    reference = np.full(num_objectives, 1.0)
    inside = costs[np.all(costs < 1.0, axis=1)]
    expected = Hypervolume(ref_point=-torch.ones(num_objectives, dtype=torch.float64)).compute(
        torch.from_numpy(-front_of(inside))
    )
    assert hypervolume(costs, reference) == pytest.approx(float(expected), rel=1e-9)


def test_two_objective_hypervolume_by_hand() -> None:
    # boxes: [1,4]x... : points (1,3) and (2,1) with reference (4,4): 3*1 + ... = area of union
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 1.0]]), [4.0, 4.0]) == pytest.approx(1 * 1 + 2 * 3)
    assert hypervolume(np.array([[5.0, 1.0], [np.inf, 0.0]]), [4.0, 4.0]) == 0.0


def test_growth_is_stepwise_and_ends_at_the_total() -> None:
    rng = np.random.default_rng(2)
    costs = rng.uniform(0, 1, size=(100, 2))
    curve = hypervolume_growth(costs, [1.0, 1.0])
    assert np.all(np.diff(curve) >= 0)
    assert curve[-1] == pytest.approx(hypervolume(costs, [1.0, 1.0]))
    assert curve[0] == pytest.approx((1 - costs[0, 0]) * (1 - costs[0, 1]))

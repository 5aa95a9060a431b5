"""One number per report for the model-based schedulers: the objective as a value to maximise, or,
with several objectives, a random augmented Chebyshev scalarisation (ParEGO) of min-max normalised
costs, with new weights at each decision so that the whole front is pursued over time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

AUGMENTATION = 0.05


def scalarizer(all_costs: np.ndarray, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping costs (N, M) to values to maximise (N,), fixed for one decision.

    ``all_costs`` (K, M) are every cost observed so far (for the normalisation); non-finite costs
    map to the worst finite value seen (a diverged run is as bad as the worst, not NaN)."""
    finite = all_costs[np.all(np.isfinite(all_costs), axis=1)]
    low = finite.min(axis=0) if len(finite) else np.zeros(all_costs.shape[1])
    high = finite.max(axis=0) if len(finite) else np.ones(all_costs.shape[1])
    span = np.where(high > low, high - low, 1.0)
    weights = rng.dirichlet(np.ones(all_costs.shape[1])) if all_costs.shape[1] > 1 else np.ones(1)

    def values(costs: np.ndarray) -> np.ndarray:
        costs = np.where(np.isfinite(costs), costs, high)
        if costs.shape[1] == 1:
            return -costs[:, 0]
        z = (costs - low) / span
        return -(np.max(weights * z, axis=1) + AUGMENTATION * np.sum(weights * z, axis=1))

    return values

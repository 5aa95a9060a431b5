"""Neighbours of a config for local search: one or two parameters changed, or every numeric one nudged.

Both work on the unit-cube encoding (``ParamSpace.encode``) and decode back, so a neighbour is always a
valid config: conditions hold, a parameter switched on by a mutation gets a random value. Used to
search around incumbents and to hill-climb an acquisition function (``botorch``, ``mobster``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from search_spaces.params import Categorical, ParamSpace

MUTATION_STEP = 0.1  # std of a numeric mutation, in unit-cube coordinates
LOCAL_STEPS = (0.01, 0.03, 0.1)  # std of a joint numeric nudge, in unit-cube coordinates


def mutate(space: ParamSpace, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A neighbour of ``config``: one or two active parameters changed, conditions kept valid.

    Works on the encoding: inactive coordinates get random values first, so a mutation that
    switches a child parameter on gives it a random value; ``decode`` returns a valid config.
    """
    x = space.encode(config)  # (d,)
    inactive = ~space.active_mask(config)  # (d,)
    x[inactive] = rng.random(int(inactive.sum()))
    offsets = np.cumsum([0] + [p.width for p in space.params])
    active = [i for i, p in enumerate(space.params) if p.name in config]
    for i in rng.choice(active, size=min(len(active), int(rng.integers(1, 3))), replace=False):
        _mutate_param(x, int(offsets[i]), space.params[i], rng)
    return space.decode(x)


def perturb(space: ParamSpace, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """A neighbour for local search: ``mutate`` half the time, else every active numeric parameter
    nudged by a Gaussian step of a random scale (``mutate`` where there is none)."""
    numeric = [i for i, p in enumerate(space.params) if p.name in config and not isinstance(p, Categorical)]
    if not numeric or rng.random() < 0.5:
        return mutate(space, config, rng)
    x = space.encode(config)  # (d,)
    offsets = np.cumsum([0] + [p.width for p in space.params])
    step = float(rng.choice(LOCAL_STEPS))
    for i in numeric:
        at = int(offsets[i])
        x[at] = float(np.clip(x[at] + rng.normal(0.0, step), 0.0, 1.0))
    return space.decode(x)


def _mutate_param(x: np.ndarray, at: int, param: Any, rng: np.random.Generator) -> None:
    """Move one parameter's coordinates in place: another choice, or a small numeric step."""
    if isinstance(param, Categorical):
        k = len(param.choices)
        if k == 1:
            return
        current = int(np.argmax(x[at : at + k])) if param.width > 1 else round(x[at] * (k - 1))
        new = (current + int(rng.integers(1, k))) % k
        if param.width > 1:
            x[at : at + k] = 0.0
            x[at + new] = 1.0
        else:
            x[at] = new / (k - 1)
        return
    x[at] = float(np.clip(x[at] + rng.normal(0.0, MUTATION_STEP), 0.0, 1.0))

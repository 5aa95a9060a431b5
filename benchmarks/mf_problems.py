"""The simulated problems of the multi-fidelity benchmark: recorded learning curves and BoTorch's
multi-fidelity test functions, each as a ``CurveTable`` with its search space.

- ``lc-mnist1d``: MLPs on MNIST-1D, ``lc-fashion``: small CNNs on a Fashion-MNIST subset (500 configs
  x 30 epochs x 3 seeds each, recorded by ``benchmarks.learning_curves``); the objective is the
  validation error (1 - accuracy) at each epoch, and an epoch lasts what it took when recorded.
- ``hartmann-mf``, ``branin-mf``: BoTorch's ``AugmentedHartmann`` (6-D) and ``AugmentedBranin`` (2-D)
  at 500 random configs, the fidelity s = epoch / 30 as their last input, with Gaussian noise per seed
  (3 seeds); every epoch lasts one second.

Methods whose samplers propose points of the continuous space (the peers) are snapped to the
nearest recorded config not yet started (``MFProblem.nearest_row``, in the unit-cube encoding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from search_spaces.params import Float, Integer, ParamSpace
from supernas.objectives import Direction
from surrogates.schedulers.simulation import CurveTable

DATA = Path(__file__).resolve().parent / "data"
EPOCHS = 30
SYNTHETIC_CONFIGS = 500
SYNTHETIC_SEEDS = 3
NOISE = {"hartmann-mf": 0.05, "branin-mf": 1.0}


@dataclass(frozen=True)
class MFProblem:
    name: str
    table: CurveTable
    space: ParamSpace
    x: np.ndarray  # (C, d) the recorded configs encoded in the unit cube

    @property
    def directions(self) -> tuple[Direction, ...]:
        return (Direction.MINIMIZE,) * len(self.table.metrics)

    @property
    def epochs(self) -> int:
        return self.table.epochs

    def nearest_row(self, config: dict[str, Any], taken: set[int]) -> int:
        """The recorded config nearest to ``config`` (Euclidean, encoded) among those not ``taken``."""
        distance = np.linalg.norm(self.x - self.space.encode(config), axis=1)  # (C,)
        if len(taken) < len(distance):
            distance[list(taken)] = np.inf
        return int(np.argmin(distance))

    def best(self, seed_index: int) -> float:
        """The lowest value of the (first) objective anywhere in the table for that seed."""
        return float(np.nanmin(self.table.values[:, seed_index, :, 0]))

    def seed_index(self, seed: int) -> int:
        """The recorded seed whose curves a run with ``seed`` replays."""
        return seed % self.table.values.shape[1]

    def one_example(self, seed_index: int) -> float:
        """On a recorded table, the validation error of one misclassified validation example: the
        smallest difference between two recorded values of the (first) objective."""
        steps = np.diff(np.unique(self.table.values[:, seed_index, :, 0]))
        return float(steps[steps > 1e-9].min())

    def typical_final(self, seed_index: int) -> float:
        """The 90th percentile of the final-epoch values of the (first) objective: regret 1 means as
        bad as that (a percentile, so that a few very bad configs do not shrink every regret)."""
        return float(np.nanpercentile(self.table.values[:, seed_index, -1, 0], 90))


def _recorded(name: str, path: Path) -> MFProblem:
    settings = json.loads(path.with_suffix(".json").read_text())
    params = []
    for dim in settings["space"]:
        kind = Integer if dim["integer"] else Float
        params.append(kind(dim["name"], dim["low"], dim["high"], dim["log"]))
    space = ParamSpace(params)
    with np.load(path) as f:
        raw = {p.name: f[f"param_{p.name}"] for p in params}
        error = 1.0 - f["val_accuracy"].astype(np.float64)  # (C, S, E)
        seconds = f["epoch_seconds"].astype(np.float64)
    configs = [
        {p.name: (int(raw[p.name][i]) if isinstance(p, Integer) else float(raw[p.name][i])) for p in params}
        for i in range(len(error))
    ]
    table = CurveTable(configs, error[..., None], seconds, ("val_error",))
    return MFProblem(name, table, space, np.vstack([space.encode(c) for c in configs]))


def _synthetic(name: str) -> MFProblem:
    from botorch.test_functions.multi_fidelity import AugmentedBranin, AugmentedHartmann

    function = AugmentedHartmann() if name == "hartmann-mf" else AugmentedBranin()
    dim = function.dim - 1  # the last input is the fidelity
    bounds = function.bounds[:, :dim].numpy()  # (2, d)
    rng = np.random.default_rng(2024)
    unit = rng.uniform(size=(SYNTHETIC_CONFIGS, dim))  # (C, d)
    fidelities = np.arange(1, EPOCHS + 1) / EPOCHS  # (E,)
    inputs = np.concatenate(
        [
            np.repeat(bounds[0] + unit * (bounds[1] - bounds[0]), EPOCHS, axis=0),
            np.tile(fidelities, SYNTHETIC_CONFIGS)[:, None],
        ],
        axis=1,
    )  # (C * E, d + 1)
    with torch.no_grad():
        clean = function.evaluate_true(torch.as_tensor(inputs)).numpy().reshape(SYNTHETIC_CONFIGS, 1, EPOCHS)
    noise = NOISE[name] * rng.normal(size=(SYNTHETIC_CONFIGS, SYNTHETIC_SEEDS, EPOCHS))
    values = (clean + noise)[..., None]  # (C, S, E, 1)
    space = ParamSpace([Float(f"x{i}", 0.0, 1.0) for i in range(dim)])
    configs = [{f"x{i}": float(u[i]) for i in range(dim)} for u in unit]
    seconds = np.ones((SYNTHETIC_CONFIGS, SYNTHETIC_SEEDS, EPOCHS))
    return MFProblem(name, CurveTable(configs, values, seconds, ("value",)), space, unit)


PROBLEMS = ("lc-mnist1d", "lc-fashion", "hartmann-mf", "branin-mf")


def load_problem(name: str) -> MFProblem:
    if name == "lc-mnist1d":
        return _recorded(name, DATA / "lc_mnist1d_full.npz")
    if name == "lc-fashion":
        return _recorded(name, DATA / "lc_fashion_cnn.npz")
    if name in NOISE:
        return _synthetic(name)
    raise ValueError(f"unknown problem {name!r}; known: {list(PROBLEMS)}")

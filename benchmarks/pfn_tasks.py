"""The PFN benchmark's tasks: context and query points drawn from the prior, NAS-Bench-201 and real
learning curves, and loading those real data sets."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import learning_curves
from benchmarks.problems import nb201_key, nb201_space, nb201_table
from surrogates.pfn import priors

PRIOR_DIMS = (2, 8)  # held-out prior tasks have 2..8 coordinates
PRIOR_EPOCHS = (20, 50)  # and their curves 20..50 epochs
QUICK_LC = {"n_configs": 12, "epochs": 6, "seeds": 1}  # generated for --quick when --lc-data is missing


# --------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class CurveQuery:
    """A learning-curve task in ``predict_curves``' terms."""

    configs: np.ndarray  # (C, d)
    prefixes: list[list[float]]  # observed values of epochs 1..k_c of each config
    max_epochs: int
    queries: list[tuple[int, int]]  # (config index, epoch), epochs from 1


@dataclass(frozen=True)
class Task:
    """Context and queries; curve tasks carry the epoch fraction as the last input column."""

    x_ctx: np.ndarray  # (N, d) or (N, d + 1) on curve tasks
    y_ctx: np.ndarray  # (N,)
    x_qry: np.ndarray  # (M, d) or (M, d + 1)
    y_qry: np.ndarray  # (M,)
    curves: CurveQuery | None = None


@dataclass(frozen=True)
class RealData:
    """The real data sets, loaded once."""

    nb201_x: np.ndarray  # (15625, 30) encoded architectures
    nb201_y: np.ndarray  # (15625,) validation accuracy
    lc_x: np.ndarray  # (C, 6) encoded MLP configs
    lc_y: np.ndarray  # (C, E) validation accuracy per epoch (seed 0)
    lc_settings: dict[str, Any]


def seeded_generators(seed: int, *keys: int) -> tuple[torch.Generator, np.random.Generator]:
    state = np.random.SeedSequence([seed, *keys]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0])), np.random.default_rng(int(state[1]))


def function_tasks(size: int, n_tasks: int, n_queries: int, seed: int) -> list[Task]:
    gen, rng = seeded_generators(seed, 0, size)
    tasks = []
    for _ in range(n_tasks):
        dim = int(rng.integers(PRIOR_DIMS[0], PRIOR_DIMS[1] + 1))
        x, y = priors.function_task(size + n_queries, dim, gen)  # (N + M, d), (N + M,)
        x, y = x.numpy(), y.numpy()
        tasks.append(Task(x[:size], y[:size], x[size:], y[size:]))
    return tasks


def curve_configs_needed(size: int, epochs: int) -> int:
    """How many configs share a context of ``size`` observed epochs out of ``epochs`` per curve."""
    wanted = max(math.ceil(2 * size / (epochs - 1)), math.ceil(2 * math.sqrt(size)), 2)
    return min(wanted, size)


def observed_lengths(size: int, n_configs: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Prefix lengths (C,) in 1..cap summing to ``size``; each config takes a random share."""
    if not n_configs <= size <= n_configs * cap:
        raise ValueError(f"{size} observations do not fit {n_configs} curves of at most {cap} epochs")
    seen = np.ones(n_configs, dtype=int)  # (C,)
    weights = rng.exponential(size=n_configs)  # (C,)
    for _ in range(size - n_configs):
        open_ = seen < cap
        p = weights * open_
        seen[rng.choice(n_configs, p=p / p.sum())] += 1
    return seen


def curve_split(configs: np.ndarray, curves: np.ndarray, size: int, rng: np.random.Generator) -> Task:
    """Prefixes of ``size`` epochs in all of a subset of the curves (C, E); queries: their final epochs."""
    n_all, epochs = curves.shape
    n_configs = min(curve_configs_needed(size, epochs), n_all)
    if n_configs * (epochs - 1) < size:
        raise ValueError(f"{n_all} curves of {epochs} epochs cannot hold {size} partially observed epochs")
    rows = rng.choice(n_all, size=n_configs, replace=False)  # (C',)
    seen = observed_lengths(size, n_configs, epochs - 1, rng)  # (C',)
    prefixes = [curves[r, :k].tolist() for r, k in zip(rows, seen, strict=True)]
    query = CurveQuery(configs[rows], prefixes, epochs, [(i, epochs) for i in range(n_configs)])
    ctx = [(r, e) for r, k in zip(rows, seen, strict=True) for e in range(k)]
    x_ctx = np.array([[*configs[r], (e + 1) / epochs] for r, e in ctx])  # (N, d + 1)
    x_qry = np.hstack([configs[rows], np.ones((n_configs, 1))])  # (C', d + 1)
    return Task(x_ctx, np.array([curves[r, e] for r, e in ctx]), x_qry, curves[rows, -1], query)


def prior_curve_tasks(size: int, n_tasks: int, seed: int) -> list[Task]:
    gen, rng = seeded_generators(seed, 1, size)
    tasks = []
    for _ in range(n_tasks):
        dim = int(rng.integers(PRIOR_DIMS[0], PRIOR_DIMS[1] + 1))
        epochs = int(rng.integers(PRIOR_EPOCHS[0], PRIOR_EPOCHS[1] + 1))
        x, y = priors.curve_task(curve_configs_needed(size, epochs), epochs, dim, gen)  # (C, d), (C, E)
        tasks.append(curve_split(x.numpy(), y.numpy(), size, rng))
    return tasks


def nb201_tasks(data: RealData, size: int, n_tasks: int, n_queries: int, seed: int) -> list[Task]:
    _, rng = seeded_generators(seed, 2, size)
    tasks = []
    for _ in range(n_tasks):
        rows = rng.choice(len(data.nb201_y), size=size + n_queries, replace=False)  # (N + M,)
        x, y = data.nb201_x[rows], data.nb201_y[rows]
        tasks.append(Task(x[:size], y[:size], x[size:], y[size:]))
    return tasks


def lc_tasks(data: RealData, size: int, n_tasks: int, seed: int) -> list[Task]:
    _, rng = seeded_generators(seed, 3, size)
    return [curve_split(data.lc_x, data.lc_y, size, rng) for _ in range(n_tasks)]


def make_tasks(dataset: str, data: RealData, size: int, args: argparse.Namespace) -> list[Task]:
    if dataset == "prior-functions":
        return function_tasks(size, args.tasks, args.queries, args.seed)
    if dataset == "prior-curves":
        return prior_curve_tasks(size, args.tasks, args.seed)
    if dataset == "nb201":
        return nb201_tasks(data, size, args.real_tasks, args.queries, args.seed)
    return lc_tasks(data, size, args.real_tasks, args.seed)


# --------------------------------------------------------------------------------------------- real data


def load_real_data(datasets: Sequence[str], lc_path: Path, quick: bool, workdir: Path) -> RealData:
    nb_x, nb_y = np.zeros((0, 0)), np.zeros(0)
    if "nb201" in datasets:
        table, space = nb201_table(), nb201_space()
        configs = space.enumerate()
        nb_x = np.stack([space.encode(c) for c in configs])  # (15625, 30)
        nb_y = np.array([table[nb201_key(c)]["accuracy"] for c in configs])  # (15625,)
    lc_x, lc_y, lc_settings = np.zeros((0, 0)), np.zeros((0, 0)), {}
    if "lc-mnist1d" in datasets:
        curves = _learning_curves(lc_path, quick, workdir)
        lc_x, lc_y = curves.x, curves.val_accuracy[:, 0, :]  # (C, 6), (C, E)
        lc_settings = curves.settings
    return RealData(nb_x, nb_y, lc_x, lc_y, lc_settings)


def _learning_curves(path: Path, quick: bool, workdir: Path) -> learning_curves.CurveData:
    """The curves at ``path``; if missing, generated: tiny ones in ``workdir`` for --quick, else saved."""
    if path.exists():
        return learning_curves.load(path)
    if quick:
        log(f"{path} missing: generating a tiny learning-curve set ({QUICK_LC}) for --quick")
        data = learning_curves.generate(**QUICK_LC, log=False)
        learning_curves.save(data, workdir / "lc_quick.npz")
        return data
    log(f"{path} missing: generating it with benchmarks.learning_curves' defaults (a few minutes)")
    args = learning_curves.parse_args(["--out", str(path)])
    data = learning_curves.generate(args.configs, args.epochs, args.seeds, args.seed)
    learning_curves.save(data, path)
    return data


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

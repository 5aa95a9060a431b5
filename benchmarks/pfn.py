"""Our PFN surrogate against a BoTorch GP: predictive quality by context size, and speed.

Run from the repository root::

    python -m benchmarks.pfn                                 # sizes 10,50,200,1000, every data set
    python -m benchmarks.pfn --sizes 10,50,200 --tasks 10 --real-tasks 3 --datasets prior-functions,nb201
    python -m benchmarks.pfn --weights runs/pfn/export       # another PFN (pfn.pt + pfn.json)
    python -m benchmarks.pfn --quick                         # smoke test (well under a minute)

The PFN (``surrogates.pfn.predictor``, the shipped weights unless ``--weights``) answers with one
forward pass; the GP is what ``BoTorchStrategy`` fits, ``surrogates.botorch_models.fit_model``
(``SingleTaskGP`` with a ``Standardize`` outcome transform, hyperparameters by ``fit_gpytorch_mll``),
on the whole context (no 256-point cap), and predicts with observation noise
(``posterior(X, observation_noise=True)``). Both run with one torch thread.

**Quality.** For each data set and context size N, ``--tasks`` tasks (``--real-tasks`` on real data):

- ``prior-functions``: held-out function tasks from the PFN's prior (``priors.function_task``,
  dims 2-8), N context points, ``--queries`` query points;
- ``prior-curves``: learning-curve tasks from the prior (``priors.curve_task``, 20-50 epochs);
- ``nb201``: NAS-Bench-201 validation accuracy (``benchmarks.problems.nb201_table``): N random
  architectures (encoded by ``nb201_space().encode``, 30 one-hot coordinates) as context,
  ``--queries`` other architectures as queries;
- ``lc-mnist1d``: real learning curves (validation accuracy of MLPs on MNIST-1D, seed 0 of
  ``--lc-data``, made by ``benchmarks.learning_curves``; generated there if missing).

On curve tasks the context is N observed epochs: prefixes of random length (1 to E-1 epochs) of
several configs' curves, and the queries are the final epochs of those partially observed curves.
The PFN gets them through ``predict_curves``; the GP's inputs are the config with ``t = epoch / E``
appended. The prior tasks come from a fixed seed (``--seed``) unlike training's (0, 1) and its
validation set's (987654).

Metrics per query point, averaged over a task's queries then over tasks (the ± in the JSON is the
standard error over tasks): the predictive log-likelihood and the RMSE of the predictive mean, both
in units of the context standardised (y -> (y - mean) / std of the context, population std: the
log-likelihood in the caller's units plus log std), and Kendall's tau between predictive means and
true values on the queries (0 where either is constant). The median LL over tasks is reported too:
one task whose queries fall far outside a model's predictive tails can dominate a cell's mean.

**Speed.** Seconds per prediction at every N and at 500, on a 6-dimensional prior function task
with ``--timing-queries`` (1000) query points: the PFN's ``predict`` (plus its mean and std), the
GP's fit plus its posterior mean and variance (median of 3 runs, one run for a GP fit over 2 s).
Seconds per ``ask(n=1)`` of the ``pfn`` and ``botorch`` strategies on 100 and 500 observations
(``benchmarks.contenders.time_ask``: nb201-latency, two objectives; ``pfn`` uses the shipped weights,
``botorch`` trains on at most 256 points). The goal: the PFN at least 10x faster than the GP at 500
observations with a comparable log-likelihood (on average over the cells at N >= 200, or over all
cells where no size reaches 200, at most 0.1 nats per point below the GP's).

Writes ``pfn.json`` and ``pfn.png`` (log-likelihood against N, one panel per data set) to ``--out``.

Cost: the default run took 39 minutes on a 2-core machine shared with other work, almost all of it
in GP fits at N = 1000 (NAS-Bench-201's 30 inputs: ~5 minutes per fit, 25 minutes in all; the
prior's tasks: 12-17 s per fit); the PFN's share is seconds. ``--quick`` takes about 25 s.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from benchmarks import learning_curves
from benchmarks.cli import fill_defaults
from benchmarks.contenders import time_ask
from benchmarks.problems import nb201_key, nb201_space, nb201_table
from benchmarks.supernet_ranking import machine
from surrogates import botorch_models as bm
from surrogates.pfn import priors
from surrogates.pfn.predictor import PFNPredictor, Predictive, shipped_predictor, shipped_weights_dir
from surrogates.torch_threads import torch_threads

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DATASETS = ("prior-functions", "prior-curves", "nb201", "lc-mnist1d")
MODELS = ("pfn", "gp")
DEFAULT_SEED = 31_415  # training draws tasks from seeds 0 and 1, its validation set from 987654
PRIOR_DIMS = (2, 8)  # held-out prior tasks have 2..8 coordinates
PRIOR_EPOCHS = (20, 50)  # and their curves 20..50 epochs
TIMING_DIM = 6
GOAL_SIZE, GOAL_SPEEDUP, LL_TOLERANCE = 500, 10.0, 0.1
GOAL_LL_MIN_SIZE = 200  # the LL comparison of the goal uses cells of at least this many observations
TIMING_REPEATS, SLOW_FIT_S = 3, 2.0
QUICK_LC = {"n_configs": 12, "epochs": 6, "seeds": 1}  # generated for --quick when --lc-data is missing
DEFAULTS = {"sizes": "10,50,200,1000", "tasks": 20, "real_tasks": 5, "ask_sizes": "100,500"}
QUICK = {"sizes": "10,50", "tasks": 3, "real_tasks": 2, "ask_sizes": "50"}


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


def _generator(seed: int, *keys: int) -> tuple[torch.Generator, np.random.Generator]:
    state = np.random.SeedSequence([seed, *keys]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0])), np.random.default_rng(int(state[1]))


def function_tasks(size: int, n_tasks: int, n_queries: int, seed: int) -> list[Task]:
    gen, rng = _generator(seed, 0, size)
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
    gen, rng = _generator(seed, 1, size)
    tasks = []
    for _ in range(n_tasks):
        dim = int(rng.integers(PRIOR_DIMS[0], PRIOR_DIMS[1] + 1))
        epochs = int(rng.integers(PRIOR_EPOCHS[0], PRIOR_EPOCHS[1] + 1))
        x, y = priors.curve_task(curve_configs_needed(size, epochs), epochs, dim, gen)  # (C, d), (C, E)
        tasks.append(curve_split(x.numpy(), y.numpy(), size, rng))
    return tasks


def nb201_tasks(data: RealData, size: int, n_tasks: int, n_queries: int, seed: int) -> list[Task]:
    _, rng = _generator(seed, 2, size)
    tasks = []
    for _ in range(n_tasks):
        rows = rng.choice(len(data.nb201_y), size=size + n_queries, replace=False)  # (N + M,)
        x, y = data.nb201_x[rows], data.nb201_y[rows]
        tasks.append(Task(x[:size], y[:size], x[size:], y[size:]))
    return tasks


def lc_tasks(data: RealData, size: int, n_tasks: int, seed: int) -> list[Task]:
    _, rng = _generator(seed, 3, size)
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
        _log(f"{path} missing: generating a tiny learning-curve set ({QUICK_LC}) for --quick")
        data = learning_curves.generate(**QUICK_LC, log=False)
        learning_curves.save(data, workdir / "lc_quick.npz")
        return data
    _log(f"{path} missing: generating it with benchmarks.learning_curves' defaults (a few minutes)")
    args = learning_curves.parse_args(["--out", str(path)])
    data = learning_curves.generate(args.configs, args.epochs, args.seeds, args.seed)
    learning_curves.save(data, path)
    return data


# --------------------------------------------------------------------------------------------- models


def pfn_predict(predictor: PFNPredictor, task: Task, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """PFN predictive mean (M,) and log densities of the true values (M,), caller's units; notes."""
    if task.curves is not None:
        c = task.curves
        predictive: Predictive = predictor.predict_curves(
            c.configs, c.prefixes, c.max_epochs, c.queries, seed
        )
    else:
        predictive = predictor.predict(task.x_ctx, task.y_ctx, task.x_qry, seed=seed)
    mean = predictive.mean()[0].numpy()  # (M,)
    log_lik = predictive.log_prob(task.y_qry[None, :])[0].numpy()  # (M,)
    return mean, log_lik, predictive.notes


def gp_fit_predict(x_ctx: np.ndarray, y_ctx: np.ndarray, x_qry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP predictive mean and std (M,) including observation noise: fit as ``fit_model`` does."""
    model = bm.fit_model(bm.as_tensor(x_ctx), bm.as_tensor(y_ctx)[:, None])  # targets (N, 1)
    with torch.no_grad():
        posterior = model.posterior(bm.as_tensor(x_qry), observation_noise=True)
        mean = posterior.mean[:, 0]  # (M,)
        std = posterior.variance[:, 0].clamp_min(1e-18).sqrt()  # (M,)
    return mean.numpy(), std.numpy()


def gp_predict(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """GP predictive mean (M,) and log densities of the true values (M,)."""
    mean, std = gp_fit_predict(task.x_ctx, task.y_ctx, task.x_qry)
    log_lik = -0.5 * ((task.y_qry - mean) / std) ** 2 - np.log(std) - 0.5 * math.log(2 * math.pi)
    return mean, log_lik


# --------------------------------------------------------------------------------------------- metrics


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau of a (M,) and b (M,); 0 when either is constant (no ranking to compare)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    tau = float(kendalltau(a, b).statistic)
    return 0.0 if math.isnan(tau) else tau


def score(task: Task, mean: np.ndarray, log_lik: np.ndarray) -> dict[str, float]:
    """LL and RMSE in context-standardised units, and Kendall's tau, of predictions at the queries."""
    scale = max(float(np.std(task.y_ctx)), 1e-12)
    return {
        "ll": float(np.mean(log_lik)) + math.log(scale),
        "rmse": float(np.sqrt(np.mean((mean - task.y_qry) ** 2))) / scale,
        "tau": kendall(mean, task.y_qry),
    }


def summarise(per_task: list[dict[str, float]], errors: list[str]) -> dict[str, Any]:
    """Means over the tasks of one (data set, size, model) cell, and the LL's standard error and median
    (one task far outside a model's predictive tails can dominate the mean)."""
    out: dict[str, Any] = {"tasks": len(per_task), "errors": sorted(set(errors))}
    for key in ("ll", "rmse", "tau", "seconds"):
        values = np.array([t[key] for t in per_task])  # (T,)
        out[key] = float(values.mean()) if len(values) else float("nan")
    lls = np.array([t["ll"] for t in per_task])  # (T,)
    out["ll_se"] = float(lls.std(ddof=1) / math.sqrt(len(lls))) if len(lls) > 1 else 0.0
    out["ll_median"] = float(np.median(lls)) if len(lls) else float("nan")
    out["per_task"] = {k: [t[k] for t in per_task] for k in ("ll", "rmse", "tau")}
    return out


def evaluate_cell(
    predictor: PFNPredictor, tasks: list[Task], notes: set[str], gp_warnings: set[str]
) -> dict[str, dict[str, Any]]:
    """Both models on the tasks of one cell: {model: summary}."""
    runs: dict[str, Callable[[Task, int], tuple[np.ndarray, np.ndarray]]] = {
        "pfn": lambda task, i: _pfn_and_notes(predictor, task, i, notes),
        "gp": lambda task, _: _quietly(gp_predict, gp_warnings, task),
    }
    cell = {}
    for model, run in runs.items():
        per_task, errors = [], []
        for i, task in enumerate(tasks):
            start = time.perf_counter()
            try:
                mean, log_lik = run(task, i)
            except Exception as exc:  # a failed fit is reported, not fatal
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            per_task.append({**score(task, mean, log_lik), "seconds": time.perf_counter() - start})
        cell[model] = summarise(per_task, errors)
    return cell


def _pfn_and_notes(
    predictor: PFNPredictor, task: Task, seed: int, notes: set[str]
) -> tuple[np.ndarray, np.ndarray]:
    mean, log_lik, task_notes = pfn_predict(predictor, task, seed)
    notes.update(task_notes)
    return mean, log_lik


def _quietly(fn: Callable[..., Any], seen: set[str], *args: Any) -> Any:
    """Call fn, collecting its warnings' messages into ``seen`` instead of printing them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    seen.update(f"{w.category.__name__}: {w.message}"[:200] for w in caught)
    return result


def quality(predictor: PFNPredictor, data: RealData, args: argparse.Namespace) -> dict[str, Any]:
    """{dataset: {size: {model: summary}}}, plus notes and GP warnings per data set."""
    results: dict[str, Any] = {}
    notes: dict[str, list[str]] = {}
    gp_warnings: dict[str, list[str]] = {}
    skipped: dict[str, dict[str, str]] = {}
    for dataset in args.datasets:
        results[dataset], dataset_notes, dataset_warnings = {}, set(), set()
        for size in args.sizes:
            try:
                tasks = make_tasks(dataset, data, size, args)
            except ValueError as exc:  # e.g. a learning-curve set too small for this size
                skipped.setdefault(dataset, {})[str(size)] = str(exc)
                continue
            start = time.perf_counter()
            cell = evaluate_cell(predictor, tasks, dataset_notes, dataset_warnings)
            results[dataset][str(size)] = cell
            _log(
                f"{dataset} N={size}: {len(tasks)} tasks in {time.perf_counter() - start:.1f} s; median LL "
                f"PFN {cell['pfn']['ll_median']:.3f}, GP {cell['gp']['ll_median']:.3f}"
            )
        notes[dataset], gp_warnings[dataset] = sorted(dataset_notes), sorted(dataset_warnings)[:20]
    return {"results": results, "pfn_notes": notes, "gp_warnings": gp_warnings, "skipped": skipped}


# --------------------------------------------------------------------------------------------- speed


def _median_seconds(fn: Callable[[], Any], repeats: int, slow: float = math.inf) -> float:
    """Median wall time of ``repeats`` calls (a single call when the first takes over ``slow`` s)."""
    times: list[float] = []
    while len(times) < (1 if times and times[0] > slow else repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_predictions(
    predictor: PFNPredictor, sizes: Sequence[int], n_queries: int, seed: int
) -> dict[str, dict[str, float]]:
    """Seconds per prediction at each size: {size: {pfn_s, gp_s, ratio}} on a prior function task."""
    out: dict[str, dict[str, float]] = {}
    gen, _ = _generator(seed, 4, 0)

    def pfn(x: np.ndarray, y: np.ndarray, q: np.ndarray) -> None:
        predictive = predictor.predict(x, y, q)
        predictive.mean(), predictive.std()

    for size in sizes:
        x, y = priors.function_task(size + n_queries, TIMING_DIM, gen)  # (N + M, d), (N + M,)
        x_ctx, y_ctx, x_qry = x[:size].numpy(), y[:size].numpy(), x[size:].numpy()
        pfn(x_ctx, y_ctx, x_qry)  # warm-up
        pfn_s = _median_seconds(lambda: pfn(x_ctx, y_ctx, x_qry), TIMING_REPEATS)  # noqa: B023
        ignored: set[str] = set()
        gp_s = _median_seconds(
            lambda: _quietly(gp_fit_predict, ignored, x_ctx, y_ctx, x_qry),  # noqa: B023
            TIMING_REPEATS,
            SLOW_FIT_S,
        )
        out[str(size)] = {"pfn_s": pfn_s, "gp_s": gp_s, "ratio": gp_s / pfn_s}
        _log(f"timing N={size}: PFN {pfn_s:.4f} s, GP {gp_s:.3f} s")
    return out


def time_asks(sizes: Sequence[int], seed: int) -> dict[str, Any]:
    """Seconds per ask(n=1) of the pfn and botorch strategies ({strategy: time_ask's answer})."""
    out: dict[str, Any] = {}
    for name in ("pfn", "botorch"):
        try:
            out[name] = _quietly(time_ask, set(), name, sizes, seed)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        _log(f"ask timing {name}: {out[name]}")
    return out


# --------------------------------------------------------------------------------------------- report


def goal(doc: dict[str, Any]) -> dict[str, Any]:
    """Is the PFN >= 10x faster than the GP at 500 observations with a comparable log-likelihood?"""
    timing = doc["timing"]["prediction"].get(str(GOAL_SIZE))
    cells = [
        (dataset, int(size), cell)
        for dataset, by_size in doc["quality"]["results"].items()
        for size, cell in by_size.items()
        if cell["pfn"]["tasks"] and cell["gp"]["tasks"]
    ]
    if any(size >= GOAL_LL_MIN_SIZE for _, size, _ in cells):
        cells = [c for c in cells if c[1] >= GOAL_LL_MIN_SIZE]
    gaps = [cell["pfn"]["ll"] - cell["gp"]["ll"] for _, _, cell in cells]
    gap = float(np.mean(gaps)) if gaps else float("nan")
    median_gaps = [cell["pfn"]["ll_median"] - cell["gp"]["ll_median"] for _, _, cell in cells]
    speedup = timing["ratio"] if timing else float("nan")
    return {
        "speedup_at_500": speedup,
        "ll_gap": gap,
        "ll_median_gap": float(np.mean(median_gaps)) if median_gaps else float("nan"),
        "ll_gap_sizes": sorted({size for _, size, _ in cells}),
        "ll_gap_per_dataset": {
            d: float(np.mean([c["pfn"]["ll"] - c["gp"]["ll"] for dd, _, c in cells if dd == d]))
            for d in sorted({d for d, _, _ in cells})
        },
        "faster": bool(speedup >= GOAL_SPEEDUP),
        "comparable_ll": bool(gap >= -LL_TOLERANCE),
        "met": bool(speedup >= GOAL_SPEEDUP and gap >= -LL_TOLERANCE),
    }


def format_quality(results: dict[str, Any]) -> str:
    lines = [
        "| data set | N | PFN LL | GP LL | PFN LL median | GP LL median | PFN RMSE | GP RMSE "
        "| PFN tau | GP tau | tasks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, by_size in results.items():
        for size, cell in by_size.items():
            p, g = cell["pfn"], cell["gp"]
            n_errors = len(p["errors"]) + len(g["errors"])
            cells = [
                dataset,
                size,
                f"{_ll(p['ll'])} ± {_ll(p['ll_se'])}",
                f"{_ll(g['ll'])} ± {_ll(g['ll_se'])}",
                *(
                    f"{v:.3f}"
                    for v in (p["ll_median"], g["ll_median"], p["rmse"], g["rmse"], p["tau"], g["tau"])
                ),
                f"{p['tasks']}/{g['tasks']}" + (f" ({n_errors} err)" if n_errors else ""),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ll(value: float) -> str:
    """A log-likelihood, in scientific notation where a catastrophic tail makes it huge."""
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.2e}"


def format_timing(timing: dict[str, Any]) -> str:
    lines = ["| N | PFN s | GP s (fit + predict) | GP/PFN |", "|---:|---:|---:|---:|"]
    for size, t in timing["prediction"].items():
        lines.append(f"| {size} | {t['pfn_s']:.4f} | {t['gp_s']:.3f} | {t['ratio']:.1f}x |")
    asks = timing["ask"]
    if not asks:
        return "\n".join(lines)
    sizes = sorted({s for entry in asks.values() for s in entry if s.isdigit()}, key=int)
    lines += ["", "| observations | pfn ask s | botorch ask s | botorch/pfn |", "|---:|---:|---:|---:|"]
    for size in sizes:
        p, b = (asks.get(name, {}).get(size, {}).get("seconds") for name in ("pfn", "botorch"))
        ratio = f"{b / p:.1f}x" if p and b else "-"
        lines.append(f"| {size} | {_fmt(p)} | {_fmt(b)} | {ratio} |")
    for name, entry in asks.items():
        if "error" in entry:
            lines.append(f"{name} ask failed: {entry['error']}")
    return "\n".join(lines)


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


PLOT_OFF_SCALE = 30.0  # a mean LL this many nats below a panel's lowest median is drawn on the axis floor


def plot(results: dict[str, Any], path: Path) -> None:
    """One panel per data set: mean log-likelihood against context size ± one standard error (solid)
    and the median over tasks (dashed). A mean far below every median (a task far outside a model's
    tails: ``PLOT_OFF_SCALE``) would flatten the panel, so it is drawn on the axis floor, labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = [d for d, by_size in results.items() if by_size]
    cols = min(2, max(len(datasets), 1))
    rows = max(math.ceil(len(datasets) / cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        _plot_panel(ax, dataset, results[dataset])
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_panel(ax: Any, dataset: str, by_size: dict[str, Any]) -> None:
    sizes = [int(s) for s in by_size]
    cells = {m: [by_size[str(s)][m] for s in sizes] for m in MODELS}
    medians = [c["ll_median"] for m in MODELS for c in cells[m]]
    cutoff = min(medians) - PLOT_OFF_SCALE
    on_scale = [c["ll"] - c["ll_se"] for m in MODELS for c in cells[m] if c["ll"] > cutoff]
    floor = min([*medians, *on_scale]) - 0.5
    for k, (model, colour) in enumerate(zip(MODELS, ("tab:blue", "tab:orange"), strict=True)):
        ll = np.array([c["ll"] for c in cells[model]])  # (S,)
        se = np.array([c["ll_se"] for c in cells[model]])  # (S,)
        label = model.upper()
        ax.errorbar(
            sizes,
            np.maximum(ll, floor),
            yerr=np.where(ll > floor, se, 0.0),
            marker="o",
            capsize=3,
            color=colour,
            label=f"{label} mean",
        )
        ax.plot(
            sizes,
            [c["ll_median"] for c in cells[model]],
            "--",
            color=colour,
            alpha=0.6,
            label=f"{label} median",
        )
        for size, value in zip(sizes, ll, strict=True):
            if value < floor:
                ax.annotate(
                    f"{label} {value:.3g}",
                    (size, floor),
                    textcoords="offset points",
                    xytext=(4, 4 + 10 * k),
                    color=colour,
                    fontsize=8,
                )
    ax.set_ylim(bottom=floor - 0.2)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_title(dataset)
    ax.set_xlabel("context size N")
    ax.set_ylabel("log-likelihood per query (standardised)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


# --------------------------------------------------------------------------------------------- main


def _ints(value: str) -> list[int]:
    return [int(s) for s in value.split(",") if s.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pfn", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--sizes", help=f"context sizes (default {DEFAULTS['sizes']})")
    p.add_argument("--tasks", type=int, help=f"tasks per cell on prior data (default {DEFAULTS['tasks']})")
    p.add_argument(
        "--real-tasks", type=int, help=f"tasks per cell on real data (default {DEFAULTS['real_tasks']})"
    )
    p.add_argument(
        "--queries", type=int, default=200, help="query points per function/nb201 task (default 200)"
    )
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated subset of {DATASETS}")
    p.add_argument("--timing-queries", type=int, default=1000, help="query points when timing (default 1000)")
    p.add_argument(
        "--ask-sizes", help=f"observations when timing ask (default {DEFAULTS['ask_sizes']}; 'none')"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"task seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--weights", type=Path, help="directory of pfn.pt + pfn.json (default: the shipped weights)"
    )
    p.add_argument("--lc-data", type=Path, default=learning_curves.DEFAULT_OUT, help="learning curves (.npz)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: sizes 10,50, 3 (2 real) tasks per cell")
    args = p.parse_args(argv)
    fill_defaults(args, DEFAULTS, QUICK)
    args.sizes = _ints(args.sizes)
    args.ask_sizes = [] if args.ask_sizes.strip().lower() in ("", "none") else _ints(args.ask_sizes)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown data sets {unknown}; known: {list(DATASETS)}")
    if not args.sizes or min(args.sizes) < 2 or min(args.tasks, args.real_tasks, args.queries) < 2:
        raise SystemExit("--sizes must be at least 2, --tasks, --real-tasks and --queries at least 2")
    return args


def _settings(args: argparse.Namespace, predictor: PFNPredictor, data: RealData) -> dict[str, Any]:
    record = predictor.record
    return {
        "sizes": args.sizes,
        "tasks": args.tasks,
        "real_tasks": args.real_tasks,
        "queries": args.queries,
        "datasets": args.datasets,
        "timing_queries": args.timing_queries,
        "timing_dim": TIMING_DIM,
        "ask_sizes": args.ask_sizes,
        "seed": args.seed,
        "quick": args.quick,
        "standardisation": "y -> (y - context mean) / context std (ddof 0); LL = LL in y's units + log std",
        "gp": "surrogates.botorch_models.fit_model on the whole context; posterior with observation noise",
        "pfn_weights": str(args.weights or shipped_weights_dir()),
        "pfn": {
            k: record.get(k) for k in ("config", "prior_version", "steps", "train_seconds", "validation_nll")
        },
        "lc_data": str(args.lc_data),
        "lc_settings": data.lc_settings,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by ``args``; returns the JSON document (also written to ``args.out``)."""
    started = time.perf_counter()
    predictor = PFNPredictor.load(args.weights) if args.weights else shipped_predictor()
    with tempfile.TemporaryDirectory() as workdir, torch_threads(1):
        data = load_real_data(args.datasets, args.lc_data, args.quick, Path(workdir))
        doc: dict[str, Any] = {"settings": _settings(args, predictor, data)}
        doc["quality"] = quality(predictor, data, args)
        timing_sizes = sorted({*args.sizes, GOAL_SIZE})
        doc["timing"] = {
            "prediction": time_predictions(predictor, timing_sizes, args.timing_queries, args.seed),
            "ask": time_asks(args.ask_sizes, args.seed) if args.ask_sizes else {},
        }
    doc["goal"] = goal(doc)
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pfn.json").write_text(json.dumps(doc, indent=1))
    plot(doc["quality"]["results"], args.out / "pfn.png")
    return doc


def report(doc: dict[str, Any]) -> str:
    g = doc["goal"]
    lines = [
        "prediction quality (LL and RMSE in context-standardised units; LL ± standard error over tasks):",
        format_quality(doc["quality"]["results"]),
    ]
    for dataset, by_size in doc["quality"]["skipped"].items():
        lines += [f"skipped {dataset} N={size}: {why}" for size, why in by_size.items()]
    for dataset, notes in doc["quality"]["pfn_notes"].items():
        lines += [f"PFN note on {dataset}: {note}" for note in notes]
    lines += [
        "",
        f"seconds per prediction ({doc['settings']['timing_queries']} queries, "
        f"{TIMING_DIM}-d prior function task):",
        format_timing(doc["timing"]),
        "",
        f"goal: PFN >= {GOAL_SPEEDUP:.0f}x faster than the GP at {GOAL_SIZE} observations: "
        f"{g['speedup_at_500']:.1f}x ({'yes' if g['faster'] else 'no'}); log-likelihood comparable "
        f"(PFN - GP at N in {g['ll_gap_sizes']}: {g['ll_gap']:+.3f} nats, tolerance -{LL_TOLERANCE}): "
        f"{'yes' if g['comparable_ll'] else 'no'} -> goal {'MET' if g['met'] else 'NOT met'}",
        "per data set PFN - GP LL: " + ", ".join(f"{d} {v:+.3f}" for d, v in g["ll_gap_per_dataset"].items()),
        f"PFN - GP of the median LL over tasks, averaged over the same cells: {g['ll_median_gap']:+.3f} nats",
        f"wall time {doc['wall_seconds']:.0f} s",
    ]
    return "\n".join(lines)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(report(doc))
    print(f"wrote {args.out / 'pfn.json'} and {args.out / 'pfn.png'}")
    return doc


if __name__ == "__main__":
    main()

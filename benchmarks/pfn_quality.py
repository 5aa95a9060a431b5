"""Predictive quality of the PFN and the GP: their predictions, per-task metrics and per-cell summaries."""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from benchmarks.pfn_tasks import RealData, Task, log, make_tasks
from surrogates import botorch_models as bm
from surrogates.pfn.predictor import PFNPredictor, Predictive

MODELS = ("pfn", "gp")


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
        "gp": lambda task, _: quietly(gp_predict, gp_warnings, task),
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


def quietly(fn: Callable[..., Any], seen: set[str], *args: Any) -> Any:
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
            log(
                f"{dataset} N={size}: {len(tasks)} tasks in {time.perf_counter() - start:.1f} s; median LL "
                f"PFN {cell['pfn']['ll_median']:.3f}, GP {cell['gp']['ll_median']:.3f}"
            )
        notes[dataset], gp_warnings[dataset] = sorted(dataset_notes), sorted(dataset_warnings)[:20]
    return {"results": results, "pfn_notes": notes, "gp_warnings": gp_warnings, "skipped": skipped}

"""Reporting of the PFN benchmark: the speed/log-likelihood goal, the markdown tables and the plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.pfn_quality import MODELS
from benchmarks.pfn_speed import TIMING_DIM

GOAL_SIZE, GOAL_SPEEDUP, LL_TOLERANCE = 500, 10.0, 0.1
GOAL_LL_MIN_SIZE = 200  # the LL comparison of the goal uses cells of at least this many observations


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

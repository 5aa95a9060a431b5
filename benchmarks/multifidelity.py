"""Multi-fidelity scheduling benchmark: supernas's schedulers against Optuna, Ray Tune, Syne Tune, SMAC3
and random search, on the same simulated problems (``benchmarks.mf_problems``), budgets and seeds.

Run from the repository root (the peers need ``bash benchmarks/setup_mf_peers.sh`` once)::

    python -m benchmarks.multifidelity                 # 4 problems x 10 seeds, 20 full evaluations each
    python -m benchmarks.multifidelity --quick         # 2 problems x 2 seeds, 10 full evaluations
    python -m benchmarks.multifidelity --report benchmarks/results/multifidelity.json   # table again
    python -m benchmarks.multifidelity --methods supernas-freeze_thaw --merge   # re-run one method

Every method runs on the simulated clock (``surrogates.schedulers.simulation``) with ``--workers``
asynchronous workers until it has trained ``--budget`` x 30 epochs. Its incumbent at any moment is the
lowest value it observed at any epoch of any trial. The normalised regret is (incumbent - best in the
table) / (90th percentile of final values - best), per seed of the recorded curves (seed s replays
curve seed s mod 3). Reported per budget point (in full-fidelity evaluations, and in simulated
wall-clock seconds as fractions of what random search at full fidelity needs for the whole budget):
mean regret, mean rank of each method across problems and seeds, and for our best method the
fraction of the budget it needs to match each peer's final regret. Writes a JSON and a PNG.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from benchmarks.cli import fill_defaults
from benchmarks.mf_problems import PROBLEMS, MFProblem, load_problem
from benchmarks.tasks import init_worker
from surrogates.schedulers.base import SchedulerSettings, SchedulingProblem
from surrogates.schedulers.registry import SCHEDULERS, make_scheduler
from surrogates.schedulers.simulation import Policy, RowSampler, SchedulerPolicy, Trace, simulate

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # of the budget
OURS = tuple(f"supernas-{name}" for name in sorted(SCHEDULERS))
# eta 3 and a grace period of one epoch for every rung-based method, ours and the peers'
OUR_SETTINGS = {"reduction_factor": 3.0, "grace_period": 1, "brackets": 3, "step": 1, "candidates": 512}
WORKERS = 4  # simulated workers, unless --workers says otherwise
DEFAULTS = {"problems": ",".join(PROBLEMS), "seeds": 10, "budget": 20}
QUICK = {"problems": "branin-mf,lc-fashion", "seeds": 2, "budget": 10}


def _ours(name: str) -> Callable[[MFProblem, int, RowSampler], Policy]:
    def build(problem: MFProblem, seed: int, sampler: RowSampler) -> Policy:
        scheduling = SchedulingProblem(
            problem.table.metrics, problem.directions, problem.epochs, 1, problem.space, sampler
        )
        scheduler = make_scheduler(name, scheduling, SchedulerSettings(**OUR_SETTINGS), seed)
        return SchedulerPolicy(scheduler, sampler, seed)

    return build


def methods() -> dict[str, Callable[[MFProblem, int, RowSampler], Policy]]:
    """Every method: ours, then the peers that are installed (``benchmarks.mf_peers``)."""
    from benchmarks.mf_peers import PEERS

    out = {f"supernas-{name}": _ours(name) for name in sorted(SCHEDULERS)}
    for name, build in PEERS.items():
        out[name] = lambda problem, seed, sampler, build=build: build(problem, seed)
    return out


def simulated_run(
    problem: MFProblem, method: str, seed: int, budget: int, workers: int
) -> tuple[Trace, float]:
    """``method`` on ``problem`` until it has trained ``budget`` full evaluations' worth of epochs:
    the trace, and the seconds the simulation took (the method built beforehand)."""
    sampler = RowSampler(problem.table)
    policy = methods()[method](problem, seed, sampler)
    started = time.perf_counter()
    seed_index, epochs = problem.seed_index(seed), budget * problem.epochs
    trace = simulate(policy, problem.table, sampler, seed_index, workers, epochs)
    return trace, time.perf_counter() - started


def run_one(problem_name: str, method: str, seed: int, budget: int, workers: int) -> dict[str, Any]:
    """One simulated run: the incumbent's normalised regret at each budget fraction, in epochs and in
    simulated time, and what the run cost."""
    problem = load_problem(problem_name)
    seed_index = problem.seed_index(seed)
    trace, seconds = simulated_run(problem, method, seed, budget, workers)
    best, typical = problem.best(seed_index), problem.typical_final(seed_index)
    regret = _regret_curve(trace, best, typical)  # (epochs used,)
    full_time = _random_full_time(problem, seed_index, budget, workers)
    times = np.asarray(trace.time)
    by_time = [
        float(regret[np.searchsorted(times, f * full_time, side="right") - 1])
        if np.any(times <= f * full_time)
        else 1.0
        for f in FRACTIONS
    ]
    by_epochs = [float(regret[min(int(f * budget * problem.epochs), len(regret)) - 1]) for f in FRACTIONS]
    return {
        "problem": problem_name,
        "method": method,
        "seed": seed,
        "regret_by_budget": by_epochs,
        "regret_by_time": by_time,
        "trials": len(set(trace.trial)),
        "resumes": trace.resumes,
        "simulated_seconds": float(times[-1]) if len(times) else 0.0,
        "seconds": seconds,
    }


def _regret_curve(trace: Trace, best: float, typical: float) -> np.ndarray:
    values = np.array([v[0] for v in trace.values], dtype=np.float64)
    values = np.where(np.isfinite(values), values, np.inf)
    incumbent = np.minimum.accumulate(values)
    return np.clip((incumbent - best) / max(typical - best, 1e-12), 0.0, 1.0)


def _random_full_time(problem: MFProblem, seed_index: int, budget: int, workers: int) -> float:
    """Simulated seconds random search at full fidelity needs for the budget: the mean full-curve
    time, times the budget in full evaluations, over the workers."""
    full_curve = problem.table.seconds[:, seed_index, :].sum(axis=1).mean()
    return float(full_curve * budget / workers)


def summarise(runs: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Mean regret per method and budget fraction, mean ranks, and our best method's budget ratios."""
    problems = sorted({r["problem"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    summary: dict[str, Any] = {}
    for axis in ("regret_by_budget", "regret_by_time"):
        cube = np.full((len(names), len(problems), len(seeds), len(FRACTIONS)), np.nan)
        for r in runs:
            if r["method"] in names:
                cube[names.index(r["method"]), problems.index(r["problem"]), seeds.index(r["seed"])] = r[axis]
        ranks = np.apply_along_axis(rankdata, 0, cube)  # rank 1 = lowest regret, ties averaged
        summary[axis] = {
            "mean_regret": {m: np.nanmean(cube[i], axis=1).tolist() for i, m in enumerate(names)},
            "mean_rank": {m: np.nanmean(ranks[i], axis=(0, 1)).tolist() for i, m in enumerate(names)},
        }
    final_rank = {m: summary["regret_by_budget"]["mean_rank"][m][-1] for m in names}
    ours = [m for m in names if m in OURS]
    best_ours = min(ours, key=lambda m: final_rank[m])
    summary["best_ours"] = best_ours
    summary["budget_needed"] = _budget_needed(
        summary["regret_by_budget"]["mean_regret"], best_ours, problems, names
    )
    return summary


def _budget_needed(
    mean_regret: dict[str, list[list[float]]], ours: str, problems: list[str], names: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """Per peer and problem: the smallest budget fraction at which ``ours`` (mean over seeds) is at or
    below the peer's final mean regret; None if never within the budget."""
    out: dict[str, dict[str, float | None]] = {}
    for peer in names:
        if peer in OURS:
            continue
        out[peer] = {}
        for p, problem in enumerate(problems):
            target = mean_regret[peer][p][-1]
            reached = [f for f, r in zip(FRACTIONS, mean_regret[ours][p], strict=True) if r <= target + 1e-12]
            out[peer][problem] = reached[0] if reached else None
    return out


def _table(summary: dict[str, Any], names: Sequence[str], problems: list[str]) -> str:
    by_budget = summary["regret_by_budget"]
    lines = []
    for axis, title in (
        ("regret_by_budget", "mean rank by budget used (fraction of the full evaluations; lower is better)"),
        (
            "regret_by_time",
            "mean rank by simulated wall-clock (fraction of random search's time for the budget)",
        ),
    ):
        ranks = summary[axis]["mean_rank"]
        lines += [title, "method".ljust(28) + "".join(f"{f:>7.1f}" for f in FRACTIONS)]
        for m in sorted(names, key=lambda m: ranks[m][-1]):
            lines.append(m.ljust(28) + "".join(f"{r:7.2f}" for r in ranks[m]))
        lines.append("")
    lines.append("final mean regret per problem")
    lines.append("method".ljust(28) + "".join(f"{p:>14}" for p in problems))
    for m in sorted(names, key=lambda m: by_budget["mean_rank"][m][-1]):
        lines.append(
            m.ljust(28) + "".join(f"{by_budget['mean_regret'][m][i][-1]:14.4f}" for i in range(len(problems)))
        )
    lines.append("")
    best = summary["best_ours"]
    lines.append(f"budget fraction {best} needs to match each peer's final regret (goal: <= 0.5)")
    for peer, per_problem in summary["budget_needed"].items():
        cells = "".join(f"{('-' if v is None else f'{v:.1f}'):>14}" for v in per_problem.values())
        lines.append(peer.ljust(28) + cells)
    return "\n".join(lines)


def _in_examples(runs: list[dict[str, Any]], names: Sequence[str], problems: list[str]) -> str:
    """Each method's regret at half and at the whole budget on the recorded tables, in validation
    examples: how many more the incumbent misclassified than the table's best config (mean over seeds)."""
    lines = ["regret in validation examples at 50% / 100% of the budget (recorded tables; mean over seeds)"]
    recorded = [p for p in problems if p.startswith("lc-")]
    lines.append("method".ljust(28) + "".join(f"{p:>18}" for p in recorded))
    tables = {p: load_problem(p) for p in recorded}
    half = FRACTIONS.index(0.5)
    for m in names:
        cells = []
        for p in recorded:
            mine = [r for r in runs if r["method"] == m and r["problem"] == p]
            examples = np.array([_examples_per_regret(tables[p], r["seed"]) for r in mine])  # (seeds,)
            off = np.array([r["regret_by_budget"] for r in mine]) * examples[:, None]  # (seeds, fractions)
            cells.append(f"{off[:, half].mean():9.1f} /{off[:, -1].mean():6.1f}")
        lines.append(m.ljust(28) + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def _examples_per_regret(problem: MFProblem, seed: int) -> float:
    """Validation examples per unit of normalised regret, for the table's seed that ``seed`` runs on."""
    seed_index = problem.seed_index(seed)
    return (problem.typical_final(seed_index) - problem.best(seed_index)) / problem.one_example(seed_index)


def _plot(summary: dict[str, Any], names: Sequence[str], problems: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(problems) + 1, figsize=(4.2 * (len(problems) + 1), 3.6))
    mean_regret = summary["regret_by_budget"]["mean_regret"]
    for i, problem in enumerate(problems):
        ax = axes[i]
        for m in names:
            ax.plot(
                FRACTIONS, np.maximum(np.asarray(mean_regret[m])[i], 1e-4), label=m, lw=2 if m in OURS else 1
            )
        ax.set_yscale("log")
        ax.set_title(problem)
        ax.set_xlabel("budget fraction")
    axes[0].set_ylabel("mean normalised regret")
    for m in names:
        axes[-1].plot(
            FRACTIONS, summary["regret_by_budget"]["mean_rank"][m], label=m, lw=2 if m in OURS else 1
        )
    axes[-1].set_title("mean rank")
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", help=f"comma-separated, among {list(PROBLEMS)}")
    parser.add_argument("--methods", help="comma-separated (default: ours and every installed peer)")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--budget", type=int, help="full-fidelity evaluations per run")
    parser.add_argument("--workers", type=int, default=WORKERS, help="simulated workers")
    parser.add_argument("--jobs", type=int, default=1, help="processes running simulations")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, help="JSON to write (default benchmarks/results/multifidelity.json)"
    )
    parser.add_argument("--report", type=Path, help="print the table of (and re-plot) a JSON written before")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the methods run now in --out's JSON (same problems, seeds, budget, workers)",
    )
    args = parser.parse_args(argv)
    fill_defaults(args, DEFAULTS, QUICK)
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    known = methods()
    names = [m.strip() for m in args.methods.split(",")] if args.methods else list(known)
    problems = [p.strip() for p in args.problems.split(",")]
    for name in names:
        if name not in known:
            raise SystemExit(f"unknown method {name!r}; known: {list(known)}")
    for problem in problems:
        if problem not in PROBLEMS:
            raise SystemExit(f"unknown problem {problem!r}; known: {list(PROBLEMS)}")
    jobs = [(p, m, s, args.budget, args.workers) for p in problems for m in names for s in range(args.seeds)]
    started = time.perf_counter()
    runs = _execute(jobs, args.jobs)
    out = args.out or RESULTS / ("multifidelity_quick.json" if args.quick else "multifidelity.json")
    doc = {
        "benchmark": "multifidelity",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": multiprocessing.cpu_count()},
        "settings": {
            "problems": problems,
            "methods": names,
            "seeds": args.seeds,
            "budget_full_evaluations": args.budget,
            "workers": args.workers,
            "fractions": list(FRACTIONS),
            "our_settings": OUR_SETTINGS,
        },
        "summary": {},
        "runs": runs,
        "seconds": time.perf_counter() - started,
    }
    if args.merge:
        doc = merge(json.loads(out.read_text()), doc)
    names = doc["settings"]["methods"]
    doc["summary"] = summarise(doc["runs"], names)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    _plot(doc["summary"], names, sorted(problems), out.with_suffix(".png"))
    print(_table(doc["summary"], names, sorted(problems)))
    print(f"\nwrote {out} and {out.with_suffix('.png')} in {time.perf_counter() - started:.0f} s")
    return doc


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the runs of ``new``'s methods replaced (the summary is recomputed by the caller);
    ``new``'s settings and time are kept under ``merged_runs``. Both must share the problems, seeds,
    budget and workers."""
    for key in ("problems", "seeds", "budget_full_evaluations", "workers"):
        if _canonical(old["settings"][key]) != _canonical(new["settings"][key]):
            raise SystemExit(f"--merge: {key} differ ({old['settings'][key]} vs {new['settings'][key]})")
    rerun = set(new["settings"]["methods"])
    old["runs"] = [r for r in old["runs"] if r["method"] not in rerun] + new["runs"]
    old["settings"]["methods"] += [
        m for m in new["settings"]["methods"] if m not in old["settings"]["methods"]
    ]
    old["settings"]["our_settings"] = new["settings"]["our_settings"]
    merged = {"methods": sorted(rerun), "created": new["created"], "seconds": new["seconds"]}
    old.setdefault("merged_runs", []).append(merged)
    return old


def _canonical(setting: Any) -> Any:
    return sorted(setting) if isinstance(setting, list) else setting


def _execute(jobs: list[tuple[str, str, int, int, int]], processes: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []

    def progress(r: dict[str, Any]) -> None:
        runs.append(r)
        where = f"{r['problem']} {r['method']} seed {r['seed']}"
        print(
            f"[{len(runs)}/{len(jobs)}] {where}: {r['regret_by_budget'][-1]:.4f}, {r['seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    if processes == 1:
        init_worker()
        for job in jobs:
            progress(run_one(*job))
        return runs
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=init_worker) as pool:
        for future in as_completed([pool.submit(run_one, *job) for job in jobs]):
            progress(future.result())
    return runs


def report(path: Path) -> dict[str, Any]:
    """The table and plot of a result written before, summarised again (no simulation)."""
    doc = json.loads(path.read_text())
    names, problems = doc["settings"]["methods"], sorted(doc["settings"]["problems"])
    doc["summary"] = summarise(doc["runs"], names)
    _plot(doc["summary"], names, problems, path.with_suffix(".png"))
    print(_table(doc["summary"], names, problems))
    print()
    print(_in_examples(doc["runs"], names, problems))
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    return report(args.report) if args.report else run(args)


if __name__ == "__main__":
    main()

"""Where one simulated multi-fidelity run spent its epochs: a look inside ``benchmarks.multifidelity``.

``python -m benchmarks.mf_trace --problem lc-mnist1d --method supernas-freeze_thaw --seed 0`` runs one
method on one problem and seed as the benchmark does and prints, at half and at all of the budget,
the incumbent's regret, how many trials were started, how many epochs the table's best configs got,
and how many trials got each number of epochs; then when the best configs reach their best value.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from benchmarks.mf_problems import PROBLEMS, load_problem
from benchmarks.multifidelity import DEFAULTS, WORKERS, simulated_run
from surrogates.schedulers.simulation import Trace

SHOWN = 6  # best configs of the table listed


def trace_run(problem_name: str, method: str, seed: int) -> tuple[Trace, np.ndarray, float, float]:
    """The run's trace, the table's values of its seed (C, E), and the regret's best and typical."""
    problem = load_problem(problem_name)
    seed_index = problem.seed_index(seed)
    trace, _ = simulated_run(problem, method, seed, DEFAULTS["budget"], WORKERS)
    values = problem.table.values[:, seed_index, :, 0]
    return trace, values, problem.best(seed_index), problem.typical_final(seed_index)


def describe(trace: Trace, values: np.ndarray, best: float, typical: float) -> list[str]:
    rank = np.empty(len(values), dtype=int)
    rank[np.argsort(values.min(axis=1), kind="stable")] = np.arange(len(values))  # 0 = best config
    rows, epochs = np.array(trace.row), np.array(trace.epoch)
    seen_values = np.array([v[0] for v in trace.values])
    lines = []
    for label, n in (("half", len(rows) // 2), ("all", len(rows))):
        r, e, v = rows[:n], epochs[:n], seen_values[:n]
        trained = {int(row): int(e[r == row].max()) for row in np.unique(r)}
        incumbent = int(np.argmin(v))
        lines.append(
            f"{label} of the budget ({n} epochs): regret {(v[incumbent] - best) / (typical - best):.4f}, "
            f"{len(trained)} trials; incumbent: config ranked {rank[r[incumbent]]} at epoch {e[incumbent]}"
        )
        best_seen = sorted(trained, key=lambda row: rank[row])[:SHOWN]
        lines.append(
            "  best configs started (rank: epochs trained): "
            + ", ".join(f"{rank[row]}: {trained[row]}" for row in best_seen)
        )
        counts = np.bincount(list(trained.values()))
        lines.append(
            "  trials by epochs trained: " + ", ".join(f"{k}: {c}" for k, c in enumerate(counts) if c)
        )
    top = np.argsort(values.min(axis=1), kind="stable")[:10]
    peaks = [int(values[t].argmin()) + 1 for t in top]
    lines.append(f"the 10 best configs reach their best at epochs {peaks}")
    lines.append(f"their values at epoch 1: {np.round(values[top, 0], 3).tolist()}")
    lines.append(f"their best values: {np.round(values[top].min(axis=1), 3).tolist()}")
    return lines


def main(argv: Sequence[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=PROBLEMS, default="lc-mnist1d")
    parser.add_argument("--method", default="supernas-freeze_thaw")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    lines = describe(*trace_run(args.problem, args.method, args.seed))
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()

"""Summary, printed table and figure of a strategies benchmark.

- final regret: hypervolume regret after the last evaluation, mean and sample std over seeds;
- best peer: the peer with the lowest mean final regret on the problem; its mean final regret is the
  target, and "evals to target" is the first evaluation at which a contender's *mean* regret curve (over
  seeds) is at or below it (the best peer's own count is at most the budget by construction);
- ratio: a contender's evals to target over the best peer's (below 1: fewer evaluations than the best
  peer; "> x" when the target is not reached within the budget);
- rank: of the mean final regret among the contenders on a problem (ties share the mean rank); the
  average rank is over the problems the contender ran on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

_TOL = 1e-12


def evals_to_reach(mean_curve: np.ndarray, target: float) -> int | None:
    """First evaluation count (1-based) at which ``mean_curve`` is at or below ``target``."""
    hits = np.flatnonzero(mean_curve <= target + _TOL)
    return int(hits[0]) + 1 if hits.size else None


def summarise(curves: dict[str, dict[str, np.ndarray]], peers: Sequence[str]) -> dict[str, Any]:
    """curves: problem -> contender -> regrets (seeds, evals).  Returns the JSON summary."""
    summary: dict[str, Any] = {"problems": {}, "average_rank": {}}
    ranks: dict[str, list[float]] = {}
    for problem, by_contender in curves.items():
        rows: dict[str, dict[str, Any]] = {}
        for name, regrets in by_contender.items():
            final = regrets[:, -1]
            rows[name] = {
                "seeds": len(final),
                "final_regret_mean": float(final.mean()),
                "final_regret_std": float(final.std(ddof=1)) if len(final) > 1 else 0.0,
            }
        ran_peers = [p for p in peers if p in rows]
        best_peer = min(ran_peers, key=lambda p: rows[p]["final_regret_mean"]) if ran_peers else None
        if best_peer is not None:
            target = rows[best_peer]["final_regret_mean"]
            peer_evals = evals_to_reach(by_contender[best_peer].mean(axis=0), target)
            for name, row in rows.items():
                budget = by_contender[name].shape[1]
                n = evals_to_reach(by_contender[name].mean(axis=0), target)
                row["evals_to_best_peer"] = n
                row["ratio_vs_best_peer"] = n / peer_evals if n is not None and peer_evals else None
                row["ratio_vs_best_peer_lower_bound"] = None if n is not None else budget / (peer_evals or 1)
        names = list(rows)
        for name, rank in zip(names, rankdata([rows[n]["final_regret_mean"] for n in names]), strict=True):
            rows[name]["rank"] = float(rank)
            ranks.setdefault(name, []).append(float(rank))
        summary["problems"][problem] = {"best_peer": best_peer, "contenders": rows}
    summary["average_rank"] = {name: float(np.mean(r)) for name, r in ranks.items()}
    return summary


def _fmt_evals(row: dict[str, Any]) -> tuple[str, str]:
    if "evals_to_best_peer" not in row:
        return "-", "-"
    if row["evals_to_best_peer"] is None:
        return "not reached", f"> {row['ratio_vs_best_peer_lower_bound']:.2f}"
    return str(row["evals_to_best_peer"]), f"{row['ratio_vs_best_peer']:.2f}"


def format_table(
    summary: dict[str, Any], seconds: dict[str, dict[str, float]], errors: dict[str, Any]
) -> str:
    """The printed table: one block per problem, contenders sorted by mean final regret."""
    header = (
        f"{'problem':<14} {'contender':<16} {'final HV regret':>21} {'evals to best peer':>19} "
        f"{'ratio':>7} {'rank':>5} {'avg rank':>8} {'s/seed':>8}"
    )
    lines = [header, "-" * len(header)]
    for problem, block in summary["problems"].items():
        rows = block["contenders"]
        for name in sorted(rows, key=lambda n: rows[n]["final_regret_mean"]):
            row = rows[name]
            evals, ratio = _fmt_evals(row)
            regret = f"{row['final_regret_mean']:.4f} ± {row['final_regret_std']:.4f}"
            mark = " *" if name == block["best_peer"] else ""
            lines.append(
                f"{problem:<14} {name + mark:<16} {regret:>21} {evals:>19} {ratio:>7} {row['rank']:>5.1f} "
                f"{summary['average_rank'][name]:>8.2f} {seconds[problem].get(name, float('nan')):>8.2f}"
            )
        for name, error in sorted(errors.get(problem, {}).items()):
            lines.append(f"{problem:<14} {name:<16} failed: {error}")
        lines.append("")
    lines.append("* best peer (lowest mean final regret among the peers); regret: mean ± std over seeds")
    return "\n".join(lines)


def format_timing(timing: dict[str, dict[str, Any]]) -> str:
    sizes = sorted({int(s) for t in timing.values() for s in t if s.isdigit()})
    lines = [f"{'strategy':<16} " + " ".join(f"{f'ask @ {s} obs':>14}" for s in sizes)]
    for name, t in sorted(timing.items()):
        cells = []
        for s in sizes:
            entry = t.get(str(s))
            if isinstance(entry, dict) and "seconds" in entry:
                cells.append(f"{entry['seconds']:>13.4f}s")
            else:
                cells.append(f"{'skipped' if isinstance(entry, dict) else '-':>14}")
        suffix = f"  failed: {t['error']}" if "error" in t else ""
        lines.append(f"{name:<16} " + " ".join(cells) + suffix)
    return "\n".join(lines)


def plot(curves: dict[str, dict[str, np.ndarray]], peers: Sequence[str], path: Path) -> None:
    """One panel per problem: mean regret vs evaluations (log y), shaded ± one standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(curves)
    cols = min(2, len(problems))
    rows = math.ceil(len(problems) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    names = sorted({n for c in curves.values() for n in c})
    tab20 = plt.get_cmap("tab20").colors
    palette = [*tab20[0::2], *tab20[1::2]]  # the 10 strong colours, then their light variants
    colours = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    handles: dict[str, Any] = {}
    for ax, problem in zip(axes.flat, problems, strict=False):
        positive = [r[r > 0] for r in curves[problem].values()]
        floor = min((p.min() for p in positive if p.size), default=1e-6) / 2
        for name, regrets in sorted(curves[problem].items()):
            x = np.arange(1, regrets.shape[1] + 1)
            mean = regrets.mean(axis=0)
            se = regrets.std(axis=0, ddof=1) / math.sqrt(len(regrets)) if len(regrets) > 1 else 0 * mean
            colour = colours[name]
            style = "--" if name in peers else "-"
            (handles[name],) = ax.plot(
                x, np.maximum(mean, floor), style, color=colour, label=name, linewidth=1.5
            )
            ax.fill_between(
                x, np.maximum(mean - se, floor), np.maximum(mean + se, floor), color=colour, alpha=0.15
            )
        ax.set_yscale("log")
        ax.set_title(problem)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume regret (normalised)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(problems) :]:
        ax.set_visible(False)
    legend_rows = math.ceil(len(names) / 7)
    fig.legend(
        [handles[n] for n in names],
        names,
        loc="lower center",
        ncol=min(7, len(names)),
        fontsize=8,
        title="solid: supernas strategies; dashed: peers; band: mean ± 1 standard error over seeds",
        title_fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.04 + 0.035 * legend_rows, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)

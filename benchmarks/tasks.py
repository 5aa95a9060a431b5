"""One unit of benchmark work (a contender on a problem with a seed, or an ``ask`` timing) and its execution.

Tasks run in a process pool (one thread per worker, so ``--jobs`` workers share the cores without
oversubscription) or in-process; a failing task is reported, not raised, so one broken strategy does
not stop the benchmark.
"""

from __future__ import annotations

import os
import traceback
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.contenders import RunResult, run_strategy, time_ask
from benchmarks.dynast_peer import DYNAST_PEER, run_dynast
from benchmarks.hypervolume import regret_curve
from benchmarks.peers import OPTUNA_PEERS, run_optuna
from benchmarks.problems import get_problem

STRATEGY, PEER, TIMING = "strategy", "peer", "timing"
_EXPENSIVE = ("gp", "botorch", "linas", "default")  # name fragments of contenders run first


@dataclass(frozen=True)
class Task:
    kind: str  # STRATEGY, PEER or TIMING
    contender: str
    problem: str = ""
    seed: int = 0
    evals: int = 0
    seeds: tuple[int, ...] = ()  # DyNAS-T: every seed in one task (one interpreter start), else empty
    batch: int = 1
    sizes: tuple[int, ...] = ()  # TIMING: history sizes
    python: str = ""  # DyNAS-T's interpreter

    @property
    def cost_hint(self) -> int:
        """Rough order of cost, to start the slow tasks first."""
        if self.kind == TIMING:
            return 0
        if self.seeds:
            return 3
        return 2 if any(part in self.contender for part in _EXPENSIVE) else 1


def init_worker() -> None:
    """Limit a pool worker to one thread (BLAS, OpenMP, torch)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


def _run(task: Task) -> list[RunResult]:
    bp = get_problem(task.problem, task.evals)
    if task.kind == STRATEGY:
        return [run_strategy(bp, task.contender, task.seed, task.evals, task.batch)]
    if task.contender in OPTUNA_PEERS:
        return [run_optuna(bp, task.contender, task.seed, task.evals)]
    if task.contender == DYNAST_PEER:
        return run_dynast(bp, task.python, task.seeds or (task.seed,), task.evals)
    raise KeyError(f"unknown peer {task.contender!r}")


def execute(task: Task) -> list[dict[str, Any]]:
    """Run a task: one result per seed, holding the regret curve (or the timings), or the error."""
    seeds = task.seeds or (task.seed,)
    outs: list[dict[str, Any]] = [{"task": {**asdict(task), "seed": seed, "seeds": ()}} for seed in seeds]
    try:
        if task.kind == TIMING:
            outs[0]["timing"] = time_ask(task.contender, task.sizes)
            return outs
        bp = get_problem(task.problem, task.evals)
        for out, result in zip(outs, _run(task), strict=True):
            regret = regret_curve(bp.normalise(result.metrics), bp.max_hv)
            out.update(
                regret=regret.tolist(),
                final_hv=bp.max_hv - float(regret[-1]),
                seconds=result.seconds,
                distinct_configs=len({str(sorted(c.items())) for c in result.configs}),
                info=result.info,
            )
    except Exception as exc:
        for out in outs:
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["traceback"] = traceback.format_exc(limit=8)
    return outs

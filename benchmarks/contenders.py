"""Running a registered supernas strategy on a benchmark problem, and timing its ``ask``.

A strategy is driven as the service drives it: each ``ask`` gets every observation so far (state
``succeeded``, metrics from the problem) and no pending configs, and returns ``batch`` configs that are
then evaluated together; the last batch is cut to the budget.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.problems import BenchmarkProblem, Metrics, get_problem
from supernas.records import Observation
from supernas.states import TrialState
from surrogates.registry import STRATEGIES
from surrogates.strategy import SearchProblem

TIMING_PROBLEM = "nb201-latency"
CHEAP_ASK_S = 2.0  # an ask faster than this is repeated 3 times and the median kept
SLOW_ASK_S = 300.0  # after an ask slower than this, larger histories are not timed


@dataclass
class RunResult:
    """The evaluations of one contender on one problem with one seed, in order."""

    configs: list[dict[str, Any]]
    metrics: list[Metrics]
    seconds: float  # wall time of the whole run
    info: dict[str, Any] = field(default_factory=dict)


def observations(configs: Sequence[dict[str, Any]], metrics: Sequence[Metrics]) -> list[Observation]:
    return [
        Observation(number=i, config=c, state=TrialState.SUCCEEDED, metrics=dict(m))
        for i, (c, m) in enumerate(zip(configs, metrics, strict=True))
    ]


def run_strategy(bp: BenchmarkProblem, name: str, seed: int, evals: int, batch: int) -> RunResult:
    """Run the registered strategy ``name`` for ``evals`` evaluations, asking ``batch`` configs at a time."""
    strategy = STRATEGIES[name](bp.problem, seed)
    history: list[Observation] = []
    configs: list[dict[str, Any]] = []
    metrics: list[Metrics] = []
    ask_seconds = 0.0
    start = time.perf_counter()
    while len(history) < evals:
        n = min(batch, evals - len(history))
        t = time.perf_counter()
        suggestions = strategy.ask(list(history), [], n)
        ask_seconds += time.perf_counter() - t
        if len(suggestions) != n:
            raise RuntimeError(f"{name}.ask(n={n}) returned {len(suggestions)} suggestions")
        for s in suggestions:
            config = bp.problem.space.validate(s.config)
            m = bp.evaluate(config)
            history.append(
                Observation(number=len(history), config=config, state=TrialState.SUCCEEDED, metrics=m)
            )
            configs.append(config)
            metrics.append(m)
    return RunResult(configs, metrics, time.perf_counter() - start, {"ask_seconds": ask_seconds})


def time_ask(name: str, sizes: Sequence[int], seed: int = 0) -> dict[str, Any]:
    """Seconds per ``ask(n=1)`` with histories of ``sizes`` random ``nb201-latency`` configs.

    One repetition per size, or the median of 3 when one takes under ``CHEAP_ASK_S`` seconds; sizes
    after one whose ask took over ``SLOW_ASK_S`` seconds are skipped (and say so).
    """
    bp = get_problem(TIMING_PROBLEM, max(sizes) + 1)
    table_configs = bp.problem.space.enumerate()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table_configs))
    out: dict[str, Any] = {}
    for size in sizes:
        slow = [s for s, t in out.items() if t.get("seconds", 0.0) > SLOW_ASK_S]
        if slow:
            out[str(size)] = {"skipped": f"ask at {slow[0]} observations took over {SLOW_ASK_S:.0f} s"}
            continue
        configs = [table_configs[i] for i in order[:size]]
        history = observations(configs, [bp.evaluate(c) for c in configs])
        problem = SearchProblem(bp.problem.space, bp.problem.objectives, max_trials=size + 1)
        reps: list[float] = []
        while len(reps) < (3 if reps and reps[0] < CHEAP_ASK_S else 1):
            strategy = STRATEGIES[name](problem, seed)
            t = time.perf_counter()
            strategy.ask(history, [], 1)
            reps.append(time.perf_counter() - t)
        out[str(size)] = {"seconds": statistics.median(reps), "repetitions": len(reps)}
    return out

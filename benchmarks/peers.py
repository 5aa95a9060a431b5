"""Optuna's samplers as peers, each run natively through ask/tell on its own study.

Settings (recorded in the JSON by ``peer_settings``):

- ``optuna-nsga2``: ``NSGAIISampler(population_size=max(4, min(50, evals // 5)), seed)``: Optuna's
  default population of 50 would make a 50-evaluation budget a single random generation, so the
  population is 10 at 50 evaluations (5 generations); other settings are Optuna's defaults.
- ``optuna-tpe``: ``TPESampler(multivariate=True, seed)``.
- ``optuna-gp``: ``GPSampler(deterministic_objective=True, seed)`` (every problem here is deterministic).
- ``optuna-random``: ``RandomSampler(seed)``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

from benchmarks.contenders import RunResult
from benchmarks.problems import BenchmarkProblem
from search_spaces.params import Categorical, Float, Integer, ParamSpace

OPTUNA_PEERS = ("optuna-nsga2", "optuna-tpe", "optuna-gp", "optuna-random")


def nsga2_population(evals: int) -> int:
    return max(4, min(50, evals // 5))


def peer_settings(peer: str, evals: int) -> dict[str, Any]:
    return {
        "optuna-nsga2": {"sampler": "NSGAIISampler", "population_size": nsga2_population(evals)},
        "optuna-tpe": {"sampler": "TPESampler", "multivariate": True},
        "optuna-gp": {"sampler": "GPSampler", "deterministic_objective": True},
        "optuna-random": {"sampler": "RandomSampler"},
    }[peer]


def _sampler(peer: str, seed: int, evals: int) -> Any:
    import optuna

    makers: dict[str, Callable[[], Any]] = {
        "optuna-nsga2": lambda: optuna.samplers.NSGAIISampler(
            population_size=nsga2_population(evals), seed=seed
        ),
        "optuna-tpe": lambda: optuna.samplers.TPESampler(multivariate=True, seed=seed),
        "optuna-gp": lambda: optuna.samplers.GPSampler(deterministic_objective=True, seed=seed),
        "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    return makers[peer]()


def distributions(space: ParamSpace) -> dict[str, Any]:
    """Optuna distributions of a space without conditions."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for p in space.params:
        if p.condition is not None:
            raise NotImplementedError("the Optuna peers do not handle conditional parameters")
        if isinstance(p, Categorical):
            out[p.name] = d.CategoricalDistribution(p.choices)
        elif isinstance(p, Integer):
            out[p.name] = d.IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Float):
            out[p.name] = d.FloatDistribution(p.low, p.high, log=p.log)
    return out


def run_optuna(bp: BenchmarkProblem, peer: str, seed: int, evals: int) -> RunResult:
    """``evals`` trials of ``study.ask(distributions)`` and ``study.tell(trial, values)``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(
        directions=[o.direction.value for o in bp.objectives], sampler=_sampler(peer, seed, evals)
    )
    dists = distributions(bp.problem.space)
    configs, metrics = [], []
    start = time.perf_counter()
    for _ in range(evals):
        trial = study.ask(dists)
        config = dict(trial.params)
        m = bp.evaluate(config)
        study.tell(trial, [m[o.metric.value] for o in bp.objectives])
        configs.append(config)
        metrics.append(m)
    return RunResult(configs, metrics, time.perf_counter() - start)

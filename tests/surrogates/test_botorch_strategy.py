"""BoTorchStrategy: the shared contract, and what a GP strategy must do better than chance on the toy."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from botorch.exceptions import ModelFittingError
from strategy_contract import (
    ACC,
    CONTRACT_PROBLEMS,
    LAT,
    MIXED_SPACE,
    toy_history,
    toy_metrics,
)

from search_spaces.params import Categorical, Float, Integer, ParamSpace
from search_spaces.spec import Constraint
from supernas.objectives import Metric
from supernas.records import Observation
from supernas.states import TrialState
from surrogates import botorch_models as bm
from surrogates.botorch_strategy import BoTorchStrategy
from surrogates.neighbours import mutate, perturb
from surrogates.observations import config_key
from surrogates.strategy import SearchProblem

SINGLE = CONTRACT_PROBLEMS["single"]
TWO = CONTRACT_PROBLEMS["two_objectives"]
LATENCY_AT_MOST_3 = Constraint(metric=Metric.LATENCY_MS, op="<=", value=3.0)


def _usable(history: list[Observation]) -> list[Observation]:
    return [
        o
        for o in history
        if o.state in (TrialState.SUCCEEDED, TrialState.INFEASIBLE) and np.isfinite(o.metrics["accuracy"])
    ]


def test_initial_design_walks_one_sobol_sequence_without_predictions() -> None:
    history = toy_history(TWO, 5)  # 3 usable observations, fewer than the initial design's 10
    strategy = BoTorchStrategy(TWO, seed=0)
    pair = strategy.ask(history, [], 2)
    assert all(not s.predictions and s.info["acquisition"] == "sobol" for s in pair)
    first = strategy.ask(history, [], 1)[0]
    second = strategy.ask(history, [first.config], 1)[0]
    assert [first.config, second.config] == [s.config for s in pair]


def test_single_objective_suggestions_beat_random_configs() -> None:
    history = toy_history(SINGLE, 30)
    batch = BoTorchStrategy(SINGLE, seed=0).ask(history, [], 4)
    assert all(s.info["acquisition"] == "qLogNEI" for s in batch)
    suggested = np.mean([toy_metrics(s.config)["accuracy"] for s in batch])
    rng = np.random.default_rng(1)
    random4 = np.mean([toy_metrics(MIXED_SPACE.sample(rng))["accuracy"] for _ in range(4)])
    random256 = np.mean([toy_metrics(MIXED_SPACE.sample(rng))["accuracy"] for _ in range(256)])
    assert suggested > random4
    assert suggested > random256 + 0.1, (suggested, random256)


def test_predictions_are_in_metric_units() -> None:
    history = toy_history(TWO, 40)
    strategy = BoTorchStrategy(TWO, seed=0)
    observed = _usable(history)
    latencies = [o.metrics["latency_ms"] for o in observed]
    for suggestion in strategy.ask(history, [], 2):
        latency, accuracy = suggestion.predictions["latency_ms"], suggestion.predictions["accuracy"]
        true = toy_metrics(suggestion.config)
        assert 0 < latency.mean < 1.5 * max(latencies)  # not negated, not standardised
        assert abs(latency.mean - true["latency_ms"]) < 3 * latency.std + 0.5
        assert 0.3 < accuracy.mean < 1.2
        assert abs(accuracy.mean - true["accuracy"]) < 3 * accuracy.std + 0.05

    predicted = strategy.predict(history, [o.config for o in observed[:8]])
    span = max(latencies) - min(latencies)
    for obs, prediction in zip(observed[:8], predicted, strict=True):
        assert abs(prediction["latency_ms"].mean - obs.metrics["latency_ms"]) < 0.05 * span
        assert abs(prediction["accuracy"].mean - obs.metrics["accuracy"]) < 0.01


def test_constrained_suggestions_are_mostly_feasible() -> None:
    problem = SearchProblem(MIXED_SPACE, (ACC, LAT), (LATENCY_AT_MOST_3,))
    history = toy_history(problem, 40)
    feasible_share = np.mean([o.state == TrialState.SUCCEEDED for o in _usable(history)])
    assert feasible_share < 0.3  # a small feasible region
    batch = BoTorchStrategy(problem, seed=0).ask(history, [], 4)
    assert all(s.info["acquisition"] == "qLogNEHVI" for s in batch)
    feasible = [toy_metrics(s.config)["latency_ms"] <= 3.0 for s in batch]
    assert sum(feasible) >= 3, [toy_metrics(s.config)["latency_ms"] for s in batch]


def test_with_no_feasible_observation_it_seeks_feasibility() -> None:
    problem = SearchProblem(MIXED_SPACE, (ACC,), (LATENCY_AT_MOST_3,))
    rng = np.random.default_rng(3)
    history: list[Observation] = []
    while len(history) < 20:
        config = MIXED_SPACE.sample(rng)
        metrics = toy_metrics(config)
        if metrics["latency_ms"] > 3.0:
            history.append(Observation(len(history), config, TrialState.INFEASIBLE, metrics, 1.0))
    batch = BoTorchStrategy(problem, seed=0).ask(history, [], 2)
    assert all(s.info["acquisition"] == "qLogPoF" for s in batch)
    assert len({config_key(s.config) for s in batch}) == 2


def test_pending_configs_change_the_next_suggestion() -> None:
    history = toy_history(TWO, 30)
    strategy = BoTorchStrategy(TWO, seed=0)
    first = strategy.ask(history, [], 1)[0]
    second = strategy.ask(history, [first.config], 1)[0]
    assert second.info["acquisition"] == "qLogNEHVI"
    assert second.config != first.config


def test_a_thousand_observations_train_on_at_most_256() -> None:
    history = toy_history(TWO, 1000)
    start = time.perf_counter()
    (suggestion,) = BoTorchStrategy(TWO, seed=0).ask(history, [], 1)
    elapsed = time.perf_counter() - start
    assert suggestion.info["n_train"] <= 256
    assert suggestion.predictions
    assert elapsed < 120, elapsed


def test_the_training_cap_keeps_the_feasible_front() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(600, 2))  # (N, M)
    feasible = rng.random(600) < 0.7  # (N,)
    rows = bm.select_training_points(y, feasible, 256, np.random.default_rng(1))
    front = np.flatnonzero(feasible)[bm.is_non_dominated(bm.as_tensor(y[feasible])).numpy()]
    assert len(rows) == len(set(rows)) == 256
    assert set(front) <= set(rows)
    assert np.array_equal(rows, bm.select_training_points(y, feasible, 256, np.random.default_rng(1)))


def test_a_small_finite_space_is_searched_exhaustively() -> None:
    space = ParamSpace([Categorical("a", (1, 2, 3, 4), ordered=True), Integer("b", 0, 3)])
    configs = space.enumerate()
    history = [
        Observation(i, c, TrialState.SUCCEEDED, {"accuracy": float(i)}, 1.0)
        for i, c in enumerate(configs[:-1])
    ]
    strategy = BoTorchStrategy(SearchProblem(space, (ACC,)), seed=0)
    assert strategy.ask(history, [], 1)[0].config == configs[-1]
    pair = strategy.ask(history, [], 2)
    assert pair[0].config == configs[-1] and pair[1].info["reason"] == "space exhausted"


@pytest.mark.parametrize("neighbour_of", [mutate, perturb])
def test_neighbours_stay_valid_under_conditions(neighbour_of: object) -> None:
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(200):
        config = MIXED_SPACE.sample(rng)
        neighbour = neighbour_of(MIXED_SPACE, config, rng)  # type: ignore[operator]
        assert MIXED_SPACE.validate(neighbour) == neighbour
        changed += neighbour != config
    assert changed > 180


def test_local_search_finds_a_better_acquisition_value_than_the_random_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 6-D bowl whose optimum needs every coordinate near 0.5: random candidates rarely come close."""
    space = ParamSpace([Float(f"x{i}", 0.0, 1.0) for i in range(6)])
    problem = SearchProblem(space=space, objectives=(ACC,))
    rng = np.random.default_rng(0)

    def bowl(config: dict[str, float]) -> dict[str, float]:
        return {"accuracy": -sum((v - 0.5) ** 2 for v in config.values())}

    history = [
        Observation(number=i, config=c, state=TrialState.SUCCEEDED, metrics=bowl(c))
        for i, c in enumerate(space.sample(rng) for _ in range(20))
    ]
    searched = BoTorchStrategy(problem, seed=0).ask(history, [], 1)[0]
    monkeypatch.setattr(BoTorchStrategy, "_local_search", lambda self, acq, c, X, v, seen, n, rng: (c, X, v))
    pool_only = BoTorchStrategy(problem, seed=0).ask(history, [], 1)[0]
    assert searched.info["n_candidates"] == pool_only.info["n_candidates"] + 1  # the best neighbour
    assert searched.acquisition_value > pool_only.acquisition_value


def test_a_failed_fit_falls_back_to_sobol(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: object) -> None:
        raise ModelFittingError("all attempts failed")

    monkeypatch.setattr(bm, "fit_model", fail)
    with caplog.at_level(logging.WARNING, logger="surrogates.botorch_strategy"):
        batch = BoTorchStrategy(TWO, seed=0).ask(toy_history(TWO, 30), [], 2)
    assert all(s.info["acquisition"] == "sobol" and "ModelFittingError" in s.info["reason"] for s in batch)
    assert "using Sobol" in caplog.text

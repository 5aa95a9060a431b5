"""Every registered strategy passes the shared contract on every contract problem."""

from __future__ import annotations

import pytest
from strategy_contract import CONTRACT_PROBLEMS, check_contract

from surrogates.registry import STRATEGIES


@pytest.mark.parametrize("problem_name", sorted(CONTRACT_PROBLEMS))
@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
def test_strategy_contract(strategy_name: str, problem_name: str) -> None:
    check_contract(STRATEGIES[strategy_name], CONTRACT_PROBLEMS[problem_name])


def test_default_picks_by_space_size_budget_and_history() -> None:
    from dataclasses import replace

    from strategy_contract import MIXED_SPACE, toy_history

    from search_spaces.params import Categorical, ParamSpace
    from surrogates.botorch_strategy import BoTorchStrategy
    from surrogates.default import DefaultStrategy, mostly_one_hot
    from surrogates.linas import LinasStrategy
    from surrogates.optuna_samplers import TPEStrategy
    from surrogates.random_search import RandomStrategy
    from surrogates.sobol import SobolStrategy

    problem = CONTRACT_PROBLEMS["two_objectives"]
    tiny = replace(problem, space=ParamSpace([Categorical("a", (1, 2, 3))]), max_trials=10)
    assert DefaultStrategy(tiny, 0).choose([]) is RandomStrategy
    assert DefaultStrategy(replace(problem, max_trials=8), 0).choose([]) is SobolStrategy
    assert DefaultStrategy(replace(problem, max_trials=100), 0).choose([]) is BoTorchStrategy
    many = toy_history(problem, 600)
    assert DefaultStrategy(replace(problem, max_trials=2000), 0).choose(many) is LinasStrategy
    assert MIXED_SPACE.dim < 40
    # a NAS-Bench-201-like cell: every edge picks one of five unordered operations (all one-hot)
    ops = ("none", "skip", "conv1x1", "conv3x3", "pool")
    cell = replace(problem, space=ParamSpace([Categorical(f"op{i}", ops) for i in range(6)]), max_trials=100)
    assert DefaultStrategy(cell, 0).choose([]) is TPEStrategy
    # one unordered categorical among ordered and numeric parameters does not make a space one-hot
    assert not mostly_one_hot(MIXED_SPACE)
    (suggestion,) = DefaultStrategy(replace(problem, max_trials=100), 0).ask(toy_history(problem, 20), [], 1)
    assert suggestion.info["chosen_strategy"] == "botorch"

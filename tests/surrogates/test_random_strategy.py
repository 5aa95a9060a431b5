"""Random search is reproducible, stays in the space and avoids repeats while it can."""

from __future__ import annotations

import pytest

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.params import ParamSpace
from search_spaces.spec import Objective
from supernas.records import Observation
from supernas.states import TrialState
from surrogates.observations import config_key
from surrogates.registry import make_strategy
from surrogates.strategy import SearchProblem

OBJECTIVES = (Objective(metric="accuracy", direction="maximize"),)


def _problem(space: ElasticCNNSpace) -> SearchProblem:
    return SearchProblem(ParamSpace(space.params()), OBJECTIVES)


def _run(space: ElasticCNNSpace, seed: int, n: int) -> list[dict]:
    strategy = make_strategy("random", _problem(space), seed)
    history: list[Observation] = []
    for number in range(n):
        config = strategy.ask(history, [], 1)[0].config
        history.append(Observation(number, config, TrialState.SUCCEEDED, {"accuracy": 0.5}))
    return [o.config for o in history]


def test_same_seed_same_configs_and_every_config_is_in_the_space() -> None:
    space = ElasticCNNSpace()
    first, second = _run(space, 7, 20), _run(space, 7, 20)
    assert first == second
    for config in first:
        space.validate_arch(config)
    assert _run(space, 8, 20) != first


def test_resume_from_history_gives_the_same_next_config() -> None:
    space = ElasticCNNSpace()
    full = _run(space, 3, 10)
    strategy = make_strategy("random", _problem(space), 3)
    history = [Observation(i, c, TrialState.SUCCEEDED, {}) for i, c in enumerate(full[:9])]
    assert strategy.ask(history, [], 1)[0].config == full[9]


def test_no_repeats_until_the_space_is_exhausted() -> None:
    space = ElasticCNNSpace(
        stage_channels=[8], depth=[1, 2], width_mult=[0.5, 1.0], kernel_size=[3], expand_ratio=[2]
    )
    assert space.size == 4
    keys = [config_key(c) for c in _run(space, 0, 6)]
    assert len(set(keys[:4])) == 4
    assert set(keys[4:]) <= set(keys[:4])


def test_a_batch_avoids_pending_configs_and_itself() -> None:
    space = ElasticCNNSpace(
        stage_channels=[8], depth=[1, 2], width_mult=[0.5, 1.0], kernel_size=[3], expand_ratio=[2]
    )
    strategy = make_strategy("random", _problem(space), 0)
    pending = [strategy.ask([], [], 1)[0].config]
    batch = strategy.ask([], pending, 3)
    assert len({config_key(c) for c in pending + [s.config for s in batch]}) == 4


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown strategy 'bogus'"):
        make_strategy("bogus", _problem(ElasticCNNSpace()), 0)

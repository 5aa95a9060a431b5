"""Random search is reproducible, stays in the space and avoids repeats while it can."""

from __future__ import annotations

import json

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.spec import Objective
from supernas.records import Observation
from supernas.states import TrialState
from surrogates.registry import make_strategy

OBJECTIVES = [Objective(metric="accuracy", direction="maximize")]


def _run(space: ElasticCNNSpace, seed: int, n: int) -> list[dict]:
    strategy = make_strategy("random", space, OBJECTIVES, seed)
    history: list[Observation] = []
    for number in range(n):
        config = strategy.ask(number, history, []).config
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
    strategy = make_strategy("random", space, OBJECTIVES, 3)
    history = [Observation(i, c, TrialState.SUCCEEDED, {}) for i, c in enumerate(full[:9])]
    assert strategy.ask(9, history, []).config == full[9]


def test_no_repeats_until_the_space_is_exhausted() -> None:
    space = ElasticCNNSpace(stage_channels=[8], depth=[1, 2], width_mult=[0.5, 1.0], kernel_size=[3])
    assert space.size == 4
    configs = _run(space, 0, 6)
    keys = [json.dumps(c, sort_keys=True) for c in configs]
    assert len(set(keys[:4])) == 4
    assert set(keys[4:]) <= set(keys[:4])


def test_pending_configs_are_not_suggested_again() -> None:
    space = ElasticCNNSpace(stage_channels=[8], depth=[1, 2], width_mult=[0.5, 1.0], kernel_size=[3])
    strategy = make_strategy("random", space, OBJECTIVES, 0)
    pending = [strategy.ask(0, [], []).config]
    for number in range(1, 4):
        pending.append(strategy.ask(number, [], pending).config)
    assert len({json.dumps(c, sort_keys=True) for c in pending}) == 4


def test_unknown_strategy_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(KeyError, match="unknown strategy 'bogus'"):
        make_strategy("bogus", ElasticCNNSpace(), OBJECTIVES, 0)

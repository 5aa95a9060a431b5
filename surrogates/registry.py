"""Strategy registry: a new strategy is one new module plus one line here."""

from __future__ import annotations

from collections.abc import Sequence

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.spec import Objective
from surrogates.random_search import RandomStrategy
from surrogates.strategy import Strategy

STRATEGIES: dict[str, type[Strategy]] = {
    RandomStrategy.name: RandomStrategy,
}


def make_strategy(name: str, space: ElasticCNNSpace, objectives: Sequence[Objective], seed: int) -> Strategy:
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
    return cls(space, objectives, seed)

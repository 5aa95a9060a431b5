"""The ask/tell strategy interface every search strategy implements.

A strategy is stateless over history (as Optuna's samplers are): each ``ask`` receives every
observation so far (read from storage) and the configs still pending, so a search resumes after
a crash from the database alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.spec import Objective
from supernas.records import Observation


@dataclass(frozen=True)
class Suggestion:
    """A config to evaluate next, with what the strategy knew about it when it chose it."""

    config: dict[str, Any]
    info: dict[str, Any]


class Strategy(ABC):
    """Base class of search strategies: one abstract method, ``ask``."""

    name: str = ""

    def __init__(self, space: ElasticCNNSpace, objectives: Sequence[Objective], seed: int) -> None:
        self.space = space
        self.objectives = list(objectives)
        self.seed = seed

    @abstractmethod
    def ask(
        self, number: int, history: Sequence[Observation], pending: Sequence[dict[str, Any]]
    ) -> Suggestion:
        """Return the config for trial ``number`` given the finished history and pending configs."""

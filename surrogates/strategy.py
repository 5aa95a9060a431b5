"""The ask/tell strategy interface every search strategy implements.

A strategy is stateless over history (as Optuna's samplers are): each ``ask`` receives every
observation so far (read from storage) and the configs still pending, and returns the next batch,
so a search resumes after a crash from the database alone. Any randomness is seeded from the
search's seed and the number of trials suggested so far, so a resumed search suggests the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from search_spaces.params import ParamSpace
from search_spaces.spec import Constraint, Objective
from supernas.records import Observation


@dataclass(frozen=True)
class Prediction:
    """A strategy's belief about one objective of a suggested config."""

    mean: float
    std: float


@dataclass(frozen=True)
class Suggestion:
    """A config to evaluate next, with what the strategy predicted for it when it chose it."""

    config: dict[str, Any]
    predictions: dict[str, Prediction] = field(default_factory=dict)  # metric -> prediction
    acquisition_value: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def record(self, strategy: str) -> dict[str, Any]:
        """The JSON stored with the trial and shown over the API."""
        return {
            "strategy": strategy,
            "predictions": {m: {"mean": p.mean, "std": p.std} for m, p in self.predictions.items()},
            "acquisition_value": self.acquisition_value,
            **self.info,
        }


@dataclass(frozen=True)
class SearchProblem:
    """What a strategy optimises: a space, objectives (first one primary) and hard constraints."""

    space: ParamSpace
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    max_trials: int | None = None  # the search's budget, for strategies that plan by it


class Strategy(ABC):
    """Base class of search strategies: one abstract method, ``ask``."""

    name: ClassVar[str] = ""

    def __init__(self, problem: SearchProblem, seed: int) -> None:
        self.problem = problem
        self.space = problem.space
        self.seed = seed

    @abstractmethod
    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        """Return ``n`` configs to evaluate next, given the history and the configs in flight."""

    def rng(self, history: Sequence[Observation], pending: Sequence[dict[str, Any]]) -> np.random.Generator:
        """A generator seeded by (seed, trials suggested so far): the same state gives the same batch."""
        return np.random.default_rng([self.seed, len(history) + len(pending)])

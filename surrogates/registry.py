"""Strategy registry: a new strategy is one new module plus one line here."""

from __future__ import annotations

from surrogates.botorch_strategy import BoTorchStrategy
from surrogates.default import DefaultStrategy
from surrogates.linas import LinasStrategy
from surrogates.optuna_samplers import NSGA2Strategy, OptunaGPStrategy, TPEStrategy
from surrogates.pfn_strategy import (
    PFNProbabilityOfImprovementStrategy,
    PFNStrategy,
    PFNUpperConfidenceBoundStrategy,
)
from surrogates.random_search import RandomStrategy
from surrogates.sobol import SobolStrategy
from surrogates.strategy import SearchProblem, Strategy

STRATEGIES: dict[str, type[Strategy]] = {
    RandomStrategy.name: RandomStrategy,
    SobolStrategy.name: SobolStrategy,
    TPEStrategy.name: TPEStrategy,
    NSGA2Strategy.name: NSGA2Strategy,
    OptunaGPStrategy.name: OptunaGPStrategy,
    LinasStrategy.name: LinasStrategy,
    BoTorchStrategy.name: BoTorchStrategy,
    DefaultStrategy.name: DefaultStrategy,
    PFNStrategy.name: PFNStrategy,
    PFNProbabilityOfImprovementStrategy.name: PFNProbabilityOfImprovementStrategy,
    PFNUpperConfidenceBoundStrategy.name: PFNUpperConfidenceBoundStrategy,
}


def make_strategy(name: str, problem: SearchProblem, seed: int) -> Strategy:
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
    return cls(problem, seed)

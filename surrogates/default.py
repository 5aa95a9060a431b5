"""The ``default`` strategy: picks a strategy by the space's size, the objectives and the budget.

Rules, first match wins (each choice is recorded in the suggestion's ``info``):

1. the whole space fits in the budget (finite space with at most ``max_trials`` configs):
   ``random`` without repeats, which then enumerates the space exactly;
2. too few evaluations for any model to pay off (budget under 12): ``sobol``;
3. unordered categoricals make up most of the encoding (cell-based NAS spaces such as
   NAS-Bench-201, where every edge picks one of several operations): ``tpe``. A GP over one-hot
   codes models such spaces poorly at small budgets (Kendall tau 0.12-0.37 for NAS-Bench-201's
   accuracy from 20-40 architectures, and a categorical kernel did worse), while TPE estimates
   each choice's density directly; on NAS-Bench-201 accuracy vs size it has the best final
   hypervolume of all contenders (README). The built-in supernet spaces are ordered choices
   (depths, widths, kernel sizes) and do not match this rule;
4. the history is large (over 300 usable observations) or the encoding is wide (over 40
   dimensions): ``linas``, whose predictor ensembles refit in milliseconds where a GP would not;
5. otherwise ``botorch``: a GP per objective and constraint with qLogNEHVI / qLogNEI, which needs
   the fewest evaluations on the continuous benchmarks (see the README's strategy table). Until a
   model has enough data each strategy starts from its own space-filling initial design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from search_spaces.params import Categorical, ParamSpace
from supernas.records import Observation
from surrogates.botorch_strategy import BoTorchStrategy
from surrogates.linas import LinasStrategy
from surrogates.observations import training_data
from surrogates.optuna_samplers import TPEStrategy
from surrogates.random_search import RandomStrategy
from surrogates.sobol import SobolStrategy
from surrogates.strategy import Strategy, Suggestion

SMALL_BUDGET = 12
LARGE_HISTORY = 300
WIDE_ENCODING = 40


def mostly_one_hot(space: ParamSpace) -> bool:
    """Unordered categoricals (one-hot coded: one coordinate per choice) fill over half the encoding."""
    one_hot = sum(p.width for p in space.params if isinstance(p, Categorical) and p.width > 1)
    return 2 * one_hot > space.dim


class DefaultStrategy(Strategy):
    name = "default"

    def choose(self, history: Sequence[Observation]) -> type[Strategy]:
        problem = self.problem
        size = self.space.size
        if size is not None and problem.max_trials is not None and size <= problem.max_trials:
            return RandomStrategy
        if problem.max_trials is not None and problem.max_trials < SMALL_BUDGET:
            return SobolStrategy
        if mostly_one_hot(self.space):
            return TPEStrategy
        usable = len(training_data(history, problem.objectives, problem.constraints))
        if usable > LARGE_HISTORY or self.space.dim > WIDE_ENCODING:
            return LinasStrategy
        return BoTorchStrategy

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        chosen = self.choose(history)
        suggestions = chosen(self.problem, self.seed).ask(history, pending, n)
        return [replace(s, info={**s.info, "chosen_strategy": chosen.name}) for s in suggestions]

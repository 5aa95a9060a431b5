"""Optuna's TPE, NSGA-II and GP samplers as supernas strategies, through the stateless bridge.

Each strategy only chooses and seeds its sampler; ``optuna_bridge.OptunaStrategy`` rebuilds the
study from the history on every ask. Constraints reach all three samplers as constraint values
stored on the completed trials (``FrozenTrial.constraints``), which is how Optuna 5 reads them
(``constraints_func`` is deprecated there and would never be called for added trials). Pending
configs are ``RUNNING`` trials: TPE's constant liar treats them as bad results so the batch
spreads out, GP conditions its q-batch acquisition on them, and NSGA-II ignores them (it breeds
from completed generations only; repeats are caught by the bridge's duplicate check).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, TPESampler

from supernas.records import Observation
from surrogates.optuna_bridge import OptunaStrategy
from surrogates.strategy import Suggestion
from surrogates.torch_threads import torch_threads

_DEFAULT_BUDGET = 500  # trials assumed when the search sets no max_trials


class TPEStrategy(OptunaStrategy):
    """Multivariate TPE (grouped over conditional parameters) with the constant liar for batches."""

    name = "tpe"

    def make_sampler(self, seed: int) -> BaseSampler:
        conditional = any(p.condition is not None for p in self.space.params)
        return TPESampler(seed=seed, multivariate=True, group=conditional, constant_liar=True)


class NSGA2Strategy(OptunaStrategy):
    """NSGA-II with constrained domination; generations are rebuilt from the order of the results.

    Optuna keeps each trial's generation in its system attrs; a rebuilt study has none, so the
    ``k``-th result (by trial number) is put in generation ``k // population_size``, as Optuna
    would have numbered them had the trials finished in order.
    """

    name = "nsga2"

    @property
    def population_size(self) -> int:
        """A tenth of the budget, between 8 and 50 (Optuna's default)."""
        budget = self.problem.max_trials or _DEFAULT_BUDGET
        return min(50, max(8, budget // 10))

    def make_sampler(self, seed: int) -> BaseSampler:
        return NSGAIISampler(seed=seed, population_size=self.population_size)

    def result_system_attrs(self, index: int) -> dict[str, Any]:
        return {NSGAIISampler._get_generation_key(): index // self.population_size}


class OptunaGPStrategy(OptunaStrategy):
    """Optuna's GP sampler: log EI / log EHVI, constrained when the problem has constraints.

    Conditional parameters outside the intersection of the trials' spaces are drawn by its
    independent (random) sampler.
    """

    name = "optuna_gp"

    def make_sampler(self, seed: int) -> BaseSampler:
        return GPSampler(seed=seed, warn_independent_sampling=False)

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        # many tiny torch ops: one thread is several times faster than an oversubscribed pool
        with torch_threads(1):
            return super().ask(history, pending, n)

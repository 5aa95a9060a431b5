"""Quasi-random search: scrambled Sobol points of the unit cube, decoded into configs.

The sequence is scipy's scrambled Sobol sequence (``scipy.stats.qmc.Sobol``) over the space's
encoding cube, seeded by the search's seed. It is stateless over history: each ``ask`` rebuilds
the engine and fast-forwards it by the number of trials suggested so far (history plus pending),
so a resumed search continues the same sequence. A point whose decoded config was already seen
(evaluated, pending or earlier in the batch) is skipped and the next one drawn; on a small
discrete space where the bounded number of skips is not enough, a uniformly random unseen config
(drawn from ``self.rng``) stands in, as random search does.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc

from supernas.records import Observation
from surrogates.observations import config_key, seen_keys
from surrogates.strategy import Strategy, Suggestion

_MAX_SKIPS = 64  # Sobol points skipped per suggestion before falling back to random draws
_MAX_REDRAWS = 64  # random draws per suggestion in the fallback


class SobolStrategy(Strategy):
    """Scrambled Sobol points, skipping those that decode to an already seen config."""

    name = "sobol"

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        engine = qmc.Sobol(d=max(self.space.dim, 1), scramble=True, rng=self.seed)
        suggested = len(history) + len(pending)
        if suggested:  # scipy's fast_forward(0) overflows
            engine.fast_forward(suggested)
        rng = self.rng(history, pending)
        seen = seen_keys(history, pending)
        suggestions = []
        for _ in range(n):
            suggestion = self._next(engine, rng, seen)
            seen.add(config_key(suggestion.config))
            suggestions.append(suggestion)
        return suggestions

    def _must_be_new(self, seen: set[str]) -> bool:
        size = self.space.size
        return size is None or len(seen) < size

    def _next(self, engine: qmc.Sobol, rng: np.random.Generator, seen: set[str]) -> Suggestion:
        """The next Sobol point whose config is unseen; a random unseen config after too many skips."""
        for skipped in range(_MAX_SKIPS + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # balance warning for non-power-of-2 draws
                point = engine.random(1)[0]  # (dim,)
            config = self.space.decode(point)
            if not self._must_be_new(seen) or config_key(config) not in seen:
                return Suggestion(config, info={"skipped": skipped})
        config = self.space.sample(rng)
        redraws = 0
        while self._must_be_new(seen) and config_key(config) in seen and redraws < _MAX_REDRAWS:
            config = self.space.sample(rng)
            redraws += 1
        return Suggestion(config, info={"skipped": _MAX_SKIPS, "fallback": "random", "redraws": redraws})

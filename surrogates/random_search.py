"""Random search: configs drawn uniformly, redrawn while they repeat an evaluated or pending one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supernas.records import Observation
from surrogates.observations import config_key, seen_keys
from surrogates.strategy import Strategy, Suggestion

_MAX_REDRAWS = 64


class RandomStrategy(Strategy):
    name = "random"

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        rng = self.rng(history, pending)
        seen = seen_keys(history, pending)
        size = self.space.size
        suggestions = []
        for _ in range(n):
            config = self.space.sample(rng)
            redraws = 0
            while (
                (size is None or len(seen) < size) and config_key(config) in seen and redraws < _MAX_REDRAWS
            ):
                config = self.space.sample(rng)
                redraws += 1
            seen.add(config_key(config))
            suggestions.append(Suggestion(config, info={"redraws": redraws}))
        return suggestions

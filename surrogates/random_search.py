"""Random search: each trial's config is drawn from a generator seeded by (seed, trial number).

Seeding by trial number makes a search reproducible and resumable without any stored state.
Configs already evaluated or pending are redrawn while the space still has unseen ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from supernas.records import Observation
from surrogates.strategy import Strategy, Suggestion

_MAX_REDRAWS = 64


def _key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


class RandomStrategy(Strategy):
    name = "random"

    def ask(
        self, number: int, history: Sequence[Observation], pending: Sequence[dict[str, Any]]
    ) -> Suggestion:
        rng = np.random.default_rng([self.seed, number])
        seen = {_key(o.config) for o in history} | {_key(c) for c in pending}
        exhausted = len(seen) >= self.space.size
        config = self.space.sample(rng).to_config()
        redraws = 0
        while not exhausted and _key(config) in seen and redraws < _MAX_REDRAWS:
            config = self.space.sample(rng).to_config()
            redraws += 1
        return Suggestion(config=config, info={"strategy": self.name, "redraws": redraws})

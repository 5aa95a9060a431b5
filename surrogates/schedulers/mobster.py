"""MOBSTER-style model-based asynchronous scheduling (Klein et al. 2020): ASHA's rungs decide which
trial goes on; new configs come from a GP over (config, fidelity) (``gp_proposer``) instead of random
sampling, with the trials still running as pending points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surrogates.schedulers.asha import AshaScheduler
from surrogates.schedulers.gp_proposer import GPProposer


class MobsterScheduler(AshaScheduler):
    name = "mobster"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._proposer = GPProposer(self.problem, self.settings.candidates, self.seed, self.name)

    def propose(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]] | None:
        return self._proposer.propose(self.trials, self.running(), rng)

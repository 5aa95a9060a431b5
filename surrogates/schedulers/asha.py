"""ASHA and asynchronous Hyperband (Li et al. 2020): rungs at grace * eta^k steps; at each rung a trial
goes on only if it ranks among the best 1/eta of the trials recorded there (``ranking``).

``hyperband`` is ASHA with several brackets, bracket s starting its rungs at grace * eta^s, each new
trial drawn into a bracket with Ray Tune's probabilities (proportional to e^(rungs of the bracket)).
Steps count reports from 1 (Ray Tune's ``training_iteration``), so the rungs are Ray Tune's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from surrogates.schedulers.base import (
    Action,
    Decision,
    FidelityScheduler,
    SchedulerSettings,
    SchedulingProblem,
)
from surrogates.schedulers.ranking import passes_multi, passes_single


class _Bracket:
    def __init__(self, grace: int, max_steps: int, eta: float, s: int) -> None:
        n_rungs = int(math.log(max_steps / grace) / math.log(eta) - s + 1)
        self.milestones = [grace * eta ** (k + s) for k in range(max(n_rungs, 0))]
        self.recorded: list[dict[int, np.ndarray]] = [{} for _ in self.milestones]


class AshaScheduler(FidelityScheduler):
    """Asynchronous successive halving, stopping variant; one objective or several (MO-ASHA)."""

    name = "asha"

    def __init__(self, problem: SchedulingProblem, settings: SchedulerSettings, seed: int = 0) -> None:
        super().__init__(problem, settings, seed)
        if settings.reduction_factor <= 1:
            raise ValueError("reduction_factor must be > 1")
        grace = min(max(settings.grace_period, 1), problem.steps)
        self.eta = settings.reduction_factor
        self.brackets = [_Bracket(grace, problem.steps, self.eta, s) for s in range(self._n_brackets())]
        self._bracket_of: dict[int, int] = {}
        self._rng = np.random.default_rng([seed, 7])

    def _n_brackets(self) -> int:
        return 1

    def add_trial(self, trial: int, config: dict[str, Any]) -> None:
        super().add_trial(trial, config)
        sizes = np.array([len(b.milestones) for b in self.brackets])
        weights = np.exp(sizes - sizes.max())
        self._bracket_of[trial] = int(self._rng.choice(len(self.brackets), p=weights / weights.sum()))

    def on_report(self, trial: int, fidelity: int, costs: np.ndarray) -> Decision:
        step = fidelity - self.problem.min_fidelity + 1
        index = self._bracket_of[trial]
        bracket = self.brackets[index]
        for k in reversed(range(len(bracket.milestones))):
            recorded = bracket.recorded[k]
            if step < bracket.milestones[k] or trial in recorded:
                continue
            earlier = np.array(list(recorded.values())).reshape(-1, len(costs))
            recorded[trial] = costs
            return self._rung_decision(trial, fidelity, costs, earlier, index, k)
        return Decision(Action.CONTINUE, trial, fidelity, "between rungs")

    def _rung_decision(
        self, trial: int, fidelity: int, costs: np.ndarray, earlier: np.ndarray, bracket: int, k: int
    ) -> Decision:
        milestone = self.brackets[bracket].milestones[k]
        where = f"rung {k} (step {milestone:g}, bracket {bracket}) with {len(earlier)} trials before it"
        if len(costs) == 1:
            ok = passes_single(earlier[:, 0], float(costs[0]), self.eta)
            verdict = f"{'within' if ok else 'outside'} the best 1/{self.eta:g} at {where}"
        else:
            ok, front, ahead, kept = passes_multi(earlier, costs, self.eta)
            verdict = (
                f"on Pareto front {front + 1} ({ahead} trials on better fronts; ties by hypervolume "
                f"contribution) at {where}; the best {kept} go on"
            )
        action = Action.PROMOTE if ok else Action.STOP
        return Decision(action, trial, fidelity, f"{'promoted' if ok else 'stopped'}: {verdict}", rung=k)


class HyperbandScheduler(AshaScheduler):
    """Asynchronous Hyperband: ASHA over ``brackets`` brackets (Ray Tune's ``brackets`` option)."""

    name = "hyperband"

    def _n_brackets(self) -> int:
        grace = min(max(self.settings.grace_period, 1), self.problem.steps)
        most = int(math.log(self.problem.steps / grace) / math.log(self.settings.reduction_factor)) + 1
        return max(1, min(self.settings.brackets, most))

"""Freeze-thaw scheduling with the shipped PFN (ifBO, Rakotoarison et al. 2024): trials are paused,
never killed, after each ``step`` of training, and whenever a worker is free the PFN extrapolates
every paused trial's partial learning curve (and the curve of the next new config) in one forward
pass; the candidate with the highest acquisition is resumed from its checkpoint, or started.

The acquisition is MFPI-random: per decision a horizon h (uniform over 1..steps) and a threshold
tau = best + 10^u * span (u uniform in [-4, -1], span the range of values seen: ifBO's rule, scaled by
the observed range because our values are not accuracies in [0, 1]) are drawn, and each candidate
scores P(value at min(its steps + h, steps) > tau). That probability is taken under the PFN's
prediction fused with the one of ``mobster``'s GP over (config, fidelity) (``fuse``: a product of
Gaussian experts, each weighted by its precision). On the recorded learning curves the GP ranked the
paused trials' final values better than the PFN on MNIST-1D, and worse on Fashion-MNIST; fused, the
benchmark's regret at half the budget fell on both (README). Several objectives are scalarised with random
augmented Chebyshev weights per decision (``scalarize``): multi-objective freeze-thaw.

A share ``EXPLOIT`` of the decisions instead resumes the paused trial whose fused prediction at the last
step is best. MFPI-random alone spread the budget over many good trials: at half the budget the two
best configs had been started but trained 8 to 18 of the 27 and 28 epochs at which they peak (README).

New configs: of ``candidates`` random configs, the ``SHORTLIST`` with the highest log-EI under
``mobster``'s GP over (config, fidelity) (``gp_proposer``; the trials running, not the paused ones,
as pending points), and of those the one with the highest MFPI-random under the PFN. In the
multi-fidelity benchmark this took the mean rank at the full budget from 4.39 to 3.30 against the PFN
alone over all random candidates, and 3.94 for the GP's best alone (README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from supernas.objectives import Direction
from surrogates.pfn.predictor import PFNPredictor, shipped_predictor
from surrogates.schedulers.base import (
    Action,
    Decision,
    FidelityScheduler,
    Prediction,
    SchedulerSettings,
    SchedulingProblem,
)
from surrogates.schedulers.gp_proposer import GPProposer
from surrogates.schedulers.scalarize import scalarizer

NEW = -1  # the candidate index of "the next new config"
SHORTLIST = 32  # random configs with the GP's highest log-EI, among which the PFN picks a new config
EXPLOIT = 0.1  # the share of decisions that resume the paused trial with the best predicted final value


@dataclass(frozen=True)
class _Scored:
    acquisition: np.ndarray  # (C,)
    value: np.ndarray  # (C,) predicted scalarised value (higher is better) at each candidate's target step
    mean: np.ndarray  # (C,) predicted value at each candidate's target step, in the metric's units
    std: np.ndarray  # (C,)
    targets: list[int]  # (C,) the target fidelity of each candidate


class FreezeThawScheduler(FidelityScheduler):
    name = "freeze_thaw"
    pauses = True

    def __init__(
        self,
        problem: SchedulingProblem,
        settings: SchedulerSettings,
        seed: int = 0,
        predictor: PFNPredictor | None = None,
    ) -> None:
        super().__init__(problem, settings, seed)
        if problem.space is None:
            raise ValueError("freeze_thaw needs the search space to encode configs")
        self._predictor = predictor
        self._since_resume: dict[int, int] = {}
        self._decisions = 0
        self._gp = GPProposer(problem, settings.candidates, seed, self.name)
        self._curve_gp = GPProposer(problem, settings.candidates, seed, self.name)  # its own refit cycle

    @property
    def predictor(self) -> PFNPredictor:
        if self._predictor is None:
            self._predictor = shipped_predictor()
        return self._predictor

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (Ray Tune snapshots its scheduler) without the PFN, which reloads when needed."""
        return self.__dict__ | {"_predictor": None}

    def add_trial(self, trial: int, config: dict[str, Any]) -> None:
        super().add_trial(trial, config)
        self._since_resume[trial] = 0

    def on_report(self, trial: int, fidelity: int, costs: np.ndarray) -> Decision:
        self._since_resume[trial] = self._since_resume.get(trial, 0) + 1
        if self._since_resume[trial] < self.settings.step:
            return Decision(Action.CONTINUE, trial, fidelity, f"within its step of {self.settings.step}")
        return Decision(
            Action.PAUSE,
            trial,
            fidelity,
            "step done: paused until the PFN ranks it first among the candidates",
        )

    # --- choosing what runs next ---------------------------------------------------------------

    def next_step(self, paused: Sequence[int], new_config: dict[str, Any] | None) -> Decision | None:
        candidates = list(paused) + ([NEW] if new_config is not None else [])
        if not candidates:
            return None
        if not any(self.trials[t].costs for t in self.trials):
            return self._pick(candidates[-1], None, None, "nothing observed yet")
        rng = self._decision_rng()
        if paused and rng.random() < EXPLOIT:
            scored = self._score(list(paused), [], rng, horizon=self.problem.steps)
            reason = f"best predicted final value of {len(paused)} paused trials (exploitation)"
            return self._pick_best(list(paused), scored, int(np.argmax(scored.value)), reason)
        scored = self._score(candidates, [new_config] if new_config is not None else [], rng)
        others = len(candidates) - 1
        reason = f"highest MFPI-random of {len(candidates)} candidates ({others} others)"
        return self._pick_best(candidates, scored, int(np.argmax(scored.acquisition)), reason)

    def _pick_best(self, candidates: list[int], scored: _Scored, best: int, reason: str) -> Decision:
        """``candidates[best]``, with what ``scored`` predicted for it."""
        prediction = Prediction(scored.targets[best], float(scored.mean[best]), float(scored.std[best]))
        return self._pick(candidates[best], prediction, float(scored.acquisition[best]), reason)

    def _pick(
        self, candidate: int, predicted: Prediction | None, acquisition: float | None, reason: str
    ) -> Decision:
        if candidate == NEW:
            return Decision(
                Action.START, None, None, f"start a new config: {reason}", None, predicted, acquisition
            )
        self._since_resume[candidate] = 0
        fidelity = self.trials[candidate].fidelity
        return Decision(Action.RESUME, candidate, fidelity, f"resume: {reason}", None, predicted, acquisition)

    def running(self) -> list[int]:
        """The trials training now: not ended, and not paused (a trial pauses once it has run its
        ``step`` since it last started or resumed)."""
        return [t for t in super().running() if self._since_resume[t] < self.settings.step]

    def propose(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Of ``candidates`` random configs, the GP's ``SHORTLIST`` best by log-EI (all of them until
        the GP has data), and of those the best by the PFN's MFPI-random, started from scratch."""
        if not any(self.trials[t].costs for t in self.trials):
            return None
        configs = [self.problem.sample_config(rng) for _ in range(self.settings.candidates)]
        running = self.running()
        improvement = self._gp.score(self.trials, running, configs, rng)
        drawn = f"{len(configs)} random configs"
        if improvement is not None:
            order = np.argsort(-improvement[0], kind="stable")[:SHORTLIST]
            configs = [configs[i] for i in order]
            drawn = f"the {len(configs)} with the GP's highest log-EI of {drawn}, {len(running)} running"
        scored = self._score([NEW] * len(configs), configs, self._decision_rng())
        best = int(np.argmax(scored.acquisition))
        info = {
            "predicted": {
                "fidelity": scored.targets[best],
                "mean": float(scored.mean[best]),
                "std": float(scored.std[best]),
            },
            "acquisition": float(scored.acquisition[best]),
            "proposed_by": f"{self.name}: best MFPI-random of {drawn}",
        }
        return configs[best], info

    def _decision_rng(self) -> np.random.Generator:
        self._decisions += 1
        return np.random.default_rng([self.seed, 11, self._decisions])

    def _score(
        self,
        candidates: list[int],
        new_configs: list[dict[str, Any]],
        rng: np.random.Generator,
        horizon: int | None = None,
    ) -> _Scored:
        """MFPI-random of each candidate (a trial number, or NEW: the next of ``new_configs``), each
        predicted ``horizon`` steps on (drawn uniformly from 1..steps if None)."""
        assert self.problem.space is not None
        problem = self.problem
        observed = [t for t in self.trials if self.trials[t].costs]
        all_costs = np.vstack([c for t in observed for c in self.trials[t].costs.values()])
        to_value = scalarizer(all_costs, rng)
        configs = [self.trials[t].config for t in observed] + list(new_configs)
        encoded = np.vstack([problem.space.encode(c) for c in configs])
        curves = [self._curve(t, to_value) for t in observed] + [[] for _ in new_configs]
        if horizon is None:
            horizon = int(rng.integers(1, problem.steps + 1))
        values = np.concatenate([np.asarray(c) for c in curves if c])
        span = float(values.max() - values.min()) or 1.0
        tau = float(values.max()) + 10 ** rng.uniform(-4, -1) * span
        row_of = {t: i for i, t in enumerate(observed)}
        queries, targets, new_seen = [], [], 0
        for candidate in candidates:
            if candidate == NEW:
                row, done = len(observed) + new_seen, 0
                new_seen += 1
            else:
                row, done = row_of.get(candidate, -1), self._steps_done(candidate)
            epoch = min(done + horizon, problem.steps)
            queries.append((row, epoch))
            targets.append(epoch - 1 + problem.min_fidelity)
        predictive = self.predictor.predict_curves(encoded, curves, problem.steps, queries, seed=self.seed)
        mean, std = predictive.mean()[0].numpy(), predictive.std()[0].numpy()
        subsample = np.random.default_rng([self.seed, 5, self._decisions])
        rows = np.array([row for row, _ in queries])
        gp = self._curve_gp.predict(self.trials, to_value, encoded[rows], [e for _, e in queries], subsample)
        if gp is None:  # too few trials for the GP: the PFN's own probability of improvement
            acquisition = predictive.probability_of_improvement(np.array([tau]))[0].numpy()
        else:
            mean, std = fuse(mean, std, *gp)
            acquisition = norm.sf((tau - mean) / std)
        value = mean
        if len(problem.metrics) == 1 and problem.directions[0] == Direction.MINIMIZE:
            mean = -mean  # report the metric itself, not its negation
        return _Scored(acquisition, value, mean, std, targets)

    def _steps_done(self, trial: int) -> int:
        fidelity = self.trials[trial].fidelity
        return 0 if fidelity is None else fidelity - self.problem.min_fidelity + 1

    def _curve(self, trial: int, to_value: Any) -> list[float]:
        """The trial's values at steps 1..k (its reports in fidelity order, gaps filled forward)."""
        costs = self.trials[trial].costs
        last = max(costs)
        rows, previous = [], None
        for fidelity in range(self.problem.min_fidelity, last + 1):
            previous = costs.get(fidelity, previous)
            rows.append(previous if previous is not None else costs[min(costs)])
        return list(to_value(np.vstack(rows)))


def fuse(
    mean_a: np.ndarray, std_a: np.ndarray, mean_b: np.ndarray, std_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The product of two Gaussian experts: the precision-weighted mean and the combined std."""
    precision_a = 1.0 / np.maximum(std_a, 1e-6) ** 2
    precision_b = 1.0 / np.maximum(std_b, 1e-6) ** 2
    precision = precision_a + precision_b
    return (mean_a * precision_a + mean_b * precision_b) / precision, np.sqrt(1.0 / precision)

"""Bayesian optimisation with our PFN: one forward pass per pick instead of a GP fit per ask.

The shipped PFN (``surrogates/pfn/weights``) reads the observations as its context and predicts a
bar distribution at every candidate; acquisitions are computed exactly on it.

- Initial design, candidate sets and the fallback are ``BoTorchStrategy``'s (scrambled Sobol until
  ``initial_design_size`` usable observations; every unseen config of a small finite space, else
  random configs plus mutations of the incumbents).
- One objective: the target is the objective (maximisation form). Several: the target is an
  augmented Chebyshev scalarisation of the objectives, normalised to [0, 1] over the observations,
  with weights drawn from the simplex afresh for every pick (ParEGO / qParEGO): the PFN models the
  scalarised values directly, so no Monte Carlo over a hypervolume is needed.
- Acquisition: ``pfn`` maximises expected improvement over the best feasible target, ``pfn_pi``
  the probability of improvement, ``pfn_ucb`` the 0.9-quantile. All are exact under the bar
  distribution. Constraints: the PFN also predicts each slack (after the same bilog as BoTorch's
  models) and the acquisition is multiplied by the probability that every slack is <= 0; until an
  observation is feasible, that probability alone is maximised.
- Batches and pending trials: configs in flight (and each pick of a batch) join the context with
  the predicted mean as their value (the kriging believer), so later picks move away from them.
- ``surrogates.pfn.botorch_model.PFNModel`` offers the same PFN to BoTorch's own acquisitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from search_spaces.params import ParamSpace
from supernas.records import Observation
from surrogates import botorch_models as bm
from surrogates.botorch_strategy import BoTorchStrategy
from surrogates.observations import TrainingData, training_data
from surrogates.pfn.predictor import PFNPredictor, Predictive, shipped_predictor
from surrogates.strategy import Prediction, Suggestion

UCB_QUANTILE = 0.9
CHEBYSHEV_RHO = 0.05  # weight of the linear term of the augmented Chebyshev scalarisation


class PFNStrategy(BoTorchStrategy):
    name = "pfn"
    acquisition: ClassVar[str] = "ei"
    torch_threads = 1

    def predictor(self) -> PFNPredictor:
        return shipped_predictor()

    def predict(
        self, history: Sequence[Observation], configs: Sequence[dict[str, Any]]
    ) -> list[dict[str, Prediction]]:
        """Predictive mean and std of each objective (metric units) at ``configs``."""
        data = training_data(history, self.problem.objectives, self.problem.constraints)
        if len(data) == 0:
            raise ValueError("no usable observations to predict from")
        predictive = self.predictor().predict(
            _encode(self.space, data.configs), data.y, _encode(self.space, configs), seed=self.seed
        )
        mean, std = predictive.mean().numpy(), predictive.std().numpy()  # (M, Q)
        return self._objective_predictions(mean, std, range(len(configs)))

    def _optimise(
        self,
        data: TrainingData,
        pending: Sequence[dict[str, Any]],
        seen: set[str],
        n: int,
        rng: np.random.Generator,
    ) -> list[Suggestion]:
        candidates = self._candidates(data, seen, rng)
        if not candidates:
            return self._exhausted(n, rng)
        predictor = self.predictor()
        X_cand = _encode(self.space, candidates)  # (K, d)
        X_obs = _encode(self.space, data.configs)  # (N, d)
        n_obj = len(self.problem.objectives)
        seed = int(rng.integers(2**31))
        # the believer: configs in flight join the context with their predicted values
        X_ctx, Y_ctx = X_obs, np.hstack([data.y, bm.bilog(data.slack)])  # (N, d), (N, M + C)
        if pending:
            X_pend = _encode(self.space, pending)
            believed = predictor.predict(X_ctx, Y_ctx, X_pend, seed=seed).mean().numpy().T  # (P, M + C)
            X_ctx, Y_ctx = np.vstack([X_ctx, X_pend]), np.vstack([Y_ctx, believed])
        picks: list[Suggestion] = []
        available = np.ones(len(candidates), dtype=bool)
        for _ in range(min(n, len(candidates))):
            weights = rng.dirichlet(np.ones(n_obj)) if n_obj > 1 else np.ones(1)
            target = _scalarise(Y_ctx[:, :n_obj], weights)  # (N',)
            columns = np.column_stack(
                [target, Y_ctx[:, n_obj:], Y_ctx[:, :n_obj]]
            )  # target, slacks, objectives
            predictive = predictor.predict(X_ctx, columns, X_cand, seed=seed)
            value, name = self._acquisition(predictive, target, Y_ctx[:, n_obj:])
            open_rows = np.flatnonzero(available)
            best = int(open_rows[np.argmax(value[open_rows])])
            available[best] = False
            info = {"acquisition": name, "n_context": len(X_ctx), "n_candidates": len(candidates)}
            if n_obj > 1:
                info["scalarisation_weights"] = [round(float(w), 4) for w in weights]
            if predictive.notes:
                info["notes"] = predictive.notes
            n_slack = Y_ctx.shape[1] - n_obj
            mean, std = predictive.mean().numpy(), predictive.std().numpy()  # (1 + C + M, K)
            picks.append(
                Suggestion(
                    candidates[best],
                    predictions=self._objective_predictions(mean, std, [best], offset=1 + n_slack)[0],
                    acquisition_value=float(value[best]) if np.isfinite(value[best]) else None,
                    info=info,
                )
            )
            believed = mean[1:, best]  # slacks then objectives
            X_ctx = np.vstack([X_ctx, X_cand[best : best + 1]])
            Y_ctx = np.vstack([Y_ctx, np.concatenate([believed[n_slack:], believed[:n_slack]])[None, :]])
        return picks + self._exhausted(n - len(picks), rng)

    def _acquisition(
        self, predictive: Predictive, target: np.ndarray, slacks: np.ndarray
    ) -> tuple[np.ndarray, str]:
        """Acquisition value per candidate (log scale for EI, PI and feasibility) and its name.

        ``predictive`` columns: the target, then the (bilog) slacks; ``slacks`` (N', C) in context.
        """
        n_slack = slacks.shape[1]
        feasible = np.all(slacks <= 0, axis=1)  # (N',)
        log_pof = np.zeros(predictive.logits.shape[1])  # (K,)
        if n_slack:
            at_zero = predictive.cdf(torch.zeros(predictive.logits.shape[:2], dtype=torch.float64))
            log_pof = torch.log(at_zero[1 : 1 + n_slack].clamp_min(1e-300)).sum(0).numpy()
            if not feasible.any():
                return log_pof, "log probability of feasibility"
        best = float(target[feasible].max())
        if self.acquisition == "ei":
            best_per_output = np.full(predictive.logits.shape[0], best)
            ei = predictive.expected_improvement(best_per_output)[0].numpy()
            return np.log(np.maximum(ei, 1e-300)) + log_pof, "log expected improvement"
        if self.acquisition == "pi":
            best_per_output = np.full(predictive.logits.shape[0], best)
            pi = predictive.probability_of_improvement(best_per_output)[0].numpy()
            return np.log(np.maximum(pi, 1e-300)) + log_pof, "log probability of improvement"
        ucb = predictive.quantile(UCB_QUANTILE)[0].numpy()
        if n_slack:  # the bound among configs more likely feasible than not, if there are any
            likely = log_pof > np.log(0.5)
            if not likely.any():
                return log_pof, "log probability of feasibility"
            ucb = np.where(likely, ucb, -np.inf)
        return ucb, f"{UCB_QUANTILE}-quantile (UCB)"

    def _objective_predictions(
        self, mean: np.ndarray, std: np.ndarray, rows: Sequence[int] | range, offset: int = 0
    ) -> list[dict[str, Prediction]]:
        """Rows of a prediction's mean and std (J, Q) whose objective columns start at ``offset``."""
        columns = slice(offset, offset + len(self.problem.objectives))
        return self._as_predictions(mean[columns, rows].T, std[columns, rows].T)


class PFNProbabilityOfImprovementStrategy(PFNStrategy):
    name = "pfn_pi"
    acquisition = "pi"


class PFNUpperConfidenceBoundStrategy(PFNStrategy):
    name = "pfn_ucb"
    acquisition = "ucb"


def _scalarise(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Augmented Chebyshev scalarisation of maximised objectives y (N, M), each scaled to [0, 1]."""
    if y.shape[1] == 1:
        return y[:, 0]
    low, high = y.min(axis=0), y.max(axis=0)
    scaled = (y - low) / np.where(high > low, high - low, 1.0)
    weighted = scaled * weights
    return weighted.min(axis=1) + CHEBYSHEV_RHO * weighted.sum(axis=1)


def _encode(space: ParamSpace, configs: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.stack([space.encode(c) for c in configs])  # (K, d)

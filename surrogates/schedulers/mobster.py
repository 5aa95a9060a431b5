"""MOBSTER-style model-based asynchronous scheduling (Klein et al. 2020): ASHA's rungs decide which
trial goes on; new configs come from a GP over (config, fidelity) instead of random sampling.

The GP is BoTorch's ``SingleTaskMultiFidelityGP`` with the exponential-decay kernel over the fidelity
(the freeze-thaw kernel of Swersky et al.), fitted on the trials' reports. Its hyperparameters are
refitted every ``REFIT_EVERY`` proposals and reused on the new data in between, so that a proposal
stays cheaper than an epoch. Candidates are ``candidates`` random configs scored by BoTorch's
``qLogExpectedImprovement`` at the full fidelity, against the best value reached there. Trials still
running count as pending points (``X_pending`` at the full fidelity), so concurrent workers are not
sent to the same place. Several objectives: random augmented Chebyshev scalarisation per proposal
(``scalarize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from surrogates.schedulers.asha import AshaScheduler
from surrogates.schedulers.scalarize import scalarizer

MAX_POINTS = 128  # reports the GP is fitted on (the latest report of every trial is always kept)
FIT_ITERATIONS = 50  # L-BFGS iterations per hyperparameter fit
REFIT_EVERY = 5  # proposals between hyperparameter fits (in between: the last fit's, on the new data)
MIN_TRIALS = 3  # trials with reports before the model is used (random configs until then)


class MobsterScheduler(AshaScheduler):
    name = "mobster"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hyperparameters: dict[str, torch.Tensor] | None = None
        self._proposals = 0

    def propose(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]] | None:
        space = self.problem.space
        if space is None:
            raise ValueError("mobster needs the search space to encode configs")
        observed = [t for t, curve in self.trials.items() if curve.costs]
        if len(observed) < MIN_TRIALS:
            return None
        points = self._points(observed, rng)
        all_costs = np.vstack([costs for _, _, costs in points])
        to_value = scalarizer(all_costs, rng)
        steps = self.problem.steps
        x = np.vstack(
            [
                np.append(space.encode(self.trials[t].config), (f - self.problem.min_fidelity + 1) / steps)
                for t, f, _ in points
            ]
        )
        y = to_value(all_costs)
        top = [y[i] for i, (_, f, _) in enumerate(points) if f == self.problem.max_fidelity]
        best = max(top) if top else float(np.max(y))
        pending = [
            np.append(space.encode(c.config), 1.0)
            for t, c in self.trials.items()
            if t not in self.ended and (c.fidelity is None or c.fidelity < self.problem.max_fidelity)
        ]
        configs = [self.problem.sample_config(rng) for _ in range(self.settings.candidates)]
        candidates = np.vstack([np.append(space.encode(c), 1.0) for c in configs])
        refit = self._hyperparameters is None or self._proposals % REFIT_EVERY == 0
        self._proposals += 1
        gp = _fit(x, y, None if refit else self._hyperparameters)
        self._hyperparameters = _hyperparameters(gp)
        scores, mean, std = _expected_improvement(gp, candidates, best, pending, self.seed)
        i = int(np.argmax(scores))
        info = {
            "predicted": {
                "fidelity": self.problem.max_fidelity,
                "mean": float(mean[i]),
                "std": float(std[i]),
            },
            "acquisition": float(scores[i]),
            "proposed_by": f"{self.name}: best log-EI of {len(configs)} random configs, "
            f"{len(pending)} pending",
        }
        return configs[i], info

    def _points(self, observed: list[int], rng: np.random.Generator) -> list[tuple[int, int, np.ndarray]]:
        """(trial, fidelity, costs) reports, at most ``MAX_POINTS``: each trial's latest, then a sample."""
        curves = [(t, self.trials[t]) for t in observed]
        latest = [(t, curve.fidelity, curve.costs[curve.fidelity]) for t, curve in curves]
        earlier = [(t, f, c) for t, curve in curves for f, c in curve.costs.items() if f != curve.fidelity]
        room = max(MAX_POINTS - len(latest), 0)
        if len(latest) > MAX_POINTS:
            latest = [latest[i] for i in sorted(rng.choice(len(latest), MAX_POINTS, replace=False))]
        if len(earlier) > room:
            earlier = [earlier[i] for i in sorted(rng.choice(len(earlier), room, replace=False))]
        return latest + earlier


def _hyperparameters(gp: Any) -> dict[str, torch.Tensor]:
    """The fitted kernel and noise parameters (not the outcome transform, which follows the data)."""
    return {
        k: v.detach().clone() for k, v in gp.state_dict().items() if not k.startswith("outcome_transform")
    }


def _fit(x: np.ndarray, y: np.ndarray, hyperparameters: dict[str, torch.Tensor] | None) -> Any:
    """The GP on (x, y); its hyperparameters fitted, or ``hyperparameters`` when given."""
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskMultiFidelityGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    train_x = torch.as_tensor(x, dtype=torch.float64)
    train_y = torch.as_tensor(y, dtype=torch.float64).unsqueeze(-1)
    gp = SingleTaskMultiFidelityGP(
        train_x, train_y, iteration_fidelity=x.shape[1] - 1, linear_truncated=False
    )
    if hyperparameters is not None:
        gp.load_state_dict(hyperparameters, strict=False)
        return gp.eval()
    options = {"maxiter": FIT_ITERATIONS}  # a proposal must not take longer than a worker's epoch
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp), optimizer_kwargs={"options": options})
    return gp.eval()


def _expected_improvement(
    gp: Any, candidates: np.ndarray, best: float, pending: list[np.ndarray], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log-EI of each candidate (C,), and the GP's posterior mean and std there, in y's units."""
    from botorch.acquisition.logei import qLogExpectedImprovement
    from botorch.sampling import SobolQMCNormalSampler

    x_pending = torch.as_tensor(np.vstack(pending), dtype=torch.float64) if pending else None
    sampler = SobolQMCNormalSampler(torch.Size([128]), seed=seed)
    acquisition = qLogExpectedImprovement(gp, best_f=best, sampler=sampler, X_pending=x_pending)
    query = torch.as_tensor(candidates, dtype=torch.float64)
    with torch.no_grad():
        scores = acquisition(query.unsqueeze(1)).numpy()
        posterior = gp.posterior(query)
        mean = posterior.mean.squeeze(-1).numpy()
        std = posterior.variance.clamp_min(0).sqrt().squeeze(-1).numpy()
    return scores, mean, std

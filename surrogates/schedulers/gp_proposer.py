"""New configs from a GP over (config, fidelity): MOBSTER's searcher (Klein et al. 2020), shared by
``mobster`` and ``freeze_thaw``.

The GP is BoTorch's ``SingleTaskMultiFidelityGP`` with the exponential-decay kernel over the fidelity
(the freeze-thaw kernel of Swersky et al.), fitted on the trials' reports. Its hyperparameters are
refitted every ``REFIT_EVERY`` times a model is built and reused on the new data in between, so that
a proposal stays cheaper than an epoch. Candidates are random configs scored by BoTorch's
``qLogExpectedImprovement`` at the full fidelity, against the best value reached there. Trials still
running count as pending points (``X_pending`` at the full fidelity), so concurrent workers are not
sent to the same place. Several objectives: random augmented Chebyshev scalarisation per proposal
(``scalarize``). ``predict`` gives the same GP's predictions at (config, fidelity) points, which
``freeze_thaw`` fuses with its PFN's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from surrogates.schedulers.base import SchedulingProblem, TrialCurve
from surrogates.schedulers.scalarize import scalarizer

MAX_POINTS = 128  # reports the GP is fitted on (the latest report of every trial is always kept)
FIT_ITERATIONS = 50  # L-BFGS iterations per hyperparameter fit
REFIT_EVERY = 5  # models built between hyperparameter fits (in between: the last fit's, on the new data)
MIN_TRIALS = 3  # trials with reports before the model is used (random configs until then)


class GPProposer:
    """Proposes the config with the best log-EI among ``candidates`` random ones."""

    def __init__(self, problem: SchedulingProblem, candidates: int, seed: int, label: str) -> None:
        if problem.space is None:
            raise ValueError(f"{label} needs the search space to encode configs")
        self.problem = problem
        self.candidates = candidates
        self.seed = seed
        self.label = label
        self._hyperparameters: dict[str, torch.Tensor] | None = None
        self._models_built = 0

    def propose(
        self, trials: Mapping[int, TrialCurve], running: Collection[int], rng: np.random.Generator
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The next config and what the GP predicts for it, or None while fewer than ``MIN_TRIALS``
        trials have reported. ``running``: the trials training now (pending points)."""
        model = self._model(trials, rng)
        if model is None:
            return None
        configs = [self.problem.sample_config(rng) for _ in range(self.candidates)]
        scores, mean, std = self._acquisition(model, trials, running, configs)
        i = int(np.argmax(scores))
        info = {
            "predicted": {
                "fidelity": self.problem.max_fidelity,
                "mean": float(mean[i]),
                "std": float(std[i]),
            },
            "acquisition": float(scores[i]),
            "proposed_by": f"{self.label}: best log-EI of {len(configs)} random configs, "
            f"{len(running)} pending",
        }
        return configs[i], info

    def score(
        self,
        trials: Mapping[int, TrialCurve],
        running: Collection[int],
        configs: Sequence[dict[str, Any]],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """log-EI at the full fidelity of each config, and the GP's mean and std there (each (C,)), or
        None while fewer than ``MIN_TRIALS`` trials have reported."""
        model = self._model(trials, rng)
        return None if model is None else self._acquisition(model, trials, running, configs)

    def predict(
        self,
        trials: Mapping[int, TrialCurve],
        to_value: Callable[[np.ndarray], np.ndarray],
        configs: np.ndarray,
        steps: Sequence[int],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The GP's posterior mean and std (each (Q,)) of the value ``to_value`` gives, for the encoded
        ``configs`` (Q, d) after ``steps`` (Q,) steps of training (1..steps), or None while fewer than
        ``MIN_TRIALS`` trials have reported. For ``freeze_thaw``, which fuses it with the PFN's."""
        fitted = self._model(trials, rng, to_value)
        if fitted is None:
            return None
        gp, _ = fitted
        query = np.hstack([configs, np.asarray(steps, dtype=np.float64)[:, None] / self.problem.steps])
        with torch.no_grad():
            posterior = gp.posterior(torch.as_tensor(query, dtype=torch.float64))
        mean = posterior.mean.squeeze(-1).numpy()
        std = posterior.variance.clamp_min(1e-12).sqrt().squeeze(-1).numpy()
        return mean, std

    def _model(
        self,
        trials: Mapping[int, TrialCurve],
        rng: np.random.Generator,
        to_value: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[Any, float] | None:
        """The GP on the trials' reports, valued by ``to_value`` (a new scalarisation if None), and
        the best value at the full fidelity (in its units)."""
        space, problem = self.problem.space, self.problem
        assert space is not None  # checked in __init__
        observed = [t for t, curve in trials.items() if curve.costs]
        if len(observed) < MIN_TRIALS:
            return None
        points = _points(trials, observed, rng)
        all_costs = np.vstack([costs for _, _, costs in points])
        if to_value is None:
            to_value = scalarizer(all_costs, rng)
        x = np.vstack(
            [
                np.append(space.encode(trials[t].config), (f - problem.min_fidelity + 1) / problem.steps)
                for t, f, _ in points
            ]
        )
        y = to_value(all_costs)
        top = [y[i] for i, (_, f, _) in enumerate(points) if f == problem.max_fidelity]
        refit = self._hyperparameters is None or self._models_built % REFIT_EVERY == 0
        self._models_built += 1
        gp = _fit(x, y, None if refit else self._hyperparameters)
        self._hyperparameters = _hyperparameters(gp)
        return gp, max(top) if top else float(np.max(y))

    def _acquisition(
        self,
        model: tuple[Any, float],
        trials: Mapping[int, TrialCurve],
        running: Collection[int],
        configs: Sequence[dict[str, Any]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        space = self.problem.space
        assert space is not None  # checked in __init__
        pending = [np.append(space.encode(trials[t].config), 1.0) for t in running]
        candidates = np.vstack([np.append(space.encode(c), 1.0) for c in configs])
        gp, best = model
        return _expected_improvement(gp, candidates, best, pending, self.seed)


def _points(
    trials: Mapping[int, TrialCurve], observed: list[int], rng: np.random.Generator
) -> list[tuple[int, int, np.ndarray]]:
    """(trial, fidelity, costs) reports, at most ``MAX_POINTS``: each trial's latest, then a sample."""
    curves = [(t, trials[t]) for t in observed]
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

"""The BoTorch side of ``BoTorchStrategy``: training-set cap, GP fitting, acquisition, posteriors.

Everything here works on encoded configs (points of the unit cube, float64 tensors) and on
targets in maximisation form: columns ``[objectives..., bilog(constraint slacks)...]``, where a
slack <= 0 is feasible. The strategy module owns configs, candidate sets and ``Suggestion``s.

Nothing is written by hand that BoTorch has: ``SingleTaskGP``, ``ModelListGP``,
``fit_gpytorch_mll``, ``qLogNoisyExpectedHypervolumeImprovement``, ``qLogNoisyExpectedImprovement``,
``qLogProbabilityOfFeasibility``, ``optimize_acqf_discrete`` and ``is_non_dominated``. Ours are
only the training-set cap, the reference point, the bilog of slacks and the batch shortlist.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.acquisition.logei import qLogProbabilityOfFeasibility
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.objective import GenericMCObjective
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf_discrete
from botorch.sampling.normal import SobolQMCNormalSampler
from botorch.utils.multi_objective.pareto import is_non_dominated
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

DTYPE = torch.float64
MAX_TRAIN_POINTS = 256  # above this, a GP fit (O(N^3)) and NEHVI's baseline get slow
# Quasi-MC posterior samples per acquisition evaluation; NEHVI partitions the space once per sample,
# which costs more with three or more objectives (64 took 14 s instead of 20 s at 500 observations
# with three objectives and picked the same config).
MC_SAMPLES, MC_SAMPLES_3D = 128, 64
EVAL_CHUNK = 2048  # candidates per acquisition evaluation (bounds memory)
MIN_SHORTLIST, SHORTLIST_PER_PICK = 128, 32  # greedy batch selection runs over a shortlist
REF_MARGIN = 0.1  # the reference point lies this fraction of the observed range below the worst value


def as_tensor(array: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=DTYPE)


def select_training_points(
    y: np.ndarray, feasible: np.ndarray, limit: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the rows to train on: all of them up to ``limit``, else a capped subset.

    Above ``limit`` rows we keep every feasible non-dominated row (they define the incumbent front
    the acquisition must improve on) and fill up to ``limit`` with a uniform random subsample of
    the rest; if the front alone exceeds ``limit`` it is subsampled too.  y: (N, M), feasible: (N,).
    """
    n = len(y)
    if n <= limit:
        return np.arange(n)
    front = np.zeros(n, dtype=bool)  # (N,)
    feasible_idx = np.flatnonzero(feasible)
    if feasible_idx.size:
        front[feasible_idx] = is_non_dominated(as_tensor(y[feasible_idx]), deduplicate=False).numpy()
    keep = np.flatnonzero(front)
    if keep.size >= limit:
        return np.sort(rng.choice(keep, size=limit, replace=False))
    rest = rng.choice(np.flatnonzero(~front), size=limit - keep.size, replace=False)
    return np.sort(np.concatenate([keep, rest]))


def bilog(slack: np.ndarray) -> np.ndarray:
    """sign(s) * log(1 + |s|): keeps the sign of a slack (so ``<= 0`` still means feasible) while
    squashing far-off values, which a stationary GP fits badly (as Ax does for outcome constraints).
    """
    return np.sign(slack) * np.log1p(np.abs(slack))


def fit_model(X: Tensor, targets: Tensor) -> ModelListGP:
    """One exact GP per target column, hyperparameters by maximum marginal likelihood.

    X: (N, d) in the unit cube; targets: (N, K).  Outcomes are standardised per column.
    """
    models = []
    for k in range(targets.shape[-1]):
        gp = SingleTaskGP(X, targets[:, k : k + 1], outcome_transform=Standardize(m=1))  # (N, 1) target
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        models.append(gp)
    return ModelListGP(*models)


def reference_point(y: np.ndarray, feasible: np.ndarray) -> Tensor:
    """NEHVI's reference point (maximisation form): worst value minus 10% of the range, per objective.

    Computed over the feasible rows when there are any (a front only counts feasible points),
    else over all rows. A zero range falls back to 10% of the value's magnitude (or 0.1).
    y: (N, M) -> (M,).
    """
    rows = y[feasible] if feasible.any() else y  # (F, M)
    low, high = rows.min(axis=0), rows.max(axis=0)  # (M,)
    span = high - low
    span = np.where(span > 0, span, np.maximum(np.abs(low), 1.0))
    return as_tensor(low - REF_MARGIN * span)  # (M,)


def make_acquisition(
    model: ModelListGP,
    X_baseline: Tensor,
    ref_point: Tensor,
    n_objectives: int,
    any_feasible: bool,
    X_pending: Tensor | None,
    seed: int,
) -> tuple[AcquisitionFunction, str]:
    """qLogNEHVI for several objectives, qLogNEI for one; model outputs past the objectives are slacks.

    While constraints exist and no observation satisfies them, improvement is undefined (BoTorch
    warns), so the acquisition is the log probability of feasibility until one does.
    X_baseline: (N, d); ref_point: (M,); X_pending: (P, d) or None.
    """
    constraints = [_slack_of(k) for k in range(n_objectives, model.num_outputs)]
    n_samples = MC_SAMPLES if n_objectives <= 2 else MC_SAMPLES_3D
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([n_samples]), seed=seed)
    acq: AcquisitionFunction
    if constraints and not any_feasible:
        acq = qLogProbabilityOfFeasibility(model, constraints, sampler=sampler, X_pending=X_pending)
        return acq, "qLogPoF"
    if n_objectives >= 2:
        acq = qLogNoisyExpectedHypervolumeImprovement(
            model=model,
            ref_point=ref_point,
            X_baseline=X_baseline,
            sampler=sampler,
            objective=IdentityMCMultiOutputObjective(outcomes=list(range(n_objectives))),
            constraints=constraints or None,
            X_pending=X_pending,
            prune_baseline=True,
        )
        return acq, "qLogNEHVI"
    acq = qLogNoisyExpectedImprovement(
        model=model,
        X_baseline=X_baseline,
        sampler=sampler,
        objective=GenericMCObjective(_first_output),
        constraints=constraints or None,
        X_pending=X_pending,
        prune_baseline=True,
    )
    return acq, "qLogNEI"


def _first_output(Z: Tensor, X: Tensor | None = None) -> Tensor:
    return Z[..., 0]  # (S, b, q, K) -> (S, b, q)


def _slack_of(column: int) -> Callable[[Tensor], Tensor]:
    """An outcome constraint on a slack column: samples (S, b, q, K) -> (S, b, q), <= 0 feasible."""
    return lambda Z: Z[..., column]


def acquisition_values(acq: AcquisitionFunction, X: Tensor) -> Tensor:
    """Single-point acquisition values of the rows of X (K, d) -> (K,), in chunks."""
    with torch.no_grad():
        return torch.cat([acq(chunk.unsqueeze(-2)) for chunk in X.split(EVAL_CHUNK)])


def pick_batch(
    acq: AcquisitionFunction, X_cand: Tensor, q: int, values: Tensor, greedy: bool = True
) -> tuple[list[int], list[float]]:
    """Indices of q distinct rows of X_cand (K, d) and their acquisition values.

    ``values`` (K,) are the rows' single-point values (``acquisition_values``).

    ``greedy``: sequential greedy (``optimize_acqf_discrete``), each pick conditioned on the earlier
    ones as pending, over a shortlist of the ``SHORTLIST_PER_PICK * q`` (at least ``MIN_SHORTLIST``)
    candidates with the highest single-point value: the first pick is exact, later ones skip
    candidates that ranked low before conditioning, which saves q - 1 passes over every candidate
    (the costly part with three objectives). Otherwise the q best single-point values (for a
    probability of feasibility, whose batch value saturates once one point is surely feasible).
    """
    size = max(MIN_SHORTLIST, SHORTLIST_PER_PICK * q)
    if greedy and q == 1:
        best = int(torch.argmax(values))
        return [best], [float(values[best])]
    if greedy and len(X_cand) <= size:
        return _greedy(acq, X_cand, torch.arange(len(X_cand)), q)
    if not greedy:
        top = torch.topk(values, q).indices  # (q,)
        return top.tolist(), values[top].tolist()
    shortlist = torch.topk(values, size).indices.sort().values  # (size,)
    return _greedy(acq, X_cand, shortlist, q)


def _greedy(acq: AcquisitionFunction, X_cand: Tensor, rows: Tensor, q: int) -> tuple[list[int], list[float]]:
    """Sequential greedy over X_cand[rows]; returns indices into X_cand.  rows: (R,)."""
    choices = X_cand[rows]  # (R, d)
    picked, values = optimize_acqf_discrete(acq, q=q, choices=choices, unique=True)
    picked = picked.reshape(q, -1)  # (q, d)
    index = [int(rows[torch.nonzero((choices == x).all(dim=-1))[0, 0]]) for x in picked]
    assert values is not None  # return_acq_values defaults to True
    return index, values.reshape(q).tolist()


def posterior_summary(model: ModelListGP, X: Tensor, n_objectives: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of the latent objectives (maximisation form).

    X: (Q, d) -> mean (Q, M), std (Q, M).
    """
    with torch.no_grad():
        posterior = model.posterior(X)
        mean = posterior.mean[..., :n_objectives]  # (Q, M)
        std = posterior.variance[..., :n_objectives].clamp_min(0.0).sqrt()  # (Q, M)
    return mean.numpy(), std.numpy()

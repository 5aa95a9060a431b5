"""The priors our PFN is trained on: batches of synthetic tasks, each a context and queries.

``PRIOR_VERSION`` names this file's behaviour; it is recorded with every trained model and bumped
whenever a sampler changes what it draws.

Every task lives on encoded configs (``ParamSpace.encode``: the unit cube, zero-padded to
``max_dim``) with a fidelity coordinate ``t`` in (0, 1] (1 is the full fidelity). Two kinds:

**Functions over mixed configuration spaces** (``t = 1``), for the ``pfn`` strategy.
  - Inputs mimic encoded spaces: each active coordinate is continuous, ordinal (2-10 levels),
    binary, or part of a one-hot group (an unordered categorical); with probability 0.2 a
    coordinate is conditional (zero wherever a binary "parent" coordinate is zero).
  - 70% of tasks are GP draws: Matern-5/2 or RBF with ARD lengthscales log-uniform in
    [0.05, 4] (a long one makes a coordinate nearly irrelevant), an optional linear trend,
    and Gaussian noise with variance log-uniform in [1e-4, 0.3] (relative to signal).
  - 30% are BNN-like: a random 1-3 layer MLP (width 16-64, tanh / ReLU / sine activations,
    random weight scale) plus the same noise.
**Learning curves conditioned on the configuration**, for freeze-thaw scheduling (as FT-PFN's prior):
  - Each config's curve is ``y(t) = y_inf - (y_inf - y0) * (1 + t / tau) ** -alpha``, with
    ``y_inf``, ``tau`` and ``alpha`` smooth random functions of the config (one GP draw each
    over the task's configs, so similar configs learn alike). Curves saturate at different
    rates and cross.
  - Some tasks diverge: a config whose fourth GP draw is high turns down after a random
    epoch. Every epoch carries Gaussian noise with a per-task scale (log-uniform in [1e-3, 5e-2]).
  - The context holds each config's observed prefix (random length; some configs unseen). The
    queries are unobserved epochs of those configs, the final epoch most often.

Values are arbitrary in scale and shift (each task is affinely transformed at random); the
model sees y standardised by the context's mean and standard deviation, as at prediction time.
Objective vectors are modelled one objective at a time (no correlated-objective prior yet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

PRIOR_VERSION = "supernas-prior-1"
MAX_STANDARDISED = 30.0  # standardised targets are clipped to +-this (a degenerate context)
# The smallest context trained on. Standardised by the mean and std of one to three points, query
# values are so heavy-tailed that their losses swamp training (a 1-D GP PFN did not learn at all).
MIN_CONTEXT = 4


@dataclass(frozen=True)
class TaskBatch:
    """B tasks: N context points (``ctx_pad`` marks padding), M queries, inputs (..., D + 1)."""

    x_ctx: Tensor  # (B, N, D + 1): encoded config and fidelity t
    y_ctx: Tensor  # (B, N) standardised
    ctx_pad: Tensor | None  # (B, N) True where padding; None when every task has N points
    x_qry: Tensor  # (B, M, D + 1)
    y_qry: Tensor  # (B, M) standardised


def standardise(y_ctx: Tensor, y_qry: Tensor, pad: Tensor | None) -> tuple[Tensor, Tensor]:
    """Standardise both by the context's mean and std (per task, over non-padding points)."""
    weight = torch.ones_like(y_ctx) if pad is None else (~pad).to(y_ctx.dtype)
    count = weight.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (y_ctx * weight).sum(-1, keepdim=True) / count
    var = (((y_ctx - mean) ** 2) * weight).sum(-1, keepdim=True) / count
    std = torch.where(count > 1, var.sqrt(), torch.ones_like(var)).clamp_min(1e-6)
    z_ctx = ((y_ctx - mean) / std).clamp(-MAX_STANDARDISED, MAX_STANDARDISED) * weight
    z_qry = ((y_qry - mean) / std).clamp(-MAX_STANDARDISED, MAX_STANDARDISED)
    return z_ctx, z_qry


# --- inputs that look like encoded mixed spaces -----------------------------------------------


def sample_inputs(n: int, dim: int, gen: torch.Generator) -> Tensor:
    """n points of a random mixed space with ``dim`` encoded coordinates: (n, dim) in [0, 1]."""
    x = torch.rand(n, dim, generator=gen, dtype=torch.float64)
    j = 0
    while j < dim:
        kind = float(torch.rand((), generator=gen))
        if kind < 0.45:  # continuous
            j += 1
        elif kind < 0.7:  # ordinal with 2-10 levels
            levels = int(torch.randint(2, 11, (), generator=gen))
            x[:, j] = torch.round(x[:, j] * (levels - 1)) / (levels - 1)
            j += 1
        elif kind < 0.8:  # binary
            x[:, j] = (x[:, j] < 0.5).double()
            j += 1
        else:  # one-hot group (unordered categorical of 2-5 choices)
            width = min(int(torch.randint(2, 6, (), generator=gen)), dim - j)
            choice = torch.randint(0, width, (n,), generator=gen)
            x[:, j : j + width] = torch.nn.functional.one_hot(choice, width).double()
            j += width
    binary = [k for k in range(dim) if bool(((x[:, k] == 0) | (x[:, k] == 1)).all())]
    if binary:
        for k in range(dim):
            if k not in binary and float(torch.rand((), generator=gen)) < 0.2:
                parent = binary[int(torch.randint(0, len(binary), (), generator=gen))]
                x[:, k] = x[:, k] * x[:, parent]
    return x


# --- random functions -------------------------------------------------------------------------


def _kernel(x: Tensor, lengthscales: Tensor, matern: bool) -> Tensor:
    """Covariance of x (n, d) with ARD lengthscales (d,): (n, n)."""
    z = x / lengthscales
    r2 = torch.cdist(z, z).pow(2)
    if not matern:
        return torch.exp(-0.5 * r2)
    r = torch.sqrt(r2.clamp_min(1e-12) * 5.0)
    return (1.0 + r + r * r / 3.0) * torch.exp(-r)


def gp_draws(x: Tensor, n_draws: int, gen: torch.Generator) -> Tensor:
    """``n_draws`` functions from one random GP, evaluated at x (n, d): (n, n_draws), unit variance."""
    n, d = x.shape
    lengthscales = torch.exp(
        torch.empty(d, dtype=torch.float64).uniform_(math.log(0.05), math.log(4.0), generator=gen)
    )
    matern = bool(torch.rand((), generator=gen) < 0.5)
    cov = _kernel(x, lengthscales, matern) + 1e-6 * torch.eye(n, dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    f = chol @ torch.randn(n, n_draws, generator=gen, dtype=torch.float64)
    if float(torch.rand((), generator=gen)) < 0.3:  # a linear trend
        f = f + x @ torch.randn(d, n_draws, generator=gen, dtype=torch.float64) * 0.5
    return f


def bnn_draw(x: Tensor, gen: torch.Generator) -> Tensor:
    """A random MLP's output at x (n, d): (n,)."""
    h = x
    for _ in range(int(torch.randint(1, 4, (), generator=gen))):
        width = int(torch.randint(16, 65, (), generator=gen))
        scale = float(torch.empty(()).uniform_(0.5, 3.0, generator=gen))
        w = torch.randn(h.shape[1], width, generator=gen, dtype=torch.float64) * scale / math.sqrt(h.shape[1])
        b = torch.randn(width, generator=gen, dtype=torch.float64) * 0.5
        act = int(torch.randint(0, 3, (), generator=gen))
        h = h @ w + b
        h = torch.tanh(h) if act == 0 else torch.relu(h) if act == 1 else torch.sin(h)
    w = torch.randn(h.shape[1], generator=gen, dtype=torch.float64) / math.sqrt(h.shape[1])
    return h @ w


def _noise_std(gen: torch.Generator) -> float:
    return math.sqrt(math.exp(float(torch.empty(()).uniform_(math.log(1e-4), math.log(0.3), generator=gen))))


def _affine(y: Tensor, gen: torch.Generator) -> Tensor:
    scale = math.exp(float(torch.empty(()).uniform_(-3.0, 3.0, generator=gen)))
    return y * scale + float(torch.randn((), generator=gen)) * 3.0


def function_task(n: int, dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """One function task: inputs (n, dim) and noisy values (n,)."""
    x = sample_inputs(n, dim, gen)
    if float(torch.rand((), generator=gen)) < 0.7:
        f = gp_draws(x, 1, gen)[:, 0]
    else:
        f = bnn_draw(x, gen)
        f = (f - f.mean()) / f.std().clamp_min(1e-6)
    y = f + _noise_std(gen) * torch.randn(n, generator=gen, dtype=torch.float64)
    return x, _affine(y, gen)


def function_batch(
    batch: int, n_ctx: int, n_qry: int, max_dim: int, gen: torch.Generator, dim: int | None = None
) -> TaskBatch:
    """B function tasks of n_ctx context and n_qry query points, dims 1..max_dim (or ``dim``)."""
    xs, ys = [], []
    for _ in range(batch):
        d = dim or int(torch.randint(1, max_dim + 1, (), generator=gen))
        x, y = function_task(n_ctx + n_qry, d, gen)
        xs.append(_pad_inputs(x, max_dim, torch.ones(len(x), dtype=torch.float64)))
        ys.append(y)
    x, y = torch.stack(xs), torch.stack(ys)  # (B, N + M, D + 1), (B, N + M)
    z_ctx, z_qry = standardise(y[:, :n_ctx], y[:, n_ctx:], None)
    return TaskBatch(x[:, :n_ctx].float(), z_ctx.float(), None, x[:, n_ctx:].float(), z_qry.float())


def _pad_inputs(x: Tensor, max_dim: int, t: Tensor) -> Tensor:
    """(n, d) configs and (n,) fidelities -> (n, max_dim + 1)."""
    out = torch.zeros(len(x), max_dim + 1, dtype=torch.float64)
    out[:, : x.shape[1]] = x
    out[:, -1] = t
    return out


# --- learning curves --------------------------------------------------------------------------


def curve_task(n_configs: int, n_epochs: int, dim: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Curves of n_configs configs over n_epochs: configs (C, dim), values (C, E)."""
    x = sample_inputs(n_configs, dim, gen)
    latent = gp_draws(x, 4, gen)  # (C, 4)
    y0 = float(torch.rand((), generator=gen)) * 0.5
    spread = float(torch.empty(()).uniform_(0.2, 2.0, generator=gen))
    y_inf = y0 + (1.0 - y0) * torch.sigmoid(latent[:, 0] * spread + float(torch.randn((), generator=gen)))
    tau = torch.exp(float(torch.empty(()).uniform_(-4.0, 0.0, generator=gen)) + 0.7 * latent[:, 1])
    alpha = torch.exp(float(torch.empty(()).uniform_(-1.0, 1.0, generator=gen)) + 0.4 * latent[:, 2])
    t = torch.arange(1, n_epochs + 1, dtype=torch.float64) / n_epochs  # (E,)
    y = y_inf[:, None] - (y_inf - y0)[:, None] * (1.0 + t[None, :] / tau[:, None]) ** (-alpha[:, None])
    if float(torch.rand((), generator=gen)) < 0.15:  # some configs diverge after a random epoch
        diverging = latent[:, 3] > 0.8
        start = torch.empty(n_configs, dtype=torch.float64).uniform_(0.2, 0.9, generator=gen)
        rate = torch.empty(n_configs, dtype=torch.float64).uniform_(0.2, 2.0, generator=gen)
        drop = (t[None, :] - start[:, None]).clamp_min(0.0) * rate[:, None]
        y = torch.where(diverging[:, None], y - drop * (y - y0).clamp_min(0.0), y)
    noise = math.exp(float(torch.empty(()).uniform_(math.log(1e-3), math.log(5e-2), generator=gen)))
    y = y + noise * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    return x, _affine(y, gen)


def curve_batch(batch: int, max_ctx: int, n_qry: int, max_dim: int, gen: torch.Generator) -> TaskBatch:
    """B learning-curve tasks; contexts of MIN_CONTEXT to max_ctx observed epochs (padded), n_qry queries."""
    tasks = []
    for _ in range(batch):
        n_configs = int(torch.randint(1, 33, (), generator=gen))
        n_epochs = int(torch.randint(5, 51, (), generator=gen))
        d = int(torch.randint(1, max_dim + 1, (), generator=gen))
        x, y = curve_task(n_configs, n_epochs, d, gen)
        tasks.append(_split_curves(x, y, max_ctx, n_qry, max_dim, gen))
    n = max(len(task[1]) for task in tasks)
    x_ctx = torch.zeros(batch, n, max_dim + 1, dtype=torch.float64)
    y_ctx = torch.zeros(batch, n, dtype=torch.float64)
    pad = torch.ones(batch, n, dtype=torch.bool)
    for b, (xc, yc, _, _) in enumerate(tasks):
        x_ctx[b, : len(yc)], y_ctx[b, : len(yc)], pad[b, : len(yc)] = xc, yc, False
    x_qry = torch.stack([task[2] for task in tasks])
    z_ctx, z_qry = standardise(y_ctx, torch.stack([task[3] for task in tasks]), pad)
    return TaskBatch(x_ctx.float(), z_ctx.float(), pad, x_qry.float(), z_qry.float())


def _split_curves(
    x: Tensor, y: Tensor, max_ctx: int, n_qry: int, max_dim: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Observed prefixes (context) and unobserved later epochs (queries) of one task's curves."""
    n_configs, n_epochs = y.shape
    t = torch.arange(1, n_epochs + 1, dtype=torch.float64) / n_epochs
    seen = torch.randint(0, n_epochs, (n_configs,), generator=gen)  # observed prefix lengths
    seen[int(torch.randint(0, n_configs, (), generator=gen))] = max(1, int(seen.max()))
    while int(seen.sum()) > max_ctx:  # shorten the longest prefixes to fit the context
        seen[int(torch.argmax(seen))] -= 1
    while int(seen.sum()) < min(MIN_CONTEXT, n_configs * n_epochs):  # lengthen short ones to the minimum
        c = int(torch.randint(0, n_configs, (), generator=gen))
        seen[c] = min(int(seen[c]) + 1, n_epochs)
    ctx = [(c, e) for c in range(n_configs) for e in range(int(seen[c]))]
    future = [(c, e) for c in range(n_configs) for e in range(int(seen[c]), n_epochs)]
    finals = [(c, n_epochs - 1) for c in range(n_configs) if int(seen[c]) < n_epochs]
    if not future:  # every curve complete: query the epochs seen, as noisy repeats
        future = finals = ctx
    pick = torch.randint(0, len(future), (n_qry,), generator=gen)
    qry = [future[int(i)] for i in pick]
    half = n_qry // 3  # a third of the queries ask for final epochs, what freeze-thaw needs most
    for i in range(half):
        qry[i] = finals[int(torch.randint(0, len(finals), (), generator=gen))]

    def gather(points: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        c = torch.tensor([p[0] for p in points], dtype=torch.long)
        e = torch.tensor([p[1] for p in points], dtype=torch.long)
        return _pad_inputs(x[c], max_dim, t[e]), y[c, e]

    xc, yc = gather(ctx)
    xq, yq = gather(qry)
    return xc, yc, xq, yq


def fixed_gp_batch(
    batch: int,
    n_ctx: int,
    n_qry: int,
    max_dim: int,
    gen: torch.Generator,
    lengthscale: float = 0.2,
    noise_std: float = 0.1,
) -> TaskBatch:
    """1-D draws from one fixed RBF GP (unit variance): the prior whose exact posterior the
    retraining test compares a tiny PFN with. No affine transform."""
    n = n_ctx + n_qry
    xs, ys = [], []
    for _ in range(batch):
        x = torch.rand(n, 1, generator=gen, dtype=torch.float64)
        cov = _kernel(x, torch.tensor([lengthscale], dtype=torch.float64), matern=False)
        f = torch.linalg.cholesky(cov + 1e-6 * torch.eye(n, dtype=torch.float64)) @ torch.randn(
            n, generator=gen, dtype=torch.float64
        )
        xs.append(_pad_inputs(x, max_dim, torch.ones(n, dtype=torch.float64)))
        ys.append(f + noise_std * torch.randn(n, generator=gen, dtype=torch.float64))
    x, y = torch.stack(xs), torch.stack(ys)
    z_ctx, z_qry = standardise(y[:, :n_ctx], y[:, n_ctx:], None)
    return TaskBatch(x[:, :n_ctx].float(), z_ctx.float(), None, x[:, n_ctx:].float(), z_qry.float())

"""The Riemann ("bar") distribution a PFN predicts: probabilities over fixed buckets of y.

``borders`` (K+1,) split the real line into K buckets. Interior buckets carry uniform density; the
two outer buckets have full support (as the PFN paper's full-support bar distribution): the first
is a half-normal reaching down to -inf from ``borders[1]``, the last a half-normal reaching up to
+inf from ``borders[-2]``, each with the bucket's width as its scale, or a quarter of the span of
the finite buckets if that is larger. So every y has a finite
log-likelihood, and mean, variance, CDF, quantiles and expected improvement are exact.

Every function takes ``logits`` (..., K) and works on the trailing dimension.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
TAIL_SCALE_DIVISOR = 4.0  # a tail's scale is at least a quarter of the finite buckets' span


class BarDistribution:
    """Exact statistics of the bar distribution on ``borders`` (K+1,), strictly increasing."""

    def __init__(self, borders: Tensor) -> None:
        if borders.ndim != 1 or len(borders) < 4:
            raise ValueError("borders must be a 1-D tensor of at least 4 values")
        if not bool((borders[1:] > borders[:-1]).all()):
            raise ValueError("borders must be strictly increasing")
        self.borders = borders
        self.widths = borders[1:] - borders[:-1]  # (K,)
        # Training clips standardised targets, so the outer buckets can be slivers at the clip; a
        # tail as narrow as its sliver would give a value just past it a log density near -1e9.
        min_scale = (borders[-2] - borders[1]) / TAIL_SCALE_DIVISOR
        self.left_scale = torch.maximum(self.widths[0], min_scale)
        self.right_scale = torch.maximum(self.widths[-1], min_scale)

    @property
    def n_bars(self) -> int:
        return len(self.widths)

    def to(self, dtype: torch.dtype) -> BarDistribution:
        return BarDistribution(self.borders.to(dtype))

    # --- densities ------------------------------------------------------------------------

    def bucket(self, y: Tensor) -> Tensor:
        """Index of the bucket holding each y (outer buckets take everything beyond them)."""
        inner = self.borders[1:-1].contiguous()
        return torch.searchsorted(inner, y.contiguous(), right=False).clamp(0, self.n_bars - 1)

    def log_prob(self, logits: Tensor, y: Tensor) -> Tensor:
        """log p(y): logits (..., K), y (...) -> (...)."""
        log_p = torch.log_softmax(logits, dim=-1)
        k = self.bucket(y)
        log_pk = log_p.gather(-1, k.unsqueeze(-1)).squeeze(-1)  # (...)
        inside = log_pk - torch.log(self.widths[k])
        left = log_pk + self._log_half_normal(self.borders[1] - y, self.left_scale)
        right = log_pk + self._log_half_normal(y - self.borders[-2], self.right_scale)
        return torch.where(k == 0, left, torch.where(k == self.n_bars - 1, right, inside))

    @staticmethod
    def _log_half_normal(distance: Tensor, scale: Tensor) -> Tensor:
        d = distance.clamp_min(0.0)
        return math.log(2.0) - _LOG_SQRT_2PI - torch.log(scale) - 0.5 * (d / scale) ** 2

    # --- moments --------------------------------------------------------------------------

    def _bucket_moments(self) -> tuple[Tensor, Tensor]:
        """E[y | bucket] and E[y^2 | bucket], each (K,)."""
        a, b = self.borders[:-1], self.borders[1:]
        mean = (a + b) / 2
        second = (a * a + a * b + b * b) / 3
        ls, rs = self.left_scale, self.right_scale
        left_mean = self.borders[1] - ls * _SQRT_2_OVER_PI
        right_mean = self.borders[-2] + rs * _SQRT_2_OVER_PI
        var_half = 1.0 - 2.0 / math.pi
        mean = torch.cat([left_mean.reshape(1), mean[1:-1], right_mean.reshape(1)])
        second = torch.cat(
            [
                (left_mean**2 + ls**2 * var_half).reshape(1),
                second[1:-1],
                (right_mean**2 + rs**2 * var_half).reshape(1),
            ]
        )
        return mean, second

    def mean(self, logits: Tensor) -> Tensor:
        mean, _ = self._bucket_moments()
        return torch.softmax(logits, dim=-1) @ mean

    def variance(self, logits: Tensor) -> Tensor:
        mean_k, second_k = self._bucket_moments()
        p = torch.softmax(logits, dim=-1)
        mean = p @ mean_k
        return (p @ second_k - mean**2).clamp_min(0.0)

    # --- CDF and quantiles ----------------------------------------------------------------

    def cdf(self, logits: Tensor, y: Tensor) -> Tensor:
        """P(Y <= y): logits (..., K), y (...) -> (...)."""
        p = torch.softmax(logits, dim=-1)
        below = torch.cumsum(p, dim=-1) - p  # mass of the buckets left of each bucket
        k = self.bucket(y)
        pk = p.gather(-1, k.unsqueeze(-1)).squeeze(-1)
        before = below.gather(-1, k.unsqueeze(-1)).squeeze(-1)
        a, b = self.borders[k], self.borders[k + 1]
        frac = ((y - a) / (b - a)).clamp(0.0, 1.0)
        normal = torch.distributions.Normal(0.0, 1.0)
        left_frac = 2.0 * (1.0 - normal.cdf((self.borders[1] - y).clamp_min(0.0) / self.left_scale))
        right_frac = 2.0 * normal.cdf((y - self.borders[-2]).clamp_min(0.0) / self.right_scale) - 1.0
        frac = torch.where(k == 0, left_frac, torch.where(k == self.n_bars - 1, right_frac, frac))
        return (before + pk * frac).clamp(0.0, 1.0)

    def quantile(self, logits: Tensor, q: float | Tensor) -> Tensor:
        """The q-quantile, 0 < q < 1: logits (..., K) -> (...)."""
        q = torch.as_tensor(q, dtype=logits.dtype).expand(logits.shape[:-1])
        return self.quantiles(logits, q.unsqueeze(-1)).squeeze(-1)

    def quantiles(self, logits: Tensor, levels: Tensor) -> Tensor:
        """S levels per distribution, 0 < level < 1: logits (..., K), levels (..., S) -> (..., S).
        One CDF per distribution serves all its levels (Monte Carlo by inverse CDF)."""
        p = torch.softmax(logits, dim=-1)
        cum = torch.cumsum(p, dim=-1)
        levels = levels.to(p.dtype).expand(*p.shape[:-1], levels.shape[-1])
        k = torch.searchsorted(cum.contiguous(), levels.contiguous()).clamp(0, self.n_bars - 1)  # (..., S)
        pk = p.gather(-1, k).clamp_min(1e-12)
        before = (cum.gather(-1, k) - pk).clamp_min(0.0)
        frac = ((levels - before) / pk).clamp(1e-9, 1.0 - 1e-9)
        inside = self.borders[k] + frac * self.widths[k]
        normal = torch.distributions.Normal(0.0, 1.0)
        left = self.borders[1] - self.left_scale * normal.icdf(1.0 - frac / 2.0)
        right = self.borders[-2] + self.right_scale * normal.icdf(0.5 + frac / 2.0)
        return torch.where(k == 0, left, torch.where(k == self.n_bars - 1, right, inside))

    def sample(self, logits: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws per distribution: logits (..., K) -> (n, ...), by inverse CDF."""
        u = torch.rand((n, *logits.shape[:-1]), generator=generator, dtype=logits.dtype)
        return self.quantile(logits.expand(n, *logits.shape), u)

    # --- acquisition ----------------------------------------------------------------------

    def expected_improvement(self, logits: Tensor, best: float | Tensor) -> Tensor:
        """E[max(Y - best, 0)] exactly, bucket by bucket: logits (..., K) -> (...)."""
        p = torch.softmax(logits, dim=-1)
        f = torch.as_tensor(best, dtype=p.dtype).expand(p.shape[:-1]).unsqueeze(-1)  # (..., 1)
        a, b = self.borders[:-1], self.borders[1:]  # (K,)
        full = (a + b) / 2 - f
        partial = (b - f).clamp_min(0.0) ** 2 / (2 * (b - a))
        gain = torch.where(f <= a, full, partial)  # (..., K)
        normal = torch.distributions.Normal(0.0, 1.0)
        # right tail: y = c + s|Z|
        c, s = self.borders[-2], self.right_scale
        u = ((f - c) / s).clamp_min(0.0)
        above = 2.0 * (s * normal.log_prob(u).exp() - (f - c).clamp_min(0.0) * (1.0 - normal.cdf(u)))
        right = torch.where(f <= c, c + s * _SQRT_2_OVER_PI - f, above)
        # left tail: y = c - s|Z|, improvement only above best
        c, s = self.borders[1], self.left_scale
        d = (c - f).clamp_min(0.0)
        left = 2.0 * (
            d * (normal.cdf(d / s) - 0.5)
            - s * (normal.log_prob(torch.zeros_like(d)).exp() - normal.log_prob(d / s).exp())
        )
        gain = torch.cat([left, gain[..., 1:-1], right], dim=-1)
        return (p * gain).sum(-1).clamp_min(0.0)

    def probability_of_improvement(self, logits: Tensor, best: float | Tensor) -> Tensor:
        y = torch.as_tensor(best, dtype=logits.dtype).expand(logits.shape[:-1])
        return 1.0 - self.cdf(logits, y)


def borders_from_samples(values: Tensor, n_bars: int) -> Tensor:
    """Borders at equally spaced quantiles of ``values`` (so each bucket is equally likely under the
    prior), deduplicated and widened where quantiles collide."""
    qs = torch.linspace(0.0, 1.0, n_bars + 1, dtype=torch.float64)
    borders = torch.quantile(values.double().flatten()[:10_000_000], qs)
    spread = float(borders[-1] - borders[0])
    min_width = spread * 1e-6
    for i in range(1, len(borders)):
        if borders[i] - borders[i - 1] < min_width:
            borders[i] = borders[i - 1] + min_width
    return borders.float()

"""The PFN as a BoTorch ``Model``, so BoTorch's acquisition functions run on it unchanged.

``PFNModel(predictor, train_X, train_Y).posterior(X)`` is a ``BarPosterior``: per point and output,
the PFN's bar distribution (the posterior predictive of a noisy observation). Its ``mean`` and
``variance`` are exact moments, so analytic acquisitions (``ExpectedImprovement``,
``UpperConfidenceBound``, ``ProbabilityOfImprovement``, ``LogExpectedImprovement``) work on them
(through their Gaussian formulas); MC acquisitions (``qLogNoisyExpectedImprovement``,
``qLogNoisyExpectedHypervolumeImprovement``, ...) draw exact samples from the bar distributions:
a sampler's normal base samples are mapped through the normal CDF and the bars' inverse CDF, so
quasi-MC samplers and fixed base samples work as with a GP. The PFN gives marginals only: the
q points of a batch, and the outputs, are sampled independently. So acquisitions that compare a
candidate with jointly sampled baseline points (the noisy EI / EHVI family) see the best baseline
inflated by independent noise and favour uncertain candidates: on a 1-D quadratic,
``qLogNoisyExpectedImprovement`` picked 0.3 where the optimum is 0.7, while ``qLogExpectedImprovement``
with ``best_f``, ``LogExpectedImprovement`` and ``UpperConfidenceBound`` found it.
"""

from __future__ import annotations

import torch
from botorch.models.model import Model
from botorch.posteriors import Posterior
from botorch.sampling.get_sampler import GetSampler
from botorch.sampling.normal import SobolQMCNormalSampler
from torch import Tensor

from surrogates.pfn.predictor import PFNPredictor, Predictive


class BarPosterior(Posterior):
    """Independent bar distributions over a (batch..., q, m) grid of points and outputs."""

    def __init__(self, predictive: Predictive, shape: torch.Size) -> None:
        self.predictive = predictive  # logits (m, P, K) for P = prod(batch..., q) points
        self._shape = shape  # (batch..., q, m)

    def _to_grid(self, values: Tensor) -> Tensor:
        """(..., m, P) -> (..., batch..., q, m)."""
        lead = values.shape[:-2]
        m = values.shape[-2]
        return values.reshape(*lead, m, *self._shape[:-1]).movedim(len(lead), -1)

    @property
    def mean(self) -> Tensor:
        return self._to_grid(self.predictive.mean())

    @property
    def variance(self) -> Tensor:
        return self._to_grid(self.predictive.std() ** 2)

    @property
    def device(self) -> torch.device:
        return self.predictive.logits.device

    @property
    def dtype(self) -> torch.dtype:
        return self.predictive.logits.dtype

    @property
    def base_sample_shape(self) -> torch.Size:
        return self._shape

    @property
    def batch_shape(self) -> torch.Size:
        return self._shape[:-2]

    @property
    def batch_range(self) -> tuple[int, int]:
        return (0, -2)

    def _extended_shape(self, sample_shape: torch.Size = torch.Size()) -> torch.Size:  # noqa: B008
        return torch.Size(sample_shape) + self._shape

    def rsample(self, sample_shape: torch.Size | None = None) -> Tensor:
        sample_shape = torch.Size(sample_shape or [1])
        base = torch.randn(self._extended_shape(sample_shape), dtype=self.dtype)
        return self.rsample_from_base_samples(sample_shape, base)

    def rsample_from_base_samples(self, sample_shape: torch.Size, base_samples: Tensor) -> Tensor:
        """Normal base samples (sample_shape x batch x q x m) -> bar-distribution samples."""
        u = torch.special.ndtr(base_samples.to(self.dtype)).clamp(1e-6, 1 - 1e-6)
        n = len(sample_shape)
        u = u.expand(*sample_shape, *self._shape).movedim(-1, n)  # (S..., m, batch..., q)
        u = u.reshape(*sample_shape, self._shape[-1], -1)  # (S..., m, P)
        p = self.predictive
        levels = u.reshape(-1, *u.shape[n:]).permute(1, 2, 0)  # (m, P, S): one CDF per bar distribution
        z = p.bars.quantiles(p.logits, levels).permute(2, 0, 1).reshape(u.shape)  # (S..., m, P)
        return self._to_grid(p.loc + p.scale * z)

    def quantile(self, value: Tensor) -> Tensor:
        """One quantile level per leading entry of ``value``: (L,) -> (L, batch..., q, m)."""
        return torch.stack([self._to_grid(self.predictive.quantile(float(v))) for v in value.flatten()])

    def density(self, value: Tensor) -> Tensor:
        """value (batch..., q, m) -> densities of the same shape."""
        y = value.movedim(-1, 0).reshape(self._shape[-1], -1)  # (m, P)
        return self._to_grid(self.predictive.log_prob(y).exp())


@GetSampler.register(BarPosterior)
def _get_bar_sampler(posterior: BarPosterior, sample_shape: torch.Size, *, seed: int | None = None):
    """BoTorch acquisitions that build their own sampler get quasi-MC normal base samples."""
    return SobolQMCNormalSampler(sample_shape=sample_shape, seed=seed)


class PFNModel(Model):
    """A PFN conditioned on (train_X, train_Y): no fitting, the data is the context."""

    def __init__(self, predictor: PFNPredictor, train_X: Tensor, train_Y: Tensor, seed: int = 0) -> None:
        super().__init__()
        if train_X.ndim != 2 or train_Y.ndim != 2 or len(train_X) != len(train_Y):
            raise ValueError("train_X must be (N, d) and train_Y (N, m)")
        self.predictor = predictor
        self.train_X, self.train_Y = train_X, train_Y
        self.seed = seed

    @property
    def num_outputs(self) -> int:
        return self.train_Y.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform=None,
        **kwargs,
    ) -> Posterior:
        """X (batch..., q, d) -> posterior over (batch..., q, m). Always the noisy-observation
        predictive: a PFN trained on noisy targets has no separate latent function."""
        columns = list(range(self.num_outputs)) if output_indices is None else list(output_indices)
        flat = X.detach().reshape(-1, X.shape[-1]).double().numpy()
        predictive = self.predictor.predict(
            self.train_X.double().numpy(), self.train_Y[:, columns].double().numpy(), flat, seed=self.seed
        )
        posterior = BarPosterior(predictive, torch.Size([*X.shape[:-1], len(columns)]))
        if posterior_transform is not None:
            return posterior_transform(posterior)
        return posterior

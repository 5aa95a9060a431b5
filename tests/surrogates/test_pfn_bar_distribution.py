"""The bar distribution's statistics agree with numerical integration and with its own samples."""

from __future__ import annotations

import pytest
import torch

from surrogates.pfn.bar_distribution import BarDistribution, borders_from_samples

F64 = torch.float64


@pytest.fixture
def bars() -> BarDistribution:
    return BarDistribution(torch.tensor([-2.0, -1.0, -0.2, 0.0, 0.5, 1.5, 3.0], dtype=torch.float64))


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.tensor(
        [[0.3, -1.0, 2.0, 0.1, 0.5, -0.4], [-3.0, 0.0, 0.0, 0.0, 1.0, 2.0]], dtype=torch.float64
    )


H = 1e-4  # the midpoint rule on cells aligned with the borders integrates the bars exactly


def _grid() -> torch.Tensor:
    return torch.arange(-40.0 + H / 2, 40.0, H, dtype=torch.float64)


def _integral(values: torch.Tensor) -> torch.Tensor:
    return values.sum(-1) * H


def _density_on_grid(bars: BarDistribution, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    y = _grid()
    density = bars.log_prob(logits[:, None, :].expand(-1, len(y), -1), y.expand(len(logits), -1)).exp()
    return y, density  # (G,), (B, G)


def test_density_integrates_to_one_and_moments_match(bars: BarDistribution, logits: torch.Tensor) -> None:
    y, density = _density_on_grid(bars, logits)
    total = _integral(density)
    mean = _integral(density * y)
    var = _integral(density * (y - mean[:, None]) ** 2)
    assert torch.allclose(total, torch.ones(2, dtype=F64), atol=1e-4)
    assert torch.allclose(bars.mean(logits), mean, atol=1e-3)
    assert torch.allclose(bars.variance(logits), var, atol=1e-3)


def test_cdf_and_quantile_invert_each_other(bars: BarDistribution, logits: torch.Tensor) -> None:
    for q in (0.001, 0.05, 0.3, 0.5, 0.77, 0.999):
        y = bars.quantile(logits, q)
        assert torch.allclose(bars.cdf(logits, y), torch.full((2,), q, dtype=F64), atol=1e-6)
    y, density = _density_on_grid(bars, logits)
    point = torch.tensor([0.25, 0.25], dtype=F64)
    numeric = _integral(density * (y <= 0.25))
    assert torch.allclose(bars.cdf(logits, point), numeric, atol=1e-4)


@pytest.mark.parametrize("best", [-3.0, -1.5, -0.1, 0.7, 2.0, 5.0])
def test_expected_improvement_matches_integration(
    bars: BarDistribution, logits: torch.Tensor, best: float
) -> None:
    y, density = _density_on_grid(bars, logits)
    numeric = _integral(density * (y - best).clamp_min(0.0))
    assert torch.allclose(bars.expected_improvement(logits, best), numeric, atol=1e-4)
    numeric_pi = _integral(density * (y > best))
    assert torch.allclose(bars.probability_of_improvement(logits, best), numeric_pi, atol=1e-4)


def test_samples_follow_the_distribution(bars: BarDistribution, logits: torch.Tensor) -> None:
    draws = bars.sample(logits, 200_000, torch.Generator().manual_seed(0))  # (S, 2)
    assert torch.allclose(draws.mean(0), bars.mean(logits), atol=0.02)
    assert torch.allclose(draws.var(0), bars.variance(logits), rtol=0.03)


def test_every_value_has_a_finite_log_likelihood(bars: BarDistribution, logits: torch.Tensor) -> None:
    far = torch.tensor([-1e3, 1e3], dtype=F64)
    assert torch.isfinite(bars.log_prob(logits, far)).all()


def test_borders_follow_prior_quantiles_and_reject_bad_input() -> None:
    values = torch.randn(100_000, generator=torch.Generator().manual_seed(1))
    borders = borders_from_samples(values, 10)
    assert len(borders) == 11 and bool((borders[1:] > borders[:-1]).all())
    assert abs(float(borders[5])) < 0.05  # the median of a standard normal
    with pytest.raises(ValueError, match="increasing"):
        BarDistribution(torch.tensor([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="at least 4"):
        BarDistribution(torch.tensor([0.0, 1.0]))


def test_quantiles_at_many_levels_match_one_level_at_a_time(
    bars: BarDistribution, logits: torch.Tensor
) -> None:
    levels = torch.tensor([1e-4, 0.01, 0.3, 0.5, 0.77, 0.999], dtype=F64)
    many = bars.quantiles(logits, levels.expand(2, -1))  # (2, 6): six levels of each distribution
    for i, q in enumerate(levels):
        torch.testing.assert_close(many[:, i], bars.quantile(logits, float(q)))
    assert (many.diff(dim=-1) > 0).all(), "quantiles increase with the level"
    torch.testing.assert_close(bars.cdf(logits, many[:, 2]), torch.full((2,), 0.3, dtype=F64))

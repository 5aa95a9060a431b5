"""The shipped PFN: loads offline from the package, predicts usefully, handles inputs it was not
trained on explicitly, and serves BoTorch's acquisition functions."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from botorch.acquisition import LogExpectedImprovement, UpperConfidenceBound, qLogExpectedImprovement
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.optim import optimize_acqf_discrete

from surrogates.pfn import priors
from surrogates.pfn.botorch_model import PFNModel
from surrogates.pfn.predictor import PFNPredictor, shipped_predictor, shipped_weights_dir

MAX_SHIPPED_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def predictor() -> PFNPredictor:
    return shipped_predictor()


def test_weights_are_small_load_safely_and_say_how_they_were_made() -> None:
    weights = shipped_weights_dir() / "pfn.pt"
    assert weights.stat().st_size <= MAX_SHIPPED_BYTES
    state = torch.load(weights, weights_only=True)
    assert "borders" in state
    record = json.loads((shipped_weights_dir() / "pfn.json").read_text())
    assert record["prior_version"] == priors.PRIOR_VERSION and record["prior"] == "mixed"
    assert record["train_seconds"] <= 2 * 3600 and record["steps"] > 0
    assert set(record["validation_nll"]) == {"functions", "curves"}


def test_loads_and_predicts_with_the_network_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PFN tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    loaded = PFNPredictor.load(shipped_weights_dir())
    x = np.random.default_rng(0).random((10, 3))
    assert torch.isfinite(loaded.predict(x, x.sum(1), x).mean()).all()


def _function_tasks(n_tasks: int, n_ctx: int, n_qry: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        tuple(
            v.numpy()
            for v in priors.function_task(n_ctx + n_qry, int(torch.randint(2, 7, (), generator=gen)), gen)
        )
        for _ in range(n_tasks)
    ]


def test_beats_the_context_mean_on_held_out_prior_tasks(predictor: PFNPredictor) -> None:
    """Standardised RMSE of the predictive mean against predicting the context mean, and the
    log-likelihood per point. Shipped weights: median ratio 0.38, mean log-likelihood -0.16."""
    ratios, lls = [], []
    for x, y in _function_tasks(30, 50, 50, seed=2024):
        pred = predictor.predict(x[:50], y[:50], x[50:])
        scale = y[:50].std()
        ratios.append(
            np.sqrt(np.mean((pred.mean().numpy()[0] - y[50:]) ** 2))
            / np.sqrt(np.mean((y[50:] - y[:50].mean()) ** 2))
        )
        lls.append(float(pred.log_prob(y[None, 50:]).mean()) + np.log(scale))
    assert np.median(ratios) < 0.55, np.median(ratios)
    # a standard normal scores -1.42 per point on standardised values; the PFN must do far better
    assert np.mean(lls) > -0.6, np.mean(lls)


def test_learning_curves_extrapolate_better_than_the_last_value(predictor: PFNPredictor) -> None:
    """Final-epoch error over the curves' range. Shipped weights: 0.054 against 0.107 for the last
    observed value."""
    gen = torch.Generator().manual_seed(7)
    errors_pfn, errors_last = [], []
    for _ in range(30):
        x, y = (v.numpy() for v in priors.curve_task(8, 20, 3, gen))
        curves = [list(y[c, : 5 + 2 * c]) for c in range(8)]  # prefixes of 5..19 epochs
        pred = predictor.predict_curves(x, curves, 20, [(c, 20) for c in range(8)])
        scale = np.ptp(y) or 1.0
        errors_pfn.append(np.abs(pred.mean().numpy()[0] - y[:, -1]).mean() / scale)
        errors_last.append(np.abs(np.array([c[-1] for c in curves]) - y[:, -1]).mean() / scale)
    assert np.mean(errors_pfn) < 0.75 * np.mean(errors_last)


def test_inputs_beyond_training_are_reduced_explicitly(predictor: PFNPredictor) -> None:
    rng = np.random.default_rng(3)
    wide = rng.random((30, predictor.config.max_dim + 5))
    y = wide[:, -1] * 3.0  # the target depends on the last coordinate only
    pred = predictor.predict(wide, y, wide[:4])
    assert any("reduced" in note for note in pred.notes)
    many = rng.random((predictor.config.max_context + 100, 2))
    pred = predictor.predict(many, many.sum(1), many[:3])
    assert any("random subsets" in note for note in pred.notes)
    # the mixture of the subsets' predictions is still sharp where the context is dense
    assert np.abs(pred.mean().numpy()[0] - many[:3].sum(1)).max() < 0.1 * many.sum(1).std()
    assert torch.equal(pred.logits, predictor.predict(many, many.sum(1), many[:3]).logits)  # seeded
    pred = predictor.predict(many[:2], many[:2].sum(1), many[:3])
    assert any("below" in note for note in pred.notes)
    assert not predictor.predict(many[:10], many[:10].sum(1), many[:3]).notes


def test_bad_input_is_refused(predictor: PFNPredictor) -> None:
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="at least one"):
        predictor.predict(x[:0], np.zeros(0), x)
    with pytest.raises(ValueError, match="width"):
        predictor.predict(x, np.zeros(5), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="epochs must lie"):
        predictor.predict_curves(x, [[0.1]] * 5, 10, [(0, 11)])
    with pytest.raises(ValueError, match="one curve"):
        predictor.predict_curves(x, [[0.1]], 10, [(0, 2)])


def test_botorch_acquisitions_run_on_the_pfn_and_find_the_optimum(predictor: PFNPredictor) -> None:
    rng = np.random.default_rng(11)
    train_x = torch.tensor(rng.random((25, 1)))
    f = lambda x: -((x - 0.7) ** 2).sum(-1, keepdim=True)  # noqa: E731
    model = PFNModel(predictor, train_x, f(train_x))
    grid = torch.linspace(0, 1, 41, dtype=torch.float64).unsqueeze(-1)
    for acq in (
        LogExpectedImprovement(model, best_f=f(train_x).max()),
        UpperConfidenceBound(model, beta=1.0),
        qLogExpectedImprovement(model, best_f=f(train_x).max()),
    ):
        best, _ = optimize_acqf_discrete(acq, q=1, choices=grid)
        assert abs(float(best) - 0.7) < 0.13, (type(acq).__name__, float(best))
    two = PFNModel(predictor, train_x, torch.cat([f(train_x), -train_x], dim=-1))
    nehvi = qLogNoisyExpectedHypervolumeImprovement(
        two, ref_point=torch.tensor([-1.0, -1.1]), X_baseline=train_x, prune_baseline=False
    )
    batch, values = optimize_acqf_discrete(nehvi, q=2, choices=grid)
    assert batch.shape == (2, 1) and torch.isfinite(values).all()
    posterior = two.posterior(grid.unsqueeze(1))
    assert posterior.mean.shape == (41, 1, 2) and posterior.rsample(torch.Size([4])).shape == (4, 41, 1, 2)
    # a sample is each bar distribution's quantile at the normal CDF of its base sample
    base = torch.randn(3, 41, 1, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    samples = posterior.rsample_from_base_samples(torch.Size([3]), base)  # (3, 41, 1, 2)
    p = posterior.predictive
    for s, point, output in ((0, 0, 0), (2, 40, 1), (1, 17, 1)):
        level = float(torch.special.ndtr(base[s, point, 0, output]))
        want = p.loc[output, 0] + p.scale[output, 0] * p.bars.quantile(p.logits[output, point], level)
        torch.testing.assert_close(samples[s, point, 0, output], want)

"""Measured costs: counted MACs equal hand-computed ones, exact sizes, sane latencies and peak memory."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from torch import nn

from workers.costs import CostMetrics, count_macs, measure_costs, model_bytes, peak_memory_bytes
from workers.latency import PAUSE_S, ROUNDS, fastest_ms, measure_latency_ms

FAST = {"repeats": 3, "warmup": 1}


def conv_net(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 10),
    )


class TinyTransformer(nn.Module):
    """Tokens (6, 4) -> embedding 16 -> one encoder layer (2 heads, FF 32) -> mean -> 5 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        self.encoder = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class HandAttention(nn.Module):
    """Single-head attention written with matmul and softmax."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        return weights @ v


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))


def test_linear_mlp_macs_params_and_bytes_are_exact() -> None:
    costs = measure_costs(mlp(), (20,), **FAST)
    assert costs.macs == 20 * 32 + 32 * 3
    assert costs.params == 20 * 32 + 32 + 32 * 3 + 3
    assert costs.model_bytes == 4 * costs.params


def test_single_conv_macs_are_exact() -> None:
    assert count_macs(nn.Conv2d(3, 8, 3, padding=1), (3, 16, 16)) == 8 * 16 * 16 * (3 * 3 * 3)
    strided_depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
    assert count_macs(strided_depthwise, (8, 16, 16)) == 8 * 8 * 8 * (1 * 3 * 3)


def test_conv_net_counts_convs_and_linear_and_buffers_in_bytes() -> None:
    width = 8
    costs = measure_costs(conv_net(width), (3, 32, 32), **FAST)
    assert costs.macs == 32 * 32 * (width * 3 * 9 + width * width * 9) + width * 10
    params = (3 * 9 * width + width) + 2 * width + (width * width * 9 + width) + (width * 10 + 10)
    assert costs.params == params
    # float32 parameters, BatchNorm running mean/var (float32) and num_batches_tracked (int64)
    assert costs.model_bytes == 4 * params + 4 * 2 * width + 8


def test_transformer_macs_include_attention() -> None:
    seq, dim, ff, heads = 6, 16, 32, 2
    projections = seq * dim * 3 * dim + seq * dim * dim + 2 * seq * dim * ff
    attention = 2 * heads * seq * seq * (dim // heads)  # Q K^T and weights @ V
    expected = seq * 4 * dim + projections + attention + dim * 5
    model = TinyTransformer().eval()
    assert count_macs(model, (seq, 4)) == expected
    assert measure_costs(model, (seq, 4), **FAST).macs == expected
    assert not model.training


def test_hand_written_attention_macs() -> None:
    seq, dim = 5, 12
    expected = seq * dim * 3 * dim + 2 * seq * seq * dim
    assert count_macs(HandAttention(dim), (seq, dim)) == expected


def test_shared_parameters_count_once_in_bytes() -> None:
    first, second = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
    second.weight = first.weight
    assert model_bytes(nn.Sequential(first, second)) == 8 * 8 * 4


@pytest.mark.parametrize(
    ("model", "shape"),
    [(conv_net(8), (3, 16, 16)), (TinyTransformer(), (6, 4)), (mlp(), (20,))],
)
def test_latencies_positive_finite_and_threads_restored(model: nn.Module, shape: tuple[int, ...]) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        model.train()
        costs = measure_costs(model, shape, threads=2, **FAST)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)
    assert model.training
    assert costs.latency_threads == 2
    for latency in (costs.latency_ms, costs.latency_ms_b32):
        assert math.isfinite(latency) and latency > 0
    assert costs.peak_memory_mb > 0


def test_as_dict_is_json_with_the_metric_names() -> None:
    costs = measure_costs(mlp(), (20,), **FAST)
    payload = json.loads(json.dumps(costs.as_dict()))
    assert set(payload) == {
        "params",
        "macs",
        "model_bytes",
        "latency_ms",
        "latency_ms_b32",
        "latency_threads",
        "peak_memory_mb",
    }
    assert CostMetrics(**payload) == costs


def test_peak_memory_grows_with_width_and_batch() -> None:
    narrow, wide = conv_net(4), conv_net(64)
    narrow_peak = peak_memory_bytes(narrow, (3, 32, 32))
    wide_peak = peak_memory_bytes(wide, (3, 32, 32))
    assert 0 < narrow_peak < wide_peak
    # at least one 64-channel 32x32 float32 activation is alive at some point
    assert wide_peak >= 64 * 32 * 32 * 4
    assert peak_memory_bytes(narrow, (3, 32, 32), batch_size=8) > narrow_peak
    assert measure_costs(wide, (3, 32, 32), **FAST).peak_memory_mb == pytest.approx(
        wide_peak / 2**20, rel=0.5
    )


def test_measure_latency_batch_size() -> None:
    model = mlp()
    assert measure_latency_ms(model, (20,), warmup=0, repeats=2, batch_size=4) > 0
    with pytest.raises(ValueError):
        measure_latency_ms(model, (20,), repeats=0)


def test_latency_is_the_fastest_run_so_that_contention_does_not_inflate_it() -> None:
    """Runs slowed by something else (here: two in three sleep 20 ms instead of 2, so that their
    median is slow) do not count."""
    calls = {"n": 0}

    def run() -> None:
        calls["n"] += 1
        time.sleep(0.002 if calls["n"] % 3 == 0 else 0.02)

    measured = fastest_ms(run, warmup=1, repeats=6)
    assert calls["n"] == 7
    assert 2.0 <= measured < 10.0, measured
    with pytest.raises(ValueError):
        fastest_ms(run, repeats=0)
    with pytest.raises(ValueError):
        fastest_ms(run, warmup=-1)


def test_the_timed_runs_are_split_into_rounds_with_pauses() -> None:
    """A burst of load on the core cannot cover every run: ROUNDS rounds, PAUSE_S apart."""
    starts: list[float] = []
    fastest_ms(lambda: starts.append(time.perf_counter()), warmup=0, repeats=200)
    assert len(starts) == 200
    per_round = 200 // ROUNDS
    for first in range(per_round, 200, per_round):  # the first run of each later round
        assert starts[first] - starts[first - 1] >= PAUSE_S

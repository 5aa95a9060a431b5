"""Latency of a module on this worker's CPU: warm-up runs, then the median of timed repeats."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def measure_latency_ms(
    module: nn.Module, input_shape: tuple[int, ...], warmup: int = 5, repeats: int = 30
) -> float:
    """Median milliseconds of one forward pass at batch size 1 in eval mode, one thread."""
    module.eval()
    x = torch.zeros((1, *input_shape))  # (1, C, H, W)
    timings: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)

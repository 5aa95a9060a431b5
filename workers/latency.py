"""Latency of a module on this worker's CPU: warm-up runs, then the median of timed repeats.

The thread count is whatever ``torch.get_num_threads()`` is when called; callers that want a
fixed count (the trial trainable, ``workers.costs.measure_costs``) set it around the call.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def measure_latency_ms(
    module: nn.Module,
    input_shape: tuple[int, ...],
    warmup: int = 5,
    repeats: int = 30,
    batch_size: int = 1,
) -> float:
    """Median milliseconds of one forward pass on a zeros input of shape ``(batch_size, *input_shape)``.

    The module is put in eval mode and timed under ``torch.inference_mode``; ``warmup`` untimed
    runs come first (lazy initialisation, weight packing, caches).
    """
    if repeats < 1 or batch_size < 1 or warmup < 0:
        raise ValueError("repeats and batch_size must be >= 1 and warmup >= 0")
    module.eval()
    x = torch.zeros((batch_size, *input_shape))
    timings: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            timings.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(timings)

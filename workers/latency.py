"""Latency of a module on this worker's CPU: warm-up runs, then the fastest of many timed repeats.

The fastest run, not the median: a trial measures its latency on a shared worker while other trials
train, and contention only ever adds time. Split into rounds with pauses, so that no one burst of
load covers every run. On a 2-core machine like CI's, 30 measurements of the smallest and of the
largest digits sub-network, alone and beside two training processes, varied with a coefficient of
variation of 0.05-0.35 as the median of 30 runs and 0.00-0.05 as the fastest of 200 in 4 rounds
(``python -m benchmarks.latency_noise --measurements 30``; an earlier run of 20: 0.25-0.58 and
0.01-0.21). In two runs of ``examples/digits-linas-latency.yaml``, the 9 configs both ran were
measured within 2% of each other; with the median they had differed by up to 1.9x, enough to
flip a latency constraint.

The thread count is whatever ``torch.get_num_threads()`` is when called; callers that want a
fixed count (the trial trainable, ``workers.costs.measure_costs``) set it around the call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

LARGE_BATCH = 32  # the batch size of ``latency_ms_b32``
REPEATS = 200  # timed runs at batch 1 (a small network runs in well under a millisecond)
WARMUP = 5
ROUNDS = 4  # the timed runs are split into this many rounds ...
PAUSE_S = 0.025  # ... with this pause between two


def large_batch_repeats(repeats: int) -> int:
    """Timed runs at batch 32 for ``repeats`` at batch 1: a tenth, at least 5. A batch-32 run is
    long (about 100 ms for a 3-stage, 64-channel CNN on 28x28 images), so a burst of load covers
    fewer of them; timing that network at both batch sizes takes 4.0-4.3 s this way, against
    4.8-5.0 s with the median of 30 at both (three times each, alternating)."""
    return max(repeats // 10, 5)


def timings_ms(
    run: Callable[[], object], warmup: int = WARMUP, repeats: int = REPEATS, rounds: int = ROUNDS
) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``run``, after ``warmup`` untimed ones. The
    calls are split into ``rounds`` with a pause of ``PAUSE_S`` between them, so that a burst of
    load on the core (another trial's epoch, the driver fitting its model) cannot cover them all."""
    if repeats < 1 or warmup < 0 or rounds < 1:
        raise ValueError("repeats and rounds must be >= 1 and warmup >= 0")
    for _ in range(warmup):
        run()
    out: list[float] = []
    for index in range(repeats):
        if index and index % math.ceil(repeats / rounds) == 0:
            time.sleep(PAUSE_S)
        start = time.perf_counter()
        run()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def fastest_ms(
    run: Callable[[], object], warmup: int = WARMUP, repeats: int = REPEATS, rounds: int = ROUNDS
) -> float:
    """Milliseconds of the fastest call of ``run`` (see ``timings_ms``)."""
    return min(timings_ms(run, warmup, repeats, rounds))


def measure_latency_ms(
    module: nn.Module,
    input_shape: tuple[int, ...],
    warmup: int = WARMUP,
    repeats: int = REPEATS,
    batch_size: int = 1,
) -> float:
    """Milliseconds of the fastest forward pass on a zeros input of shape ``(batch_size, *input_shape)``.

    The module is put in eval mode and timed under ``torch.inference_mode``; ``warmup`` untimed
    runs come first (lazy initialisation, weight packing, caches).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    module.eval()
    x = torch.zeros((batch_size, *input_shape))
    with torch.inference_mode():
        return fastest_ms(lambda: module(x), warmup, repeats)

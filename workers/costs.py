"""Measured inference costs of a sub-network on this worker's CPU.

Every number is measured or counted on the actual module, never estimated from the architecture:

``params``
    Number of parameters (``module.parameters()``, tied parameters counted once).
``macs``
    Multiply-accumulates of one batch-1 forward pass, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` as ``flops // 2``. The counter only knows the
    matrix-product ops: ``mm``, ``addmm``, ``bmm``, ``baddbmm``, the convolutions
    (``convolution`` / ``_convolution`` / ``_slow_conv2d_forward`` ...) and the fused
    scaled-dot-product attention kernels, to which this module adds the CPU one
    (``_scaled_dot_product_flash_attention_for_cpu``, counted as its two batched matmuls).
    ``nn.Linear``, ``nn.Conv*d``, ``torch.matmul`` / ``@`` and attention are therefore covered;
    elementwise ops, activations, normalisation, softmax, pooling and embedding look-ups are
    not (they are cheap next to the matmuls, but are real work). The counting pass runs in eval
    mode with autograd enabled on an input that requires grad, so that PyTorch's fused inference
    fast paths (``nn.TransformerEncoderLayer``, ``nn.MultiheadAttention``), whose single native op
    the counter cannot see into, are not taken.
``model_bytes``
    Bytes of every tensor in ``module.state_dict()`` (parameters and buffers, e.g. BatchNorm
    running statistics and its int64 ``num_batches_tracked``): ``numel * element_size``, each
    storage counted once; for a float32 model that is 4 bytes per parameter plus the buffers.
    It is the size of the weights as held in memory, not of a file (no container overhead).
``latency_ms`` / ``latency_ms_b32``
    Wall-clock milliseconds of the fastest of ``REPEATS`` forward passes at batch 1 (a tenth as
    many at batch 32; eval mode,
    ``inference_mode``, zeros input), see ``workers.latency.measure_latency_ms``, with
    ``torch.set_num_threads(latency_threads)`` in force; the previous thread count is restored.
``peak_memory_mb``
    Peak *extra* CPU memory of one batch-1 forward pass, in MiB (2**20 bytes): the maximum over
    time of the running sum of the allocation (+) and free (-) events that PyTorch's CPU
    allocator reports to the profiler (``torch.profiler.profile(profile_memory=True)``, raw
    ``[memory]`` events of the Kineto results, ordered by time stamp). Memory held before the
    pass (weights, the input tensor) is the zero baseline; activations, kernel workspaces that go
    through the c10 allocator (e.g. im2col buffers) and the output count. Buffers that libraries
    allocate behind PyTorch's back (oneDNN/BLAS scratch space) and Python object overhead do
    not. Measured after one warm-up pass, under ``inference_mode`` and the same thread count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from surrogates.torch_threads import torch_threads
from workers.latency import LARGE_BATCH, REPEATS, WARMUP, large_batch_repeats, measure_latency_ms

BYTES_PER_MB = 1 << 20


@dataclasses.dataclass(frozen=True)
class CostMetrics:
    """Measured costs of one module; field names are the metric names used by the rest of supernas."""

    params: int
    macs: int
    model_bytes: int
    latency_ms: float
    latency_ms_b32: float
    latency_threads: int
    peak_memory_mb: float

    def as_dict(self) -> dict[str, int | float]:
        return dataclasses.asdict(self)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_bytes(module: nn.Module) -> int:
    """Bytes of all state_dict tensors (``numel * element_size``), shared storages counted once."""
    seen: set[tuple[int, int, torch.dtype]] = set()
    total = 0
    for tensor in _tensors_in(list(module.state_dict().values())):
        key = (tensor.data_ptr(), tensor.numel(), tensor.dtype)
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    return total


def _tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Tensors of a state_dict value; quantized modules store tuples of tensors (packed params)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors_in(item)


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """FLOPs of the CPU flash-attention kernel: Q @ K^T and softmax(.) @ V, as for the other SDPA kernels."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one batch-1 forward pass counted by FlopCounterMode (see module docstring)."""
    was_training = module.training
    module.eval()
    x = torch.randn((1, *input_shape), generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)  # keeps fused inference fast paths (opaque to the counter) off
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS)
    try:
        with torch.enable_grad(), counter:
            module(x)
    finally:
        module.train(was_training)
    return counter.get_total_flops() // 2


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Route file descriptor 2 to /dev/null: Kineto logs every profiler start/stop from C++."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_bytes(module: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1) -> int:
    """Peak of the running sum of CPU allocator events during one eval forward pass (see module docstring)."""
    was_training = module.training
    module.eval()
    x = torch.zeros((batch_size, *input_shape))
    try:
        with torch.inference_mode():
            module(x)  # warm-up: lazy initialisation must not count
            with (
                _native_stderr_silenced(),
                profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
            ):
                module(x)
    finally:
        module.train(was_training)
    return _peak_of_memory_events(prof)


def _peak_of_memory_events(prof: profile) -> int:
    events = [
        event
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type() == DeviceType.CPU
    ]
    events.sort(key=lambda event: event.start_ns())
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def measure_costs(
    module: nn.Module,
    input_shape: tuple[int, ...],
    *,
    threads: int = 1,
    repeats: int = REPEATS,
    warmup: int = WARMUP,
) -> CostMetrics:
    """Params, MACs, weight bytes, batch-1/32 latency and peak forward memory of ``module`` on this CPU.

    ``input_shape`` excludes the batch dimension. The module's training flag is restored afterwards.
    """
    if threads < 1:
        raise ValueError("threads must be >= 1")
    was_training = module.training
    try:
        macs = count_macs(module, input_shape)
        with torch_threads(threads):
            latency = measure_latency_ms(module, input_shape, warmup=warmup, repeats=repeats)
            large = large_batch_repeats(repeats)
            latency_b32 = measure_latency_ms(
                module, input_shape, warmup=warmup, repeats=large, batch_size=LARGE_BATCH
            )
            peak = peak_memory_bytes(module, input_shape)
    finally:
        module.train(was_training)
    return CostMetrics(
        params=count_params(module),
        macs=macs,
        model_bytes=model_bytes(module),
        latency_ms=latency,
        latency_ms_b32=latency_b32,
        latency_threads=threads,
        peak_memory_mb=peak / BYTES_PER_MB,
    )

"""Running torch work with a fixed number of intra-op threads (strategies' asks, cost
measurements, benchmarks), the caller's setting restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring the setting after.

    The matrices here are small (N <= 256), so extra threads gain little, and on a shared host
    torch's thread pool oversubscribes the cores: an ask on 100 observations took 19 s with two
    threads on a loaded 2-core host, 2.4 s with one (as ``predictors.py`` found for scikit-learn).
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

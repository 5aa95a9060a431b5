"""Benchmark jobs side by side in worker processes of a set number of torch threads each, or inline.

Each worker is spawned (no forked torch state), sets its thread count and keeps freed memory as the
service's workers do (``workers.allocator``), so a job's timing is what it would be in the service.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import torch

from workers.allocator import retain_freed_memory


class InlineExecutor(Executor):
    """Runs each submitted job at once in this process (one worker: nothing to spawn)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    retain_freed_memory()


def worker_pool(workers: int, threads: int) -> Executor:
    """``workers`` spawned processes of ``threads`` torch threads each, or this process for one."""
    if workers == 1:
        return InlineExecutor()
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(threads,)
    )

"""Trains a supernet in a Ray task and relays its per-epoch progress; shared by searches and by
stand-alone supernet training (``POST /api/v1/supernets``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray

from supernas.states import SupernetState
from workers.supernet_training import SupernetPaths, train_supernet

log = logging.getLogger(__name__)

_POLL_S = 0.5


class SupernetListener(Protocol):
    def supernet_progress(self, message: str) -> None:
        """A human-readable line on the training (epoch, validation accuracies)."""


@dataclass(frozen=True)
class SupernetOutcome:
    state: SupernetState
    reason: str
    summary: dict[str, Any] | None = None


@ray.remote(max_retries=0)
def _train_supernet_task(
    spec: dict[str, Any], root: str, artifacts_root: str, num_threads: int
) -> dict[str, Any]:
    return train_supernet(spec, root, artifacts_root, num_threads)


def _describe(progress: dict[str, Any]) -> str:
    return (
        f"training supernet: epoch {progress['epoch']}/{progress['epochs']}, "
        f"val accuracy largest {progress['largest_val_accuracy']:.3f}, "
        f"smallest {progress['smallest_val_accuracy']:.3f}"
    )


def _failure_reason(exc: Exception) -> str:
    cause = getattr(exc, "cause", None) or exc  # RayTaskError keeps the worker's exception as ``cause``
    text = str(cause).strip().splitlines()
    message = text[-1] if text else type(cause).__name__
    if "collapsed" in message:
        return message
    return f"supernet training failed: {message}"


def _largest_node_cpus() -> int:
    """CPUs of the live Ray node that has the most (a cluster's total may be spread over nodes)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=1)


class SupernetRun:
    """One supernet training (or resumption, or reuse) running as a Ray task, followed from here.

    The training reserves ``cpus`` Ray CPUs and trains with as many torch threads, at most the CPUs
    of the largest node; ``leave_cpu`` keeps one CPU of that node free for trials that run while the
    supernet trains."""

    def __init__(
        self,
        spec: dict[str, Any],
        root: Path,
        artifacts_root: str,
        listener: SupernetListener,
        cpus: int,
        leave_cpu: bool = False,
    ) -> None:
        self.paths = SupernetPaths(root)
        self._listener = listener
        node_cpus = _largest_node_cpus()  # one task runs on one node: fit the biggest
        cpus = max(1, min(cpus, node_cpus - 1 if leave_cpu else node_cpus))
        self._ref = _train_supernet_task.options(num_cpus=cpus).remote(spec, str(root), artifacts_root, cpus)
        self._last: dict[str, Any] | None = None
        listener.supernet_progress("training supernet")

    def follow(
        self, is_canceled: Callable[[], bool], until: Callable[[], bool] | None = None
    ) -> SupernetOutcome | None:
        """Relay progress until the training ends (its outcome; canceled once ``is_canceled()``), or
        until ``until()`` holds while it goes on (None)."""
        while not ray.wait([self._ref], timeout=_POLL_S)[0]:
            if is_canceled():
                ray.cancel(self._ref, force=True)
                return SupernetOutcome(SupernetState.CANCELED, "canceled during supernet training")
            self._relay_progress()
            if until is not None and until():
                return None
        try:
            summary = ray.get(self._ref)
        except Exception as exc:  # the task's own error, re-raised by Ray
            log.warning("supernet training under %s failed: %s", self.paths.root, exc)
            return SupernetOutcome(SupernetState.FAILED, _failure_reason(exc)[:2000])
        reason = (
            f"supernet trained: val accuracy largest {summary['largest_val_accuracy']:.3f}, "
            f"smallest {summary['smallest_val_accuracy']:.3f}"
        )
        return SupernetOutcome(SupernetState.READY, reason, summary)

    def _relay_progress(self) -> None:
        if not self.paths.progress.exists():
            return
        try:
            progress = json.loads(self.paths.progress.read_text())
        except (OSError, ValueError):  # a file being replaced; read it next time
            return
        if progress != self._last:
            self._last = progress
            self._listener.supernet_progress(_describe(progress))


def run_supernet_training(
    spec: dict[str, Any],
    root: Path,
    artifacts_root: str,
    listener: SupernetListener,
    is_canceled: Callable[[], bool],
    cpus: int,
) -> SupernetOutcome:
    """Train (resume, or reuse) the supernet of ``spec`` (a SupernetSpec) under ``root`` on Ray, on
    ``cpus`` Ray CPUs and torch threads."""
    outcome = SupernetRun(spec, root, artifacts_root, listener, cpus).follow(is_canceled)
    assert outcome is not None  # no ``until``: followed to the end
    return outcome

"""Connecting to Ray: an embedded local instance by default, a cluster when ``RAY_ADDRESS`` is set."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

import ray

log = logging.getLogger(__name__)

_GRACEFUL_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def ensure_ray(num_cpus: int | None = None) -> None:
    """Start or join Ray once per process. Ray's dashboard stays off in embedded mode.

    Must run in the main thread: an embedded Ray starts its GCS, raylet and monitors with
    ``PR_SET_PDEATHSIG``, which kills them when the *thread* that started them exits. Started from a
    pool thread (e.g. ``anyio.to_thread``), the whole Ray instance dies whenever the pool retires
    that thread, minutes later, in the middle of a search.
    """
    if ray.is_initialized():
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "start Ray from the main thread: its processes die with the thread that starts them"
        )
    saved = {signum: signal.getsignal(signum) for signum in _GRACEFUL_SIGNALS}
    if joins_a_cluster():
        address = os.environ["RAY_ADDRESS"]
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False)
    else:
        log.info("starting embedded Ray with %s CPUs", num_cpus or "all")
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    _reinstall(saved)


def joins_a_cluster() -> bool:
    """True when ``RAY_ADDRESS`` names a cluster to join, False for the embedded local instance."""
    return bool(os.environ.get("RAY_ADDRESS"))


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def _reinstall(handlers: dict[signal.Signals, Any]) -> None:
    """Give SIGINT and SIGTERM back to the handlers they had before ``ray.init``.

    ``ray.init`` in the main thread replaces them with its own (which exits at once) and installs a
    C-level failure-signal handler that logs and then kills the process; either would skip the
    service's graceful shutdown (requeueing searches, stopping Ray's processes).
    """
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)

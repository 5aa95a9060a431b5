"""Connecting to Ray: an embedded local instance by default, a cluster when ``RAY_ADDRESS`` is set."""

from __future__ import annotations

import logging
import os
import signal
import threading

import ray

log = logging.getLogger(__name__)


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
    address = os.environ.get("RAY_ADDRESS")
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False)
    else:
        log.info("starting embedded Ray with %s CPUs", num_cpus or "all")
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def restore_python_signal_handlers() -> None:
    """Give SIGINT and SIGTERM back to Python's handlers (uvicorn's graceful shutdown).

    ``ray.init`` installs a C-level failure-signal handler that logs and then kills the process,
    which would skip the service's shutdown (requeueing searches, stopping Ray's processes).
    Re-registering the Python handler replaces it. Must run in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal handlers can only be restored from the main thread")
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None:
            signal.signal(signum, handler)

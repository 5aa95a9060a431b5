"""Connecting to Ray: an embedded local instance by default, a cluster when ``RAY_ADDRESS`` is set."""

from __future__ import annotations

import logging
import os

import ray

log = logging.getLogger(__name__)


def ensure_ray(num_cpus: int | None = None) -> None:
    """Start or join Ray once per process. Ray's dashboard stays off in embedded mode."""
    if ray.is_initialized():
        return
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

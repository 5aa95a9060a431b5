"""Ray is started from the main thread only: its processes die with the thread that starts them."""

from __future__ import annotations

import threading

import pytest
import ray

from workers.ray_runtime import ensure_ray


def test_starting_ray_from_another_thread_is_refused() -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            ensure_ray(1)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(60)
    assert not ray.is_initialized()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    with pytest.raises(RuntimeError, match="main thread"):
        raise errors[0]

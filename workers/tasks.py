"""Built-in tasks: data sets that install with the package, split once and for all into train/val/test.

The split is fixed (seed 0, stratified 60/20/20) so every search on a task sees the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

_SPLIT_SEED = 0


@dataclass(frozen=True)
class TaskData:
    """Arrays of one task: images (N, C, H, W) float32 and integer labels (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    preprocessing: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, (C, H, W)."""
        return tuple(self.x_train.shape[1:])


def _split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int, preprocessing: str) -> TaskData:
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=0.4, stratify=y, random_state=_SPLIT_SEED
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=_SPLIT_SEED
    )
    return TaskData(name, x_train, y_train, x_val, y_val, x_test, y_test, num_classes, preprocessing)


def _digits() -> TaskData:
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)  # (1797,)
    return _split("digits", x, y, 10, "8x8 grey image, pixel values divided by 16 (range [0, 1])")


TASKS: dict[str, Callable[[], TaskData]] = {
    "digits": _digits,
}


@lru_cache(maxsize=4)
def load_task(name: str) -> TaskData:
    """Load a built-in task by name (cached per process)."""
    try:
        loader = TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; built-in tasks: {sorted(TASKS)}") from None
    return loader()

"""Built-in tasks: data sets that install with the package or the system, split once and for all.

Every task is split into train/val/test with a fixed seed (0), stratified, so every search on a task sees
the same data. Nothing is ever downloaded: ``digits``, ``wine`` and ``breast_cancer`` ship with
scikit-learn, ``mnist1d`` is generated locally by the ``mnist1d`` package, and ``fashion_mnist`` is read
from the Debian package ``dataset-fashion-mnist``.

| task | kind | example shape | classes | train / val / test |
|---|---|---|---|---|
| digits | image | (1, 8, 8) | 10 | 1078 / 359 / 360 (stratified 60/20/20) |
| wine | tabular | (13,) | 3 | 106 / 36 / 36 (stratified 60/20/20) |
| breast_cancer | tabular | (30,) | 2 | 341 / 114 / 114 (stratified 60/20/20) |
| fashion_mnist | image | (1, 28, 28) | 10 | 50000 / 10000 / 10000 (official test set) |
| mnist1d | sequence | (40, 1) | 10 | 3000 / 1000 / 1000 (official test set) |
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split

from supernas.errors import InvalidInputError

_SPLIT_SEED = 0
KINDS = ("image", "sequence", "tabular")


class TaskUnavailableError(InvalidInputError):
    """A built-in task whose data is not installed on this machine."""


@dataclass(frozen=True)
class TaskData:
    """Arrays of one task: x float32 (N, *input_shape) and integer labels y int64 (N,).

    ``kind`` says how to read one example: ``image`` (C, H, W), ``sequence`` (L, F) or ``tabular`` (F,).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    preprocessing: str
    kind: str = "image"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (C, H, W), (L, F) or (F,) according to ``kind``."""
        return tuple(self.x_train.shape[1:])

    @cached_property
    def fingerprint(self) -> str:
        """sha256 hex of the six arrays (see :func:`data_fingerprint`), computed once per instance."""
        return data_fingerprint(self)


@dataclass(frozen=True)
class TaskInfo:
    """What a built-in task is, known without loading it."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    train_examples: int
    validation_examples: int


# --------------------------------------------------------------------------------------------- helpers


def hash_arrays(named_arrays: list[tuple[str, np.ndarray]]) -> str:
    """sha256 hex over the names, dtypes, shapes and bytes (C order) of the arrays, in the given order."""
    digest = hashlib.sha256()
    for name, array in named_arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def data_fingerprint(task: TaskData) -> str:
    """sha256 hex over dtype, shape and bytes of the six arrays of ``task``; stable across processes."""
    names = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    return hash_arrays([(name, getattr(task, name)) for name in names])


_HELD_OUT = 0.4  # of all examples, for validation and test
_TEST_OF_HELD_OUT = 0.5


def split_train_val_test(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified 60/20/20 split with seed 0: (x_train, y_train, x_val, y_val, x_test, y_test)."""
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=_HELD_OUT, stratify=y, random_state=_SPLIT_SEED
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=_TEST_OF_HELD_OUT, stratify=y_rest, random_state=_SPLIT_SEED
    )
    return x_train, y_train, x_val, y_val, x_test, y_test


def split_sizes(num_examples: int) -> tuple[int, int]:
    """The training and validation examples ``split_train_val_test`` makes of ``num_examples``, without
    the data (scikit-learn rounds a fractional test size up)."""
    held_out = math.ceil(_HELD_OUT * num_examples)
    return num_examples - held_out, held_out - math.ceil(_TEST_OF_HELD_OUT * held_out)


def split_off_validation(
    x: np.ndarray, y: np.ndarray, val_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split of a training set with seed 0: (x_train, y_train, x_val, y_val)."""
    train_idx, val_idx = train_test_split(
        np.arange(len(y)), test_size=val_size, stratify=y, random_state=_SPLIT_SEED
    )
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def standardize(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Standardize features with the mean and std of ``x_train`` only (a constant feature keeps std 1)."""
    mean = x_train.mean(axis=0, dtype=np.float64)  # (F,)
    std = x_train.std(axis=0, dtype=np.float64)  # (F,)
    std[std == 0] = 1.0
    return tuple(((x - mean) / std).astype(np.float32) for x in (x_train, *others))


def make_task(
    name: str,
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    preprocessing: str,
    standardize_features: bool = False,
) -> TaskData:
    """Split (x, y) 60/20/20 and build the task; tabular features may be standardized on train statistics."""
    x_train, y_train, x_val, y_val, x_test, y_test = split_train_val_test(x, y)
    if standardize_features:
        x_train, x_val, x_test = standardize(x_train, x_val, x_test)
    return TaskData(name, x_train, y_train, x_val, y_val, x_test, y_test, num_classes, preprocessing, kind)


# --------------------------------------------------------------------------------------------- scikit-learn


def _digits() -> TaskData:
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)  # (1797,)
    return make_task("digits", "image", x, y, 10, "8x8 grey image, pixel values divided by 16 (range [0, 1])")


def _sklearn_tabular(name: str, loader: Callable[..., object]) -> TaskData:
    bunch = loader()
    x = np.asarray(bunch.data, dtype=np.float32)  # (N, F)
    y = np.asarray(bunch.target, dtype=np.int64)  # (N,)
    preprocessing = "features standardized with the mean and std of the train split"
    return make_task(name, "tabular", x, y, int(y.max()) + 1, preprocessing, standardize_features=True)


def _wine() -> TaskData:
    return _sklearn_tabular("wine", load_wine)


def _breast_cancer() -> TaskData:
    return _sklearn_tabular("breast_cancer", load_breast_cancer)


# --------------------------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_ENV = "SUPERNAS_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_INSTALL_HINT = (
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
    f"or set {FASHION_MNIST_ENV} to a directory holding {sorted(_FASHION_FILES.values())}"
)


def fashion_mnist_dir() -> Path:
    """Directory read for Fashion-MNIST: ``$SUPERNAS_FASHION_MNIST_DIR`` or the Debian package's."""
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_DIR)


def _fashion_mnist_missing(directory: Path) -> str | None:
    missing = [f for f in _FASHION_FILES.values() if not (directory / f).is_file()]
    if not missing:
        return None
    return f"task 'fashion_mnist' is not available: {missing} not found in {directory}; {_INSTALL_HINT}"


def read_idx_gz(path: Path, magic: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (MNIST format) into a uint8 array; check its header."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = raw[:4].hex() if len(raw) >= 4 else "nothing"
        raise TaskUnavailableError(
            f"{path} is not an IDX file of the expected kind (magic number {magic:#010x}, found {found}); "
            f"{_INSTALL_HINT}"
        )
    shape = tuple(int.from_bytes(raw[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise TaskUnavailableError(
            f"{path} is truncated: header announces shape {shape}, {len(raw) - header} bytes follow; "
            f"{_INSTALL_HINT}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_fashion_split(directory: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx_gz(directory / _FASHION_FILES[images], _IDX_IMAGES_MAGIC)  # (N, 28, 28) uint8
    y = read_idx_gz(directory / _FASHION_FILES[labels], _IDX_LABELS_MAGIC)  # (N,) uint8
    if len(x) != len(y) or x.shape[1:] != (28, 28) or int(y.max()) > 9:
        raise TaskUnavailableError(
            f"Fashion-MNIST files in {directory} are inconsistent: images {x.shape}, labels {y.shape}; "
            f"{_INSTALL_HINT}"
        )
    return x, y.astype(np.int64)


def _to_unit_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]  # (N, 1, 28, 28)


@lru_cache(maxsize=2)
def _load_fashion_mnist(directory: Path) -> TaskData:
    reason = _fashion_mnist_missing(directory)
    if reason is not None:
        raise TaskUnavailableError(reason, ("body", "task"))
    x_full, y_full = _read_fashion_split(directory, "train_images", "train_labels")
    x_test, y_test = _read_fashion_split(directory, "test_images", "test_labels")
    x_train, y_train, x_val, y_val = split_off_validation(x_full, y_full, val_size=10_000)
    return TaskData(
        "fashion_mnist",
        _to_unit_float(x_train),
        y_train,
        _to_unit_float(x_val),
        y_val,
        _to_unit_float(x_test),
        y_test,
        10,
        "28x28 grey image, pixel values divided by 255 (range [0, 1]); official test set as test, "
        "10,000 of the official training images (stratified, seed 0) as val",
        "image",
    )


def _fashion_mnist() -> TaskData:
    return _load_fashion_mnist(fashion_mnist_dir())


# --------------------------------------------------------------------------------------------- MNIST-1D

MNIST1D_SEED = 42  # the package's default seed
_GLOBAL_RNG_LOCK = threading.Lock()


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """Run the package's generator (never ``get_dataset``, which downloads) with its default arguments.

    The generator seeds and draws from the global ``random`` and ``numpy.random`` states; they are saved
    and restored around it, under a lock, so the rest of the process is not disturbed.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib: keep it lazy

    args = get_dataset_args()
    args.seed = MNIST1D_SEED
    with _GLOBAL_RNG_LOCK:
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            return make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _mnist1d() -> TaskData:
    data = _generate_mnist1d()
    x_full = np.asarray(data["x"], dtype=np.float32)[:, :, None]  # (4000, 40, 1)
    y_full = np.asarray(data["y"], dtype=np.int64)  # (4000,)
    x_test = np.asarray(data["x_test"], dtype=np.float32)[:, :, None]  # (1000, 40, 1)
    y_test = np.asarray(data["y_test"], dtype=np.int64)  # (1000,)
    x_train, y_train, x_val, y_val = split_off_validation(x_full, y_full, val_size=1_000)
    preprocessing = (
        "generated locally by the mnist1d package (default arguments, seed 42; 40 steps, 1 channel, "
        "centred and scaled to std 1 by the generator); its test set as test, 1,000 of its training "
        "examples (stratified, seed 0) as val"
    )
    return TaskData("mnist1d", x_train, y_train, x_val, y_val, x_test, y_test, 10, preprocessing, "sequence")


# --------------------------------------------------------------------------------------------- registry

TASKS: dict[str, Callable[[], TaskData]] = {
    "digits": _digits,
    "wine": _wine,
    "breast_cancer": _breast_cancer,
    "fashion_mnist": _fashion_mnist,
    "mnist1d": _mnist1d,
}

TASK_INFO: dict[str, TaskInfo] = {
    info.name: info
    for info in (
        TaskInfo(
            "digits",
            "image",
            (1, 8, 8),
            10,
            "scikit-learn's 8x8 handwritten digits (1,797 images)",
            *split_sizes(1797),
        ),
        TaskInfo(
            "wine", "tabular", (13,), 3, "scikit-learn's wine recognition data (178 wines)", *split_sizes(178)
        ),
        TaskInfo(
            "breast_cancer",
            "tabular",
            (30,),
            2,
            "scikit-learn's Wisconsin breast cancer data (569 cases)",
            *split_sizes(569),
        ),
        TaskInfo(
            "fashion_mnist",
            "image",
            (1, 28, 28),
            10,
            "Fashion-MNIST, 70,000 28x28 clothing images (Debian package dataset-fashion-mnist)",
            50_000,
            10_000,
        ),
        TaskInfo(
            "mnist1d",
            "sequence",
            (40, 1),
            10,
            "MNIST-1D, 5,000 1-D digit signals generated locally",
            3000,
            1000,
        ),
    )
}

TASK_KINDS: dict[str, str] = {name: info.kind for name, info in TASK_INFO.items()}


def task_names() -> list[str]:
    """Names of the built-in tasks, sorted."""
    return sorted(TASKS)


def task_available(name: str) -> str | None:
    """None when ``load_task(name)`` can load the task here, else the reason it cannot (a sentence)."""
    if name not in TASKS:
        return f"unknown task {name!r}; built-in tasks: {task_names()}"
    if name == "fashion_mnist":
        return _fashion_mnist_missing(fashion_mnist_dir())
    return None


def task_catalog() -> list[dict[str, object]]:
    """One JSON-ready entry per built-in task, with whether it is available here and why not."""
    entries = []
    for name in task_names():
        info = TASK_INFO[name]
        reason = task_available(name)
        entries.append(
            {
                "name": name,
                "kind": info.kind,
                "input_shape": list(info.input_shape),
                "num_classes": info.num_classes,
                "description": info.description,
                "available": reason is None,
                "unavailable_reason": reason,
            }
        )
    return entries


@lru_cache(maxsize=8)
def _load_cached(name: str) -> TaskData:
    return TASKS[name]()


def load_task(name: str) -> TaskData:
    """Load a built-in task by name (cached per process).

    Raises KeyError for an unknown name and :class:`TaskUnavailableError` when its data is not installed.
    """
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; built-in tasks: {task_names()}")
    if name == "fashion_mnist":  # cached per directory, so the env var is honoured when it changes
        return _fashion_mnist()
    return _load_cached(name)


def clear_task_cache() -> None:
    """Forget every loaded task (the next ``load_task`` reads or generates the data again)."""
    _load_cached.cache_clear()
    _load_fashion_mnist.cache_clear()

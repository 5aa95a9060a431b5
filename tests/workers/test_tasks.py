"""Built-in tasks load offline with the right shapes, kinds and splits, deterministically across processes."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from supernas.errors import InvalidInputError
from workers import tasks
from workers.tasks import (
    FASHION_MNIST_ENV,
    TASK_INFO,
    TASK_KINDS,
    TASKS,
    TaskData,
    TaskUnavailableError,
    clear_task_cache,
    data_fingerprint,
    load_task,
    read_idx_gz,
    split_off_validation,
    split_sizes,
    split_train_val_test,
    standardize,
    task_available,
    task_catalog,
    task_names,
)

REPO = Path(__file__).resolve().parents[2]
SIZES = {
    "digits": (1078, 359, 360),
    "wine": (106, 36, 36),
    "breast_cancer": (341, 114, 114),
    "fashion_mnist": (50_000, 10_000, 10_000),
    "mnist1d": (3000, 1000, 1000),
}
# sha256 of the digits split as it was first published; searches already stored depend on it.
DIGITS_FINGERPRINT = "01765d57821b9d2fd54dfea4abc9dd787fd9134926f5f9340a5d28e2d29e4b46"
SPLITS = (("x_train", "y_train"), ("x_val", "y_val"), ("x_test", "y_test"))


def test_registry_lists_every_task_with_metadata() -> None:
    assert task_names() == sorted(SIZES)
    assert set(TASKS) == set(TASK_INFO) == set(TASK_KINDS) == set(SIZES)
    assert TASK_KINDS == {
        "digits": "image",
        "wine": "tabular",
        "breast_cancer": "tabular",
        "fashion_mnist": "image",
        "mnist1d": "sequence",
    }
    catalog = {entry["name"]: entry for entry in task_catalog()}
    assert all(entry["available"] and entry["unavailable_reason"] is None for entry in catalog.values())
    json.dumps(catalog)  # JSON-ready


@pytest.mark.parametrize("name", sorted(SIZES))
def test_task_has_right_shapes_dtypes_kind_and_classes(name: str) -> None:
    task = load_task(name)
    info = TASK_INFO[name]
    assert task.name == name and task.kind == info.kind and task.input_shape == info.input_shape
    assert task.num_classes == info.num_classes and task.preprocessing
    assert tuple(len(getattr(task, y)) for _, y in SPLITS) == SIZES[name]
    assert (info.train_examples, info.validation_examples) == SIZES[name][:2]  # known without loading
    for x_name, y_name in SPLITS:
        x, y = getattr(task, x_name), getattr(task, y_name)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), *info.input_shape)
        assert np.isfinite(x).all()
        assert set(np.unique(y).tolist()) == set(range(task.num_classes))  # every class in every split


@pytest.mark.parametrize("num_examples", [10, 23, 40, 41, 57, 178, 569, 1797, 4001])
def test_split_sizes_are_those_of_the_split(num_examples: int) -> None:
    x, y = np.zeros((num_examples, 1)), np.arange(num_examples) % 2
    x_train, _, x_val, _, _, _ = split_train_val_test(x, y)
    assert split_sizes(num_examples) == (len(x_train), len(x_val))


def test_load_task_is_cached() -> None:
    assert load_task("wine") is load_task("wine")


def test_digits_split_and_preprocessing_are_unchanged() -> None:
    task = load_task("digits")
    assert data_fingerprint(task) == DIGITS_FINGERPRINT == task.fingerprint
    assert float(task.x_train.min()) >= 0.0 and float(task.x_train.max()) <= 1.0


@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_tabular_features_are_standardized_on_train_only(name: str) -> None:
    task = load_task(name)
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(task.x_train.std(axis=0), 1.0, atol=1e-4)
    assert not np.allclose(task.x_val.mean(axis=0), 0.0, atol=1e-5)  # val statistics were not used


def test_fashion_mnist_pixels_in_unit_range_and_test_is_the_official_test_set() -> None:
    task = load_task("fashion_mnist")
    assert float(task.x_train.min()) == 0.0 and float(task.x_train.max()) == 1.0
    official = read_idx_gz(
        tasks.FASHION_MNIST_DEFAULT_DIR / "t10k-labels-idx1-ubyte.gz", tasks._IDX_LABELS_MAGIC
    )
    np.testing.assert_array_equal(task.y_test, official)
    assert np.bincount(task.y_val).tolist() == [1000] * 10  # stratified


def test_split_helpers_are_stratified_disjoint_and_cover_everything() -> None:
    y = np.repeat(np.arange(4), [5, 9, 20, 50])
    index = np.arange(len(y))
    i_train, y_train, i_val, y_val, i_test, y_test = split_train_val_test(index, y)
    parts = [i_train, i_val, i_test]
    assert sorted(np.concatenate(parts).tolist()) == index.tolist()
    for part, labels in zip(parts, (y_train, y_val, y_test), strict=True):
        np.testing.assert_array_equal(y[part], labels)
        assert set(labels.tolist()) == {0, 1, 2, 3}
    again = split_train_val_test(index, y)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(again, (i_train, y_train, i_val, y_val, i_test, y_test), strict=True)
    )
    j_train, _, j_val, _ = split_off_validation(index, y, val_size=20)
    assert len(j_val) == 20 and not set(j_train.tolist()) & set(j_val.tolist())
    assert len(j_train) + len(j_val) == len(y)


def test_standardize_uses_train_statistics_and_keeps_constant_features() -> None:
    train = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    val = np.array([[5.0, 6.0]], dtype=np.float32)
    s_train, s_val = standardize(train, val)
    np.testing.assert_allclose(s_train, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(s_val, [[3.0, 1.0]])
    assert s_train.dtype == s_val.dtype == np.float32


def test_unknown_task_raises_key_error_listing_tasks() -> None:
    with pytest.raises(KeyError, match=r"built-in tasks: .*digits.*mnist1d"):
        load_task("imagenet")
    reason = task_available("imagenet")
    assert reason is not None and "unknown task 'imagenet'" in reason
    assert task_available("digits") is None


def test_fashion_mnist_missing_directory_is_unavailable_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    reason = task_available("fashion_mnist")
    assert reason is not None and "apt-get install dataset-fashion-mnist" in reason
    assert FASHION_MNIST_ENV in reason and str(tmp_path) in reason
    with pytest.raises(TaskUnavailableError, match="apt-get install dataset-fashion-mnist") as info:
        load_task("fashion_mnist")
    assert isinstance(info.value, InvalidInputError) and info.value.status_code == 422
    entry = next(e for e in task_catalog() if e["name"] == "fashion_mnist")
    assert entry["available"] is False and entry["unavailable_reason"] == reason


def test_fashion_mnist_directory_comes_from_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in tasks._FASHION_FILES.values():
        (tmp_path / name).symlink_to(tasks.FASHION_MNIST_DEFAULT_DIR / name)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    assert task_available("fashion_mnist") is None
    assert (
        load_task("fashion_mnist").fingerprint
        == tasks._load_fashion_mnist(tasks.FASHION_MNIST_DEFAULT_DIR).fingerprint
    )


def _write_idx(path: Path, magic: int, array: np.ndarray, cut: int = 0) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data[: len(data) - cut]))


def test_idx_reader_checks_magic_number_and_length(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    good = tmp_path / "good.gz"
    _write_idx(good, 0x803, images)
    np.testing.assert_array_equal(read_idx_gz(good, 0x803), images)
    with pytest.raises(TaskUnavailableError, match="magic number 0x00000801"):
        read_idx_gz(good, 0x801)
    short = tmp_path / "short.gz"
    _write_idx(short, 0x803, images, cut=5)
    with pytest.raises(TaskUnavailableError, match="truncated"):
        read_idx_gz(short, 0x803)


def test_corrupt_fashion_mnist_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tasks._FASHION_FILES.values():
        _write_idx(tmp_path / name, 0x801, np.zeros(3, dtype=np.uint8))  # labels where images are expected
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path))
    with pytest.raises(TaskUnavailableError, match="not an IDX file of the expected kind"):
        load_task("fashion_mnist")


def test_mnist1d_is_deterministic_and_leaves_global_random_state_alone() -> None:
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    first = tasks._mnist1d()
    after_np, after_py = np.random.get_state(), random.getstate()
    assert after_py == py_state
    assert all(
        np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
        for a, b in zip(np_state, after_np, strict=True)
    )
    assert data_fingerprint(first) == data_fingerprint(tasks._mnist1d())
    assert np.abs(first.x_train).max() < 20  # centred, unit std, as generated


def test_clear_task_cache_reloads_the_same_data() -> None:
    before = {name: load_task(name).fingerprint for name in ("digits", "wine")}
    clear_task_cache()
    assert {name: data_fingerprint(load_task(name)) for name in before} == before


def test_fingerprints_are_identical_in_a_fresh_process() -> None:
    code = (
        "import json; from workers.tasks import load_task, task_names;"
        "print(json.dumps({n: load_task(n).fingerprint for n in task_names()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other == {name: data_fingerprint(load_task(name)) for name in task_names()}
    assert len(set(other.values())) == len(other)


def test_fingerprint_changes_with_any_array() -> None:
    task = load_task("wine")
    y_test = task.y_test.copy()
    y_test[0] = (y_test[0] + 1) % task.num_classes
    changed = TaskData(
        task.name,
        task.x_train,
        task.y_train,
        task.x_val,
        task.y_val,
        task.x_test,
        y_test,
        task.num_classes,
        task.preprocessing,
        task.kind,
    )
    assert data_fingerprint(changed) != task.fingerprint

"""Uploaded data sets: good .npz and .csv files parse, bad ones are refused clearly, nothing is unpickled."""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from supernas.errors import InvalidInputError
from workers.datasets import (
    DATA_FILE,
    ParsedDataset,
    dataset_fingerprint,
    load_dataset_task,
    load_stored_dataset,
    parse_dataset,
    save_dataset,
)

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _no_unpickling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any unpickling during these tests fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("something was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    yield


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def tabular(n_per_class: int = 10) -> tuple[np.ndarray, np.ndarray]:
    x = RNG.normal(size=(2 * n_per_class, 3))  # (N, 3) float64
    y = np.repeat([3, 7], n_per_class)  # (N,)
    return x, y


def refused(content: bytes, filename: str = "data.npz", **limits: int) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        parse_dataset(content, filename, **limits)
    assert info.value.loc[0] == "file"
    return info.value


# --------------------------------------------------------------------------------------------- good files


def test_tabular_npz_maps_integer_labels_to_class_indices() -> None:
    x, y = tabular()
    parsed = parse_dataset(npz(x=x, y=y), "mine.NPZ")
    assert (parsed.kind, parsed.input_shape, parsed.format) == ("tabular", (3,), "npz")
    assert parsed.num_classes == 2 and parsed.label_names == ("3", "7") and parsed.num_examples == 20
    assert parsed.x.dtype == np.float32 and parsed.y.dtype == np.int64
    np.testing.assert_array_equal(parsed.y, (y == 7).astype(np.int64))
    np.testing.assert_allclose(parsed.x, x.astype(np.float32))


def test_image_npz_with_capital_x_and_compression() -> None:
    x = RNG.integers(0, 256, size=(30, 1, 6, 5), dtype=np.uint8)
    y = np.arange(30) % 3
    parsed = parse_dataset(npz(compressed=True, X=x, y=y, extra=np.zeros(2)), "images.npz")
    assert (parsed.kind, parsed.input_shape, parsed.num_classes) == ("image", (1, 6, 5), 3)
    np.testing.assert_array_equal(parsed.x, x.astype(np.float32))


def test_sequence_npz() -> None:
    parsed = parse_dataset(npz(x=RNG.normal(size=(20, 7, 2)), y=np.arange(20) % 2), "seq.npz")
    assert (parsed.kind, parsed.input_shape) == ("sequence", (7, 2))


def test_string_labels_are_sorted_and_named() -> None:
    x, _ = tabular()
    y = np.array(["dog", "cat"] * 10)
    parsed = parse_dataset(npz(x=x, y=y), "pets.npz")
    assert parsed.label_names == ("cat", "dog")
    np.testing.assert_array_equal(parsed.y, np.tile([1, 0], 10))


def test_numeric_string_labels_sort_by_number() -> None:
    x, _ = tabular()
    parsed = parse_dataset(npz(x=x, y=np.array(["10", "2"] * 10)), "d.npz")
    assert parsed.label_names == ("2", "10")
    np.testing.assert_array_equal(parsed.y, np.tile([1, 0], 10))


def test_label_names_array_names_class_indices() -> None:
    x, _ = tabular()
    y = np.arange(20) % 2
    parsed = parse_dataset(npz(x=x, y=y, label_names=np.array(["no", "yes"])), "d.npz")
    assert parsed.label_names == ("no", "yes")
    np.testing.assert_array_equal(parsed.y, y)


def test_whole_number_float_labels_are_accepted() -> None:
    x, y = tabular()
    assert parse_dataset(npz(x=x, y=y.astype(np.float64)), "d.npz").label_names == ("3", "7")


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_good_csv_with_label_column_anywhere() -> None:
    rows = [f"{i},{'ab'[i % 2]},{i * 0.5}" for i in range(12)]
    content = b"\xef\xbb\xbf" + csv_bytes("width,Label,height", rows) + b"\n\n"  # BOM, blank lines
    parsed = parse_dataset(content, "table.csv")
    assert (parsed.kind, parsed.input_shape, parsed.format) == ("tabular", (2,), "csv")
    assert parsed.label_names == ("a", "b")
    np.testing.assert_allclose(parsed.x[:, 0], np.arange(12))
    np.testing.assert_allclose(parsed.x[:, 1], np.arange(12) * 0.5)
    np.testing.assert_array_equal(parsed.y, np.arange(12) % 2)


@pytest.mark.parametrize("label", ["target", "y", "TARGET"])
def test_csv_label_column_may_be_called_target_or_y(label: str) -> None:
    rows = [f"{i},{i % 2}" for i in range(10)]
    assert parse_dataset(csv_bytes(f"f,{label}", rows), "t.csv").label_names == ("0", "1")


# --------------------------------------------------------------------------------------------- bad files


def test_pickled_object_arrays_are_refused_without_unpickling() -> None:
    x, y = tabular()
    error = refused(npz(x=np.array([object()] * 20, dtype=object), y=y))
    assert "dtype object" in error.message and "never loaded" in error.message and error.loc == ("file", "x")
    error = refused(npz(x=x, y=np.array(["a", "b"] * 10, dtype=object)))
    assert "'y'" in error.message and "y.astype(str)" in error.message


def test_missing_arrays_are_named() -> None:
    x, y = tabular()
    assert refused(npz(x=x)).message == "the .npz lacks array y; found ['x']"
    assert "x (or X)" in refused(npz(y=y)).message


def test_length_mismatch() -> None:
    x = RNG.normal(size=(100, 2))
    y = np.arange(99) % 2
    assert refused(npz(x=x, y=y)).message == "x has 100 rows but y has 99"


def test_nan_and_inf_are_refused_with_their_position() -> None:
    x, y = tabular()
    x[4, 2] = np.nan
    assert "non-finite value (nan) at index (4, 2)" in refused(npz(x=x, y=y)).message
    x[4, 2] = 1e300  # finite in float64, infinite in float32
    assert "too large for float32 at index (4, 2)" in refused(npz(x=x, y=y)).message


def test_one_class_and_too_small_classes_and_too_few_examples() -> None:
    x, _ = tabular()
    assert "at least 2 are needed" in refused(npz(x=x, y=np.zeros(20, dtype=np.int64))).message
    y = np.r_[np.zeros(16, dtype=np.int64), np.ones(4, dtype=np.int64)]
    error = refused(npz(x=x, y=y))
    assert "at least 5 examples" in error.message and "'1': 4" in error.message
    assert "at least 10 are needed" in refused(npz(x=x[:8], y=np.arange(8) % 2)).message


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (np.arange(20.0), np.arange(20) % 2, "got 1 dimension(s) (20,)"),
        (np.zeros((20, 1, 1, 1, 1)), np.arange(20) % 2, "got 5 dimension(s)"),
        (np.zeros((20, 2), dtype=complex), np.arange(20) % 2, "x must be numeric"),
        (np.zeros((20, 0)), np.arange(20) % 2, "empty dimension"),
        (np.zeros((20, 2)), np.zeros((20, 2)), "y must be 1-D"),
        (np.zeros((20, 2)), np.linspace(0, 1, 20), "non-integer floats"),
        (np.zeros((20, 2)), np.array([b"a", b""] * 10), "empty label at index 1"),
    ],
)
def test_bad_shapes_and_dtypes(x: np.ndarray, y: np.ndarray, expected: str) -> None:
    assert expected in refused(npz(x=x, y=y)).message


def test_bad_label_names() -> None:
    x, _ = tabular()
    y = np.arange(20) % 3
    assert "not a class index in 0..1" in refused(npz(x=x, y=y, label_names=np.array(["a", "b"]))).message
    message = refused(npz(x=x, y=np.arange(20) % 2, label_names=np.array(["a", "a"]))).message
    assert "duplicates" in message


def test_limits_on_features_examples_classes_and_bytes() -> None:
    x, y = tabular()
    assert "at most 2 allowed" in refused(npz(x=x, y=y), max_features=2).message
    assert "at most 15 allowed" in refused(npz(x=x, y=y), max_examples=15).message
    assert "at most 1 allowed" in refused(npz(x=x, y=y), max_classes=1).message
    assert "at most 100 allowed" in refused(npz(x=x, y=y), max_bytes=100).message  # zip bomb guard


def test_unknown_extension_names_accepted_formats() -> None:
    error = refused(b"x,y\n", "data.xlsx")
    assert ".npz" in error.message and ".csv" in error.message and error.loc == ("file", "filename")


@pytest.mark.parametrize("filename", ["data.npz", "data.csv"])
def test_empty_file(filename: str) -> None:
    assert refused(b"", filename).message == f"{filename!r} is empty"


def test_truncated_and_damaged_archives() -> None:
    x, y = tabular()
    content = npz(x=x, y=y)
    for cut in (len(content) // 2, len(content) - 10):
        assert "damaged or truncated" in refused(content[:cut]).message
    damaged = bytearray(npz(compressed=True, x=x, y=y))
    start = damaged.index(b"x.npy") + 40  # inside the compressed data of x
    damaged[start : start + 20] = bytes(20)
    assert (
        "damaged or truncated" in refused(bytes(damaged)).message
        or "could not be read" in refused(bytes(damaged)).message
    )


def test_not_an_archive() -> None:
    assert "not an .npz archive" in refused(b"hello").message
    single = io.BytesIO()
    np.save(single, np.zeros(3))
    assert "single .npy array" in refused(single.getvalue()).message
    assert "lacks array x (or X) and y" in refused(_empty_zip()).message


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def test_non_numeric_csv_cell_reports_line_and_column() -> None:
    rows = [f"{i},{i},{i % 2}" for i in range(12)]
    rows[3] = "3,abc,1"
    error = refused(csv_bytes("a,b,label", rows), "t.csv")
    assert error.message == "line 5, column 2 ('b'): 'abc' is not a number" and error.loc == ("file", "x")
    rows[3] = "3,,1"
    assert "line 5, column 2 ('b'): an empty cell" in refused(csv_bytes("a,b,label", rows), "t.csv").message
    rows[3] = "3,inf,1"
    assert (
        "line 5, column 2 ('b'): 'inf' is not finite"
        in refused(csv_bytes("a,b,label", rows), "t.csv").message
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (csv_bytes("a,b,c", ["1,2,3"] * 10), "needs a label column named one of ['label', 'target', 'y']"),
        (csv_bytes("1,2,3", ["1,2,3"] * 10), "must be a header"),
        (csv_bytes("a,a,label", ["1,2,0"] * 10), "repeats column names ['a']"),
        (csv_bytes("a,b,label", ["1,2,0", "1,2"]), "line 3 has 2 cells but the header has 3 columns"),
        (csv_bytes("a,label", ["1,0", "2, "]), "line 3: the label column 'label' is empty"),
        (csv_bytes("label", ["0"] * 10), "no feature columns"),
        (b"\n\n", "no rows"),
        (b"a,label\n\xff\xfe,1\n", "not UTF-8"),
        (csv_bytes("a,label", ["1,0"] * 6 + ["2,1"] * 4), "at least 5 examples"),
    ],
)
def test_bad_csv(content: bytes, expected: str) -> None:
    assert expected in refused(content, "t.csv").message


# --------------------------------------------------------------------------------------------- storage


def test_save_and_reload_round_trip(tmp_path: Path) -> None:
    x, _ = tabular()
    parsed = parse_dataset(npz(x=x, y=np.array(["no", "yes"] * 10)), "d.npz")
    path = save_dataset(parsed, tmp_path / "ds")
    assert path == tmp_path / "ds" / DATA_FILE and sorted(p.name for p in path.parent.iterdir()) == [
        DATA_FILE
    ]
    with np.load(path, allow_pickle=False) as stored:
        assert stored["label_names"].dtype.kind == "U"
        np.testing.assert_array_equal(stored["x"], parsed.x)
        np.testing.assert_array_equal(stored["y"], parsed.y)
    again = load_stored_dataset(path.parent)
    assert again.label_names == parsed.label_names and again.kind == parsed.kind
    assert dataset_fingerprint(again) == dataset_fingerprint(parsed)
    reparsed = parse_dataset(path.read_bytes(), "data.npz")  # the stored file is itself a valid upload
    assert reparsed.label_names == ("no", "yes") and dataset_fingerprint(reparsed) == dataset_fingerprint(
        parsed
    )


def test_fingerprint_follows_data() -> None:
    x, y = tabular()
    first = parse_dataset(npz(x=x, y=y), "d.npz")
    assert dataset_fingerprint(first) == dataset_fingerprint(parse_dataset(npz(x=x, y=y), "e.npz"))
    x[0, 0] += 1
    assert dataset_fingerprint(first) != dataset_fingerprint(parse_dataset(npz(x=x, y=y), "d.npz"))


def test_missing_stored_dataset(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no stored data set"):
        load_stored_dataset(tmp_path)


def test_tabular_task_is_split_and_standardized_on_train(tmp_path: Path) -> None:
    x = RNG.normal(loc=5.0, scale=3.0, size=(100, 4))
    y = np.repeat(["a", "b", "c", "d"], [10, 20, 30, 40])
    save_dataset(parse_dataset(npz(x=x, y=y), "d.npz"), tmp_path)
    task = load_dataset_task(tmp_path, "upload-1")
    assert (task.name, task.kind, task.input_shape, task.num_classes) == ("upload-1", "tabular", (4,), 4)
    assert (len(task.y_train), len(task.y_val), len(task.y_test)) == (60, 20, 20)
    for labels in (task.y_train, task.y_val, task.y_test):
        assert labels.dtype == np.int64 and set(labels.tolist()) == {0, 1, 2, 3}
    assert task.x_train.dtype == np.float32
    np.testing.assert_allclose(task.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(task.x_train.std(axis=0), 1.0, atol=1e-4)
    assert load_dataset_task(tmp_path, "upload-1").fingerprint == task.fingerprint  # deterministic


def test_image_task_keeps_uploaded_values_and_splits_disjointly(tmp_path: Path) -> None:
    n = 50
    x = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 3, 3), dtype=np.float32)
    save_dataset(parse_dataset(npz(x=x, y=np.arange(n) % 5), "img.npz"), tmp_path)
    task = load_dataset_task(tmp_path, "imgs")
    assert task.kind == "image" and task.input_shape == (1, 3, 3)
    ids = [part[:, 0, 0, 0].astype(int).tolist() for part in (task.x_train, task.x_val, task.x_test)]
    assert sorted(i for part in ids for i in part) == list(
        range(n)
    )  # values untouched, splits disjoint and complete
    for part_ids, labels in zip(ids, (task.y_train, task.y_val, task.y_test), strict=True):
        np.testing.assert_array_equal(np.array(part_ids) % 5, labels)


@pytest.mark.parametrize("counts", [[5, 5], [5, 200], [5] * 12 + [40], [7, 5, 6, 9]])
def test_smallest_allowed_classes_reach_every_split(tmp_path: Path, counts: list[int]) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    x = RNG.normal(size=(len(y), 2))
    save_dataset(parse_dataset(npz(x=x, y=y), "d.npz"), tmp_path)
    task = load_dataset_task(tmp_path, "small")
    for labels in (task.y_train, task.y_val, task.y_test):
        assert set(labels.tolist()) == set(range(len(counts)))


def test_parsed_dataset_is_frozen() -> None:
    x, y = tabular()
    parsed = parse_dataset(npz(x=x, y=y), "d.npz")
    assert isinstance(parsed, ParsedDataset)
    with pytest.raises(AttributeError):
        parsed.kind = "image"  # type: ignore[misc]

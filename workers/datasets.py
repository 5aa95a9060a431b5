"""User-uploaded data sets: parse and validate an upload, store it canonically, turn it into a task.

Two upload formats are accepted, and neither is ever unpickled:

- ``.npz`` (``np.savez``): arrays ``x`` (or ``X``), numeric, of shape (N, F) tabular, (N, L, F) sequence
  or (N, C, H, W) image, and ``y`` (N,) of integer or string labels; optionally ``label_names``, a 1-D
  string array naming the classes when ``y`` holds class indices 0..K-1. Other arrays are ignored.
- ``.csv``: a header row, one label column named ``label``, ``target`` or ``y`` (case-insensitive), every
  other column a numeric feature; the data set is tabular.

Labels are mapped to class indices 0..K-1 in sorted order (numeric order when every label is a number);
``label_names`` keeps the original labels as strings in class-index order. Each class needs at least
``MIN_EXAMPLES_PER_CLASS`` examples, which is what the stratified 60/20/20 split needs to put every class in
train, val and test.

A parsed data set is stored as ``data.npz`` (x float32, y int64, label_names unicode) and loaded back as a
:class:`workers.tasks.TaskData` with the same split as the built-in tasks (stratified, seed 0).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from supernas.errors import InvalidInputError
from workers.tasks import TaskData, hash_arrays, split_train_val_test, standardize

FORMATS = ("npz", "csv")
LABEL_COLUMNS = ("label", "target", "y")
DATA_FILE = "data.npz"
MIN_EXAMPLES = 10
MIN_EXAMPLES_PER_CLASS = 5
_KIND_BY_NDIM = {2: "tabular", 3: "sequence", 4: "image"}
_LOC = ("file",)


@dataclass(frozen=True)
class ParsedDataset:
    """A validated data set: x float32 (N, *input_shape), y int64 class indices (N,)."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    kind: str
    label_names: tuple[str, ...]
    format: str

    @property
    def num_examples(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Limits:
    """Upper bounds on an upload, checked before the arrays are built where possible."""

    max_features: int = 100_000
    max_examples: int = 1_000_000
    max_classes: int = 1_000
    max_bytes: int = 2 << 30  # uncompressed size of the arrays of an .npz


_NO_LIMITS = Limits(max_features=2**62, max_examples=2**62, max_classes=2**62, max_bytes=2**62)


def _fail(message: str, *loc: str | int) -> InvalidInputError:
    return InvalidInputError(message, (*_LOC, *loc))


# --------------------------------------------------------------------------------------------- public API


def parse_dataset(
    content: bytes,
    filename: str,
    max_features: int = Limits.max_features,
    max_examples: int = Limits.max_examples,
    max_classes: int = Limits.max_classes,
    max_bytes: int = Limits.max_bytes,
) -> ParsedDataset:
    """Parse and validate an uploaded ``.npz`` or ``.csv`` file; raise InvalidInputError on any problem.

    ``max_features`` bounds the size of one example (product of its dimensions), ``max_bytes`` the
    uncompressed size of an .npz's arrays (a guard against zip bombs).
    """
    limits = Limits(max_features, max_examples, max_classes, max_bytes)
    fmt = _format_of(filename)
    if not content:
        raise _fail(f"{filename!r} is empty")
    if fmt == "npz":
        x, y, names = _read_npz(io.BytesIO(content), limits)
    else:
        x, y, names = _read_csv(content, limits)
    return build_dataset(x, y, names, fmt, limits)


def dataset_fingerprint(parsed: ParsedDataset) -> str:
    """sha256 hex over dtype, shape and bytes of x and y (label names do not change it)."""
    return hash_arrays([("x", parsed.x), ("y", parsed.y)])


def save_dataset(parsed: ParsedDataset, directory: str | Path) -> Path:
    """Write ``directory/data.npz`` (x, y, label_names; no object arrays) atomically; return its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / DATA_FILE
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".data-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                x=parsed.x,
                y=parsed.y,
                label_names=np.array(parsed.label_names, dtype=np.str_),
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_stored_dataset(directory: str | Path) -> ParsedDataset:
    """Read and re-validate ``directory/data.npz`` written by :func:`save_dataset`."""
    path = Path(directory) / DATA_FILE
    try:
        with path.open("rb") as handle:
            x, y, names = _read_npz(handle, _NO_LIMITS)
    except FileNotFoundError:
        raise InvalidInputError(f"no stored data set at {path}") from None
    return build_dataset(x, y, names, "npz", _NO_LIMITS)


def load_dataset_task(directory: str | Path, name: str) -> TaskData:
    """The stored data set as a task: stratified 60/20/20 split with seed 0, like the built-in tasks.

    Tabular features are standardized with the mean and std of the train split; images and sequences
    are left as uploaded.
    """
    parsed = load_stored_dataset(directory)
    x_train, y_train, x_val, y_val, x_test, y_test = split_train_val_test(parsed.x, parsed.y)
    if parsed.kind == "tabular":
        x_train, x_val, x_test = standardize(x_train, x_val, x_test)
        preprocessing = "uploaded data set; features standardized with the mean and std of the train split"
    else:
        preprocessing = "uploaded data set; values as uploaded"
    return TaskData(
        name, x_train, y_train, x_val, y_val, x_test, y_test, parsed.num_classes, preprocessing, parsed.kind
    )


# --------------------------------------------------------------------------------------------- validation


def build_dataset(
    x: np.ndarray, y: np.ndarray, label_names: np.ndarray | None, fmt: str, limits: Limits
) -> ParsedDataset:
    """Validate raw arrays (any numeric x, integer/string y) and encode them into a ParsedDataset."""
    kind = _check_x(x, limits)
    _check_lengths(x, y, limits)
    y_idx, names = _encode_labels(y, label_names, limits)
    x32 = _to_float32(x)
    shape = tuple(int(d) for d in x32.shape[1:])
    return ParsedDataset(x32, y_idx, len(names), shape, kind, names, fmt)


def _format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        accepted = ", ".join(f".{f}" for f in FORMATS)
        raise _fail(f"unsupported file {filename!r}: accepted formats are {accepted}", "filename")
    return suffix


def _check_x(x: np.ndarray, limits: Limits) -> str:
    if x.dtype.kind not in "biuf":
        raise _fail(f"x must be numeric (integer or float); got dtype {x.dtype}", "x")
    if x.ndim not in _KIND_BY_NDIM:
        raise _fail(
            f"x must have shape (N, F) tabular, (N, L, F) sequence or (N, C, H, W) image; "
            f"got {x.ndim} dimension(s) {x.shape}",
            "x",
        )
    if 0 in x.shape[1:]:
        raise _fail(f"x has an empty dimension: shape {x.shape}", "x")
    features = int(np.prod(x.shape[1:]))
    if features > limits.max_features:
        raise _fail(f"one example of x has {features} values; at most {limits.max_features} allowed", "x")
    return _KIND_BY_NDIM[x.ndim]


def _check_lengths(x: np.ndarray, y: np.ndarray, limits: Limits) -> None:
    if y.ndim != 1:
        raise _fail(f"y must be 1-D (one label per example); got shape {y.shape}", "y")
    if len(x) != len(y):
        raise _fail(f"x has {len(x)} rows but y has {len(y)}", "y")
    if len(y) < MIN_EXAMPLES:
        raise _fail(f"the data set has {len(y)} examples; at least {MIN_EXAMPLES} are needed")
    if len(y) > limits.max_examples:
        raise _fail(f"the data set has {len(y)} examples; at most {limits.max_examples} allowed")


def _to_float32(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            raise _fail(
                f"x holds a non-finite value ({x[tuple(bad[0])]}) at index {tuple(bad[0].tolist())}", "x"
            )
    with np.errstate(over="ignore"):
        x32 = np.ascontiguousarray(x, dtype=np.float32)
    bad = np.argwhere(~np.isfinite(x32))
    if len(bad):
        raise _fail(f"x holds a value too large for float32 at index {tuple(bad[0].tolist())}", "x")
    return x32


def _label_values(y: np.ndarray) -> np.ndarray:
    """y as integers or as stripped strings; whole-number floats count as integers."""
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise _fail(f"y must hold integer or string labels; got non-integer floats ({y.dtype})", "y")
        return y.astype(np.int64)
    if y.dtype.kind in "SU":
        text = np.char.decode(y, "utf-8", errors="replace") if y.dtype.kind == "S" else y
        labels = np.char.strip(text)
        empty = np.flatnonzero(labels == "")
        if len(empty):
            raise _fail(f"y has an empty label at index {int(empty[0])}", "y")
        return labels
    raise _fail(f"y must hold integer or string labels; got dtype {y.dtype}", "y")


def _encode_labels(
    y: np.ndarray, label_names: np.ndarray | None, limits: Limits
) -> tuple[np.ndarray, tuple[str, ...]]:
    values = _label_values(y)
    if label_names is not None:
        return _encode_with_names(values, label_names, limits)
    classes, y_idx, counts = np.unique(values, return_inverse=True, return_counts=True)
    if values.dtype.kind == "U":
        classes, y_idx, counts = _numeric_order(classes, y_idx, counts)
    _check_classes([str(c) for c in classes], counts, limits)
    return y_idx.astype(np.int64), tuple(str(c) for c in classes)


def _numeric_order(
    classes: np.ndarray, y_idx: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorder string classes by number when every one parses as a number ("2" before "10")."""
    try:
        numbers = np.array([float(c) for c in classes])
    except ValueError:
        return classes, y_idx, counts
    order = np.argsort(numbers, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return classes[order], rank[y_idx], counts[order]


def _encode_with_names(
    values: np.ndarray, label_names: np.ndarray, limits: Limits
) -> tuple[np.ndarray, tuple[str, ...]]:
    if label_names.ndim != 1 or label_names.dtype.kind not in "SU":
        raise _fail("label_names must be a 1-D array of strings", "label_names")
    names = tuple(str(n) for n in label_names.astype(np.str_))
    if len(set(names)) != len(names):
        raise _fail("label_names has duplicates", "label_names")
    if values.dtype.kind != "i":
        raise _fail("with label_names, y must hold class indices 0..K-1", "y")
    outside = np.flatnonzero((values < 0) | (values >= len(names)))
    if len(outside):
        i = int(outside[0])
        raise _fail(f"y[{i}] = {values[i]} is not a class index in 0..{len(names) - 1}", "y")
    _check_classes(list(names), np.bincount(values, minlength=len(names)), limits)
    return values, names


def _check_classes(names: list[str], counts: np.ndarray, limits: Limits) -> None:
    if len(names) < 2:
        raise _fail(f"y has {len(names)} class ({names}); at least 2 are needed", "y")
    if len(names) > limits.max_classes:
        raise _fail(f"y has {len(names)} classes; at most {limits.max_classes} allowed", "y")
    small = [(n, int(c)) for n, c in zip(names, counts, strict=True) if c < MIN_EXAMPLES_PER_CLASS]
    if small:
        shown = ", ".join(f"{n!r}: {c}" for n, c in small[:5])
        raise _fail(
            f"every class needs at least {MIN_EXAMPLES_PER_CLASS} examples for the stratified "
            f"train/val/test split; too few in {shown}" + (" ..." if len(small) > 5 else ""),
            "y",
        )


# --------------------------------------------------------------------------------------------- .npz


def _read_npz(handle: BinaryIO, limits: Limits) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    content = handle.read(6)
    handle.seek(0)
    if not content.startswith(b"PK"):
        hint = " (this looks like a single .npy array)" if content.startswith(b"\x93NUMPY") else ""
        raise _fail(f"not an .npz archive{hint}; write one with np.savez(path, x=x, y=y)")
    try:
        with np.load(handle, allow_pickle=False) as archive:
            return _arrays_of(archive, limits)
    except InvalidInputError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _fail(
                "the .npz holds an object (pickled) array, which is never loaded; store x as numbers and "
                "y as integers or fixed-width strings (e.g. y.astype(str))"
            ) from None
        raise _fail(f"the .npz could not be read: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise _fail(f"the .npz archive is damaged or truncated: {exc}") from None


def _arrays_of(
    archive: np.lib.npyio.NpzFile, limits: Limits
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    names = set(archive.files)
    x_name = next((n for n in ("x", "X") if n in names), None)
    missing = [label for label, ok in (("x (or X)", x_name), ("y", "y" in names)) if not ok]
    if missing:
        raise _fail(f"the .npz lacks array {' and '.join(missing)}; found {sorted(names) or 'no arrays'}")
    wanted = [x_name, "y"] + (["label_names"] if "label_names" in names else [])
    total = sum(_checked_nbytes(archive.zip, name) for name in wanted)
    if total > limits.max_bytes:
        raise _fail(f"the arrays of the .npz take {total} bytes; at most {limits.max_bytes} allowed")
    x, y = archive[x_name], archive["y"]
    label_names = archive["label_names"] if "label_names" in names else None
    return x, y, label_names


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _checked_nbytes(archive: zipfile.ZipFile, name: str) -> int:
    """Size announced by the .npy header of array ``name``, read before the array; object dtypes refused."""
    member = next(m for m in archive.namelist() if m in (name, f"{name}.npy"))
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        if version not in _HEADER_READERS:
            raise _fail(f"array {name!r} of the .npz uses .npy format {version}; only 1.0 and 2.0 are read")
        shape, _, dtype = _HEADER_READERS[version](handle)
    if dtype.hasobject:
        raise _fail(
            f"array {name!r} of the .npz has dtype object (pickled Python objects), which is never loaded; "
            "store x as numbers and y as integers or fixed-width strings (e.g. y.astype(str))",
            name,
        )
    return int(np.prod(shape, dtype=np.float64)) * dtype.itemsize


# --------------------------------------------------------------------------------------------- .csv


def _read_csv(content: bytes, limits: Limits) -> tuple[np.ndarray, np.ndarray, None]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(f"the CSV file is not UTF-8 text (byte {exc.start})") from None
    rows = [(line, row) for line, row in _csv_rows(text) if any(cell.strip() for cell in row)]
    if not rows:
        raise _fail("the CSV file has no rows")
    header = [cell.strip() for cell in rows[0][1]]
    label_col = _label_column(header)
    body = rows[1:]
    _check_row_widths(body, len(header))
    if len(header) - 1 > limits.max_features:
        raise _fail(f"the CSV has {len(header) - 1} feature columns; at most {limits.max_features} allowed")
    if len(body) > limits.max_examples:
        raise _fail(f"the CSV has {len(body)} rows; at most {limits.max_examples} allowed")
    feature_cols = [i for i in range(len(header)) if i != label_col]
    x = _parse_features(body, header, feature_cols)
    y = np.array([row[label_col].strip() for _, row in body], dtype=np.str_)
    empty = np.flatnonzero(y == "")
    if len(empty):
        line = body[int(empty[0])][0]
        raise _fail(f"line {line}: the label column {header[label_col]!r} is empty", "y")
    return x, y, None


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise _fail(f"line {reader.line_num}: malformed CSV: {exc}") from None


def _label_column(header: list[str]) -> int:
    lowered = [h.lower() for h in header]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise _fail(f"the CSV header repeats column names {duplicates}")
    if all(_is_number(h) for h in header):
        raise _fail("the first row of the CSV must be a header naming the columns; it holds only numbers")
    for name in LABEL_COLUMNS:
        if name in lowered:
            if len(header) < 2:
                raise _fail("the CSV has a label column but no feature columns")
            return lowered.index(name)
    raise _fail(f"the CSV needs a label column named one of {list(LABEL_COLUMNS)}; header is {header[:20]}")


def _check_row_widths(body: list[tuple[int, list[str]]], width: int) -> None:
    for line, row in body:
        if len(row) != width:
            raise _fail(f"line {line} has {len(row)} cells but the header has {width} columns")


def _parse_features(body: list[tuple[int, list[str]]], header: list[str], cols: list[int]) -> np.ndarray:
    cells = [[row[i] for i in cols] for _, row in body]
    try:
        x = np.array(cells, dtype=np.float64).reshape(len(body), len(cols))  # (N, F)
    except ValueError:
        _raise_first_non_number(body, header, cols, cells)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        r, c = (int(v) for v in bad[0])
        line, col = body[r][0], cols[c]
        raise _fail(f"line {line}, column {col + 1} ({header[col]!r}): {cells[r][c]!r} is not finite", "x")
    return x


def _raise_first_non_number(
    body: list[tuple[int, list[str]]], header: list[str], cols: list[int], cells: list[list[str]]
) -> NoReturn:
    for (line, _), values in zip(body, cells, strict=True):
        for col, cell in zip(cols, values, strict=True):
            if not _is_number(cell):
                shown = "an empty cell" if not cell.strip() else f"{cell!r} is not a number"
                raise _fail(f"line {line}, column {col + 1} ({header[col]!r}): {shown}", "x")
    raise _fail("the CSV features could not be read as numbers", "x")  # float() and numpy disagree


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True

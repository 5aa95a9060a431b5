"""The learning-curve generator's Fashion-MNIST CNNs and the committed full-scale curve sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import learning_curves, learning_curves_fashion
from workers.tasks import fashion_mnist_dir

FULL_SETS = (
    learning_curves.DATA_DIR / "lc_mnist1d_full.npz",
    learning_curves_fashion.DEFAULT_OUT,  # lc_fashion_cnn.npz
)
MAX_BYTES = 10 * 1024 * 1024  # both sets, with their JSON settings
NAMES = {"lr", "weight_decay", "width", "depth", "dropout", "batch_size"}


@pytest.mark.skipif(
    not (fashion_mnist_dir() / "train-images-idx3-ubyte.gz").is_file(), reason="Fashion-MNIST not installed"
)
def test_fashion_cnn_generates_a_tiny_set(tmp_path: Path) -> None:
    data = learning_curves_fashion.generate_fashion(
        n_configs=2, epochs=2, seeds=1, seed=0, log=False, train_size=48, val_size=24
    )
    path = learning_curves.save(data, tmp_path / "lc_fashion.npz")
    loaded = learning_curves.load(path)
    assert loaded.x.shape == (2, len(learning_curves_fashion.FASHION_SPACE))
    assert np.all((loaded.x >= 0) & (loaded.x <= 1))
    for name in learning_curves.CURVE_KEYS:
        values = getattr(loaded, name)
        assert values.shape == (2, 1, 2), name
        assert np.all(np.isfinite(values[~loaded.diverged])), name
        np.testing.assert_allclose(values, getattr(data, name), rtol=1e-6, equal_nan=True, err_msg=name)
    assert loaded.diverged.shape == (2, 1)
    assert np.all((loaded.val_accuracy >= 0) & (loaded.val_accuracy <= 1))
    assert np.all(loaded.epoch_seconds > 0)
    assert set(loaded.params) >= NAMES
    widths = loaded.params["width"]
    assert np.all((widths >= 4) & (widths <= 32)) and np.all(loaded.params["depth"] <= 3)
    settings = json.loads(path.with_suffix(".json").read_text())
    assert settings["task"] == "fashion_mnist" and settings["train_size"] == 48
    assert settings["image_size"] == 14 and loaded.settings == settings


def test_cli_picks_the_task_and_its_default_output() -> None:
    args = learning_curves.parse_args(["--task", "fashion_mnist"])
    assert args.out == learning_curves_fashion.DEFAULT_OUT
    assert learning_curves.task_of(args).space == learning_curves_fashion.FASHION_SPACE
    args = learning_curves.parse_args([])
    assert args.out == learning_curves.DEFAULT_OUT and learning_curves.task_of(args).name == "mnist1d"


def test_the_committed_full_sets_are_complete_and_small() -> None:
    assert sum(p.stat().st_size + p.with_suffix(".json").stat().st_size for p in FULL_SETS) <= MAX_BYTES
    for path, task in zip(FULL_SETS, ("mnist1d", "fashion_mnist"), strict=True):
        data = learning_curves.load(path)
        n_configs, n_seeds, n_epochs = data.val_accuracy.shape
        assert n_configs >= 500 and n_seeds >= 3 and n_epochs >= 30, path
        assert data.settings["task"] == task
        assert data.x.shape == (n_configs, 6) and set(data.params) >= NAMES
        assert data.diverged.shape == (n_configs, n_seeds)
        for name in learning_curves.CURVE_KEYS:
            values = getattr(data, name)
            assert values.shape == (n_configs, n_seeds, n_epochs), (path, name)
            assert np.all(np.isfinite(values[~data.diverged])), (path, name)
        assert np.all(data.epoch_seconds > 0)
        assert np.all((data.val_accuracy >= 0) & (data.val_accuracy <= 1))

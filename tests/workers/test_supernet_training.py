"""Sandwich-rule training learns the task, checkpoints, and is reused on resume; a trial runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search_spaces.spec import SearchSpec
from workers.supernet_training import SupernetPaths, load_supernet, subnet_accuracy, train_supernet
from workers.tasks import load_task
from workers.training import accuracy, recalibrate_batchnorm

SPEC = {
    "task": "digits",
    "space": {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "supernet": {"epochs": 3, "batch_size": 64},
    "seed": 0,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("supernet")
    return root, train_supernet(SPEC, str(root), num_threads=2)


def test_training_learns_far_above_chance_for_largest_and_smallest(trained: tuple[Path, dict]) -> None:
    _, summary = trained
    assert len(summary["history"]) == 3
    assert summary["largest_val_accuracy"] > 0.6  # chance is 0.1 on ten classes
    assert summary["smallest_val_accuracy"] > 0.4


def test_checkpoint_loads_with_weights_only_and_reproduces_the_summary(trained: tuple[Path, dict]) -> None:
    root, summary = trained
    model = load_supernet(SupernetPaths(root))
    task = load_task("digits")
    largest = SearchSpec.model_validate(SPEC).space.largest()
    assert subnet_accuracy(model, largest, task) == pytest.approx(summary["largest_val_accuracy"])
    assert accuracy(lambda x: model(x, largest), task.x_val, task.y_val) > 0.6
    assert json.loads((root / "progress.json").read_text())["epoch"] == 3


def test_a_finished_supernet_is_reused_not_retrained(trained: tuple[Path, dict]) -> None:
    root, summary = trained
    before = (root / "supernet.pt").stat().st_mtime_ns
    assert train_supernet(SPEC, str(root)) == summary
    assert (root / "supernet.pt").stat().st_mtime_ns == before


def test_batchnorm_recalibration_keeps_an_extracted_subnet_accurate(trained: tuple[Path, dict]) -> None:
    root, _ = trained
    model = load_supernet(SupernetPaths(root))
    task = load_task("digits")
    subnet = model.extract(SearchSpec.model_validate(SPEC).space.smallest())
    recalibrate_batchnorm(subnet, task.x_train)
    assert not subnet.training
    assert accuracy(subnet, task.x_val, task.y_val) > 0.4
    with torch.no_grad():
        assert all(torch.isfinite(p).all() for p in subnet.parameters())


def test_digits_split_is_fixed_and_disjoint() -> None:
    task = load_task("digits")
    assert task.input_shape == (1, 8, 8)
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == 1797
    assert float(task.x_train.max()) <= 1.0
    with pytest.raises(KeyError, match="unknown task"):
        load_task("imagenet")

"""Supernet training: learns the task with either method, checkpoints every epoch, resumes after an
interruption to the very same weights, is reused when finished, and fails fast when it collapses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search_spaces.spec import SupernetSpec
from workers.supernet_training import (
    SupernetCollapsedError,
    SupernetPaths,
    load_supernet,
    subnet_accuracy,
    train_supernet,
)
from workers.tasks import load_task
from workers.training import accuracy, recalibrate_batchnorm

SPEC = {
    "task": "digits",
    "space": {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]},
    "training": {"epochs": 5, "batch_size": 64},
    "seed": 0,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("supernet")
    return root, train_supernet(SPEC, str(root), num_threads=2)


def test_training_learns_far_above_chance_for_largest_and_smallest(trained: tuple[Path, dict]) -> None:
    _, summary = trained
    assert len(summary["history"]) == 5
    assert summary["largest_val_accuracy"] > 0.6  # chance is about 0.1 on ten classes
    assert summary["smallest_val_accuracy"] > 0.4
    assert summary["chance_accuracy"] == pytest.approx(0.1, abs=0.02)
    assert summary["family"] == "elastic_cnn" and summary["task"] == "digits"
    assert len(summary["data_fingerprint"]) == 64
    assert summary["training"]["method"] == "sandwich" and summary["training"]["distillation"] is True


def test_checkpoint_loads_with_weights_only_and_reproduces_the_summary(trained: tuple[Path, dict]) -> None:
    root, summary = trained
    model = load_supernet(SupernetPaths(root))
    task = load_task("digits")
    largest = SupernetSpec.model_validate(SPEC).space.largest()
    assert subnet_accuracy(model, largest, task) == pytest.approx(summary["largest_val_accuracy"])
    assert json.loads((root / "progress.json").read_text())["epoch"] == 5


def test_a_finished_supernet_is_reused_not_retrained(trained: tuple[Path, dict]) -> None:
    root, summary = trained
    before = (root / "supernet.pt").stat().st_mtime_ns
    assert train_supernet(SPEC, str(root)) == summary
    assert (root / "supernet.pt").stat().st_mtime_ns == before


def test_an_interrupted_training_resumes_from_its_checkpoint_to_the_same_weights(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    root, summary = trained
    epochs_seen: list[int] = []
    partial = train_supernet(
        SPEC, str(tmp_path), stop_after_epoch=1, on_epoch=lambda p: epochs_seen.append(p["epoch"])
    )
    assert partial["interrupted_at_epoch"] == 1 and not (tmp_path / "supernet.json").exists()
    resumed = train_supernet(SPEC, str(tmp_path), on_epoch=lambda p: epochs_seen.append(p["epoch"]))
    assert epochs_seen == [1, 2, 3, 4, 5]  # epoch 1 was not trained twice
    assert resumed["history"] == summary["history"]
    uninterrupted = torch.load(root / "supernet.pt", weights_only=True)["state_dict"]
    after_resume = torch.load(tmp_path / "supernet.pt", weights_only=True)["state_dict"]
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, after_resume[name]), name


def test_a_checkpoint_of_another_spec_is_not_resumed(tmp_path: Path) -> None:
    train_supernet(SPEC, str(tmp_path), stop_after_epoch=1)
    other = {**SPEC, "seed": 1, "training": {"epochs": 1, "batch_size": 64}}
    seen: list[int] = []
    train_supernet(other, str(tmp_path), on_epoch=lambda p: seen.append(p["epoch"]))
    assert seen == [1]


@pytest.mark.parametrize(
    "training", [{"method": "spos"}, {"method": "sandwich", "distillation": False}], ids=["spos", "no-kd"]
)
def test_spos_and_plain_sandwich_also_learn(training: dict, tmp_path: Path) -> None:
    spec = {**SPEC, "training": {"epochs": 5, "batch_size": 64, **training}}
    summary = train_supernet(spec, str(tmp_path))
    assert summary["training"]["method"] == training["method"]
    assert summary["largest_val_accuracy"] > 0.5


def test_a_collapsing_supernet_fails_with_the_reason_instead_of_finishing(tmp_path: Path) -> None:
    spec = {**SPEC, "training": {"epochs": 5, "batch_size": 64, "lr": 10.0, "weight_decay": 0.0}}
    with pytest.raises(SupernetCollapsedError, match=r"collapsed at epoch [12]"):
        train_supernet(spec, str(tmp_path))
    assert not (tmp_path / "supernet.json").exists()


def test_batchnorm_recalibration_keeps_an_extracted_subnet_accurate(trained: tuple[Path, dict]) -> None:
    root, _ = trained
    model = load_supernet(SupernetPaths(root))
    task = load_task("digits")
    subnet = model.extract(SupernetSpec.model_validate(SPEC).space.smallest())
    recalibrate_batchnorm(subnet, task.x_train)
    assert not subnet.training
    assert accuracy(subnet, task.x_val, task.y_val) > 0.4
    with torch.no_grad():
        assert all(torch.isfinite(p).all() for p in subnet.parameters())


def test_every_epoch_keeps_a_snapshot_that_reproduces_its_history(trained: tuple[Path, dict]) -> None:
    root, summary = trained
    paths = SupernetPaths(root)
    assert summary["snapshot_epochs"] == [1, 2, 3, 4, 5]
    task = load_task("digits")
    largest = SupernetSpec.model_validate(SPEC).space.largest()
    for point in summary["history"]:
        model = load_supernet(paths, point["epoch"])  # loads with weights_only=True
        assert subnet_accuracy(model, largest, task) == pytest.approx(point["largest_val_accuracy"])
    last = torch.load(paths.snapshot(5), weights_only=True)["state_dict"]
    trained_weights = torch.load(paths.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(tensor, trained_weights[name]) for name, tensor in last.items())

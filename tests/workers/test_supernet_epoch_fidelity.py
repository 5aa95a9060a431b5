"""The supernet-epochs fidelity: a trial's first steps inherit its sub-network from the supernet as it
was after earlier training epochs, then from the trained supernet; a step waits for its epoch; a retry
continues from its step with the same weights."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_trial_checkpoints import SPEC, _FakeTune, crash_and_retry
from test_trial_checkpoints import _run as run_trial

import workers.trial as trial_module
from search_spaces.spec import SearchSpec
from workers.supernet_training import SupernetPaths, load_supernet, train_supernet
from workers.tasks import load_task
from workers.training import accuracy, recalibrate_batchnorm

EPOCHS_SPEC = SPEC | {
    "name": "supernet-epochs",
    "supernet": {"epochs": 4, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1, "finetune_lr": 0.05, "supernet_epochs": [1, 3]},
}


def _train(root: Path, **kwargs: Any) -> dict[str, Any]:
    spec = SearchSpec.model_validate(EPOCHS_SPEC)
    return train_supernet(spec.supernet_spec().model_dump(mode="json"), str(root), num_threads=1, **kwargs)


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("supernet")
    _train(root)
    return root


def _inherited_accuracy(supernet_dir: Path, params: dict[str, Any], epoch: int | None) -> float:
    spec = SearchSpec.model_validate(EPOCHS_SPEC)
    task = load_task("digits")
    model = load_supernet(SupernetPaths(supernet_dir), epoch).extract(spec.arch_of(params))
    recalibrate_batchnorm(model, task.x_train)
    return accuracy(model, task.x_val, task.y_val)


def _run(supernet_dir: Path, root: Path, fake: _FakeTune, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return run_trial(supernet_dir, root, "sgd", fake, monkeypatch, EPOCHS_SPEC, number=1)


def test_steps_inherit_from_each_listed_epoch_then_the_trained_supernet(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SearchSpec.model_validate(EPOCHS_SPEC)
    assert spec.max_fidelity == 3  # epochs 1 and 3, the trained supernet (epoch 4), one fine-tuning epoch
    whole = _FakeTune(tmp_path / "whole")
    params = _run(supernet_dir, tmp_path / "whole", whole, monkeypatch)
    assert [r["fidelity"] for r in whole.reports] == [0, 1, 2, 3]
    assert [r["supernet_epoch"] for r in whole.reports] == [1, 3, 4, 4]
    expected = [_inherited_accuracy(supernet_dir, params, epoch) for epoch in (1, 3, None)]
    assert [r["accuracy"] for r in whole.reports[:3]] == pytest.approx(expected)
    assert len(set(expected)) > 1  # the epochs really differ
    assert whole.reports[-1]["artifact_dir"] is not None

    crashed, retried = crash_and_retry(
        lambda root, fake: _run(supernet_dir, root, fake, monkeypatch), tmp_path
    )
    assert [r["fidelity"] for r in retried.reports] == [2, 3]
    assert [r["accuracy"] for r in crashed.reports + retried.reports] == [
        r["accuracy"] for r in whole.reports
    ]


def test_a_step_waits_for_its_epoch_while_the_supernet_trains(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trial_module, "WEIGHTS_POLL_S", 0.05)
    training = tmp_path / "training"
    _train(training, stop_after_epoch=1)  # an interrupted training: only epoch 1 exists
    fake = _FakeTune(tmp_path / "trial")
    errors: list[BaseException] = []

    def trial() -> None:
        try:
            _run(training, tmp_path / "trial", fake, monkeypatch)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=trial)
    thread.start()
    thread.join(timeout=30)
    assert thread.is_alive() and [r["fidelity"] for r in fake.reports] == [0]  # waiting for epoch 3
    _train(training)  # the training resumes and finishes
    thread.join(timeout=120)
    assert not thread.is_alive() and not errors
    assert [r["supernet_epoch"] for r in fake.reports] == [1, 3, 4, 4]
    reference = _FakeTune(tmp_path / "reference")
    _run(supernet_dir, tmp_path / "reference", reference, monkeypatch)
    assert [r["accuracy"] for r in fake.reports] == [r["accuracy"] for r in reference.reports]


def test_a_supernet_without_per_epoch_weights_is_a_clear_error(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for name in ("supernet.pt", "supernet.json"):  # a supernet trained before snapshots existed
        (old / name).write_bytes((supernet_dir / name).read_bytes())
    with pytest.raises(FileNotFoundError, match="keeps no weights of epoch 1"):
        _run(old, tmp_path / "trial", _FakeTune(tmp_path / "trial"), monkeypatch)


@pytest.mark.parametrize(
    ("epochs", "message"),
    [
        ([3, 1], "strictly ascending"),
        ([2, 4], "4 is not below supernet.epochs \\(4\\)"),
        ([0], "greater than 0"),
    ],
)
def test_supernet_epochs_are_ascending_and_below_the_training(epochs: list[int], message: str) -> None:
    bad = EPOCHS_SPEC | {"fidelity": {"finetune_epochs": 1, "supernet_epochs": epochs}}
    with pytest.raises(ValidationError, match=message):
        SearchSpec.model_validate(bad)


def test_a_spec_naming_a_supernet_is_checked_against_that_supernets_training_not_the_default() -> None:
    named = {
        "task": "digits",
        "supernet_id": "sn_" + "0" * 32,
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "fidelity": {"supernet_epochs": [5, 15]},  # beyond the default 10 epochs: the service checks
    }
    assert SearchSpec.model_validate(named).fidelity.supernet_epochs == [5, 15]
    with pytest.raises(ValidationError, match=r"15 is not below supernet.epochs \(12\)"):
        SearchSpec.model_validate(named | {"supernet": {"epochs": 12}})  # as the service fills it in

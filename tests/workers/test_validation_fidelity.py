"""The validation-subset fidelity: a trial's first steps evaluate its inherited weights on growing,
fixed validation subsets, then on the whole split, then fine-tune; a retry continues from its step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from test_trial_checkpoints import SPEC, _FakeTune, crash_and_retry
from test_trial_checkpoints import _run as run_trial

import workers.trial as trial_module
from search_spaces.spec import SearchSpec
from workers.supernet_training import train_supernet
from workers.tasks import load_task
from workers.training import accuracy

SIZES = [40, 120]
VALIDATION_SPEC = SPEC | {
    "name": "validation-fidelity",
    "fidelity": {"finetune_epochs": 1, "finetune_lr": 0.05, "validation_examples": SIZES},
}


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("supernet")
    spec = SearchSpec.model_validate(VALIDATION_SPEC)
    train_supernet(spec.supernet_spec().model_dump(mode="json"), str(root), num_threads=1)
    return root


def _run(supernet_dir: Path, root: Path, fake: _FakeTune, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return run_trial(supernet_dir, root, "sgd", fake, monkeypatch, VALIDATION_SPEC, number=1)


def test_steps_are_subsets_then_the_whole_split_then_epochs(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SearchSpec.model_validate(VALIDATION_SPEC)
    assert spec.max_fidelity == 3
    whole = _FakeTune(tmp_path / "whole")
    params = _run(supernet_dir, tmp_path / "whole", whole, monkeypatch)
    assert [r["fidelity"] for r in whole.reports] == [0, 1, 2, 3]
    # the inherited weights, measured on 40 and 120 examples of one fixed shuffle, then on all of them
    task = load_task("digits")
    model = trial_module.load_supernet(trial_module.SupernetPaths(supernet_dir)).extract(spec.arch_of(params))
    trial_module.recalibrate_batchnorm(model, task.x_train)
    order = np.random.default_rng(spec.seed).permutation(len(task.x_val))
    expected = [accuracy(model, task.x_val[order[:n]], task.y_val[order[:n]]) for n in SIZES]
    expected.append(accuracy(model, task.x_val, task.y_val))
    assert [r["accuracy"] for r in whole.reports[:3]] == pytest.approx(expected)
    assert whole.reports[-1]["artifact_dir"] is not None

    crashed, retried = crash_and_retry(
        lambda root, fake: _run(supernet_dir, root, fake, monkeypatch), tmp_path
    )
    assert [r["fidelity"] for r in retried.reports] == [2, 3]
    assert [r["accuracy"] for r in crashed.reports + retried.reports] == [
        r["accuracy"] for r in whole.reports
    ]


def test_validation_sizes_must_ascend() -> None:
    bad = VALIDATION_SPEC | {"fidelity": {"finetune_epochs": 1, "validation_examples": [100, 100]}}
    with pytest.raises(ValidationError, match="strictly ascending"):
        SearchSpec.model_validate(bad)


def test_a_subset_as_large_as_the_split_is_a_clear_error(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    too_large = VALIDATION_SPEC | {"fidelity": {"finetune_epochs": 0, "validation_examples": [40, 5000]}}
    with pytest.raises(ValueError, match="5000 is not below the 359 validation examples of task 'digits'"):
        run_trial(supernet_dir, tmp_path, "sgd", _FakeTune(tmp_path), monkeypatch, too_large, number=2)

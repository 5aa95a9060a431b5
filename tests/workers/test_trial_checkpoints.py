"""The trial trainable checkpoints every report but its last, and a retry restored from a checkpoint
continues exactly as the uninterrupted trial would have (same accuracies, same final model), without
reporting earlier steps again; so does a trial set aside when its search stopped, resumed in the
search's next run from the checkpoint found in the earlier run's storage. The retry callback tells
the listener why the trial is retried.

The trainable runs in-process here with a stand-in for ``ray.tune``'s ``report``/``get_checkpoint``
(Tune's own restore is exercised end to end by tests/e2e/test_worker_kill.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import ray.cloudpickle as cloudpickle
import torch
from ray import tune
from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

import workers.trial as trial_module
from search_spaces.spec import SearchSpec
from supernas.records import TrialReport
from supernas.states import TrialState
from workers.export import MANIFEST_FILE, TORCHSCRIPT_FILE
from workers.supernet_training import train_supernet
from workers.tasks import load_task
from workers.trial import CHECKPOINT_FILE, evaluate_subnet, trial_dir
from workers.trial_checkpoints import resumable_trials, run_name, runs_root
from workers.trial_outcome import ended_by_last_report, observed_metrics
from workers.tune_callbacks import ListenerCallback

SPACE = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]}
SPEC = {
    "name": "checkpoints",
    "task": "digits",
    "space": SPACE,
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "supernet": {"epochs": 2, "batch_size": 64},
    "fidelity": {"finetune_epochs": 3, "finetune_lr": 0.05},
    "hyperparameters": {"finetune_optimizer": {"type": "categorical", "choices": ["sgd", "adam"]}},
    "seed": 3,
}


class _Crash(Exception):
    """Stands for the worker dying right after a report."""


class _FakeTune:
    """``report``/``get_checkpoint`` of a Tune session: keeps every report and a copy of its checkpoint."""

    Checkpoint = tune.Checkpoint

    def __init__(
        self, store: Path, resume_from: tune.Checkpoint | None = None, crash_after: int | None = None
    ):
        self.store, self.resume_from, self.crash_after = store, resume_from, crash_after
        self.reports: list[dict[str, Any]] = []
        self.checkpoints: list[tune.Checkpoint | None] = []

    def get_checkpoint(self) -> tune.Checkpoint | None:
        return self.resume_from

    def report(self, metrics: dict[str, Any], *, checkpoint: tune.Checkpoint | None = None) -> None:
        kept = None
        if checkpoint is not None:  # Tune copies it to storage before report returns
            target = self.store / f"checkpoint_{len(self.reports):06d}"
            shutil.copytree(checkpoint.path, target)
            kept = tune.Checkpoint.from_directory(str(target))
        self.reports.append(dict(metrics))
        self.checkpoints.append(kept)
        if self.crash_after is not None and metrics["fidelity"] == self.crash_after:
            raise _Crash


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("supernet")
    spec = SearchSpec.model_validate(SPEC)
    train_supernet(spec.supernet_spec().model_dump(mode="json"), str(root), num_threads=1)
    return root


def _run(
    supernet_dir: Path,
    root: Path,
    optimizer: str,
    fake: _FakeTune,
    monkeypatch: pytest.MonkeyPatch,
    spec_dict: dict[str, Any] = SPEC,
    number: int = 4,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the largest sub-network's trial in-process against ``fake``; returns its params."""
    spec = SearchSpec.model_validate(spec_dict)
    params = _largest(spec, optimizer)
    job = {
        "spec": spec.model_dump(mode="json"),
        "search_id": "s",
        "artifacts_root": str(root),
        "supernet_dir": str(supernet_dir),
        "supernet_id": None,
    }
    monkeypatch.setattr(trial_module, "tune", fake)
    config = {"number": number, "params": params} | ({"resume": resume} if resume else {})
    evaluate_subnet(config, job)
    return params


def _largest(spec: SearchSpec, optimizer: str) -> dict[str, Any]:
    """The params of the largest sub-network, fine-tuned with ``optimizer``."""
    return spec.arch_space.config_from_arch(spec.arch_space.largest()) | {"finetune_optimizer": optimizer}


def crash_and_retry(run: Callable[[Path, _FakeTune], object], tmp_path: Path) -> tuple[_FakeTune, _FakeTune]:
    """Run a trial under ``tmp_path / "run"`` whose worker dies right after step 1, then its retry
    from the latest checkpoint; returns both sessions."""
    crashed = _FakeTune(tmp_path / "crashed", crash_after=1)
    with pytest.raises(_Crash):
        run(tmp_path / "run", crashed)
    retried = _FakeTune(tmp_path / "retried", resume_from=crashed.checkpoints[-1])
    run(tmp_path / "run", retried)
    return crashed, retried


def _logits(root: Path) -> torch.Tensor:
    model = torch.jit.load(str(trial_dir(str(root), "s", 4) / TORCHSCRIPT_FILE)).eval()
    with torch.inference_mode():
        return model(torch.from_numpy(load_task("digits").x_val))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_retry_from_a_checkpoint_continues_exactly(
    supernet_dir: Path, tmp_path: Path, optimizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _FakeTune(tmp_path / "whole")
    _run(supernet_dir, tmp_path / "whole", optimizer, whole, monkeypatch)
    assert [r["fidelity"] for r in whole.reports] == [0, 1, 2, 3]
    # every report but the last carries a small checkpoint
    assert [c is not None for c in whole.checkpoints] == [True, True, True, False]
    sizes = [(Path(c.path) / CHECKPOINT_FILE).stat().st_size for c in whole.checkpoints if c is not None]
    assert max(sizes) < 1_000_000, sizes
    assert whole.reports[-1]["artifact_dir"] is not None

    crashed, retried = crash_and_retry(
        lambda root, fake: _run(supernet_dir, root, optimizer, fake, monkeypatch), tmp_path
    )
    assert [r["fidelity"] for r in crashed.reports] == [0, 1]
    assert [r["fidelity"] for r in retried.reports] == [2, 3]  # nothing reported twice
    costs = {k: v for k, v in crashed.reports[0].items() if k not in {"accuracy", "fidelity", "artifact_dir"}}
    for report in retried.reports:  # the costs measured before the crash, not measured again
        assert {k: report[k] for k in costs} == costs
    accuracies = [r["accuracy"] for r in crashed.reports + retried.reports]
    assert accuracies == [r["accuracy"] for r in whole.reports]
    assert torch.equal(_logits(tmp_path / "run"), _logits(tmp_path / "whole"))  # the very same weights


def _stored(reports: list[dict[str, Any]]) -> list[TrialReport]:
    """The reports as the service stores them (``ListenerCallback.on_trial_result``)."""
    now = datetime.now(UTC)
    return [TrialReport(i + 1, float(r["fidelity"]), observed_metrics(r), now) for i, r in enumerate(reports)]


def _set_aside(number: int, config: dict[str, Any], reports: list[dict[str, Any]]) -> SimpleNamespace:
    """A stored trial as the service hands it over once its search runs again (``TrialRecord``)."""
    stored = _stored(reports)
    return SimpleNamespace(
        number=number, config=config, reports=stored, fidelity=stored[-1].fidelity if stored else None
    )


def test_a_trial_set_aside_when_its_search_stopped_resumes_in_the_next_run_exactly(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "artifacts"
    whole = _FakeTune(tmp_path / "whole")
    _run(supernet_dir, tmp_path / "whole", "adam", whole, monkeypatch)
    # the first run (attempt 1) keeps its checkpoints where Tune does; the search stops after step 1
    first_run = runs_root(root) / run_name("s", 1) / "evaluate_subnet_0a1b2_00004"
    stopped = _FakeTune(first_run, crash_after=1)
    with pytest.raises(_Crash):
        _run(supernet_dir, root, "adam", stopped, monkeypatch)
    params = _largest(SearchSpec.model_validate(SPEC), "adam")

    resumed, missing = resumable_trials(
        root,
        "s",
        attempt=3,  # a run in between (attempt 2) kept nothing of it
        set_aside=[
            _set_aside(4, params, stopped.reports),
            _set_aside(6, params, [{"fidelity": 3, "accuracy": 0.5}]),  # no checkpoint of step 3
            _set_aside(7, params, []),  # never reported: it starts again from the beginning
        ],  # type: ignore[list-item]
    )
    assert missing == {6: "worker lost: no checkpoint of its fidelity step 3 was kept"}
    trial, again = resumed
    assert (again.number, again.fidelity, again.checkpoint, again.reports) == (7, None, None, [])
    assert (trial.number, trial.fidelity, trial.last_step, trial.config) == (4, 1, 2, params)
    assert Path(trial.checkpoint) == first_run / "checkpoint_000001"
    assert [f for f, _ in trial.reports] == [0.0, 1.0]

    # the next run: a new Tune trial (no Tune checkpoint of its own) under the same number
    next_run = _FakeTune(tmp_path / "next")
    _run(
        supernet_dir,
        root,
        "adam",
        next_run,
        monkeypatch,
        resume={"checkpoint": trial.checkpoint, "last_step": trial.last_step},
    )
    assert [r["fidelity"] for r in next_run.reports] == [2, 3]
    accuracies = [r["accuracy"] for r in stopped.reports + next_run.reports]
    assert accuracies == [r["accuracy"] for r in whole.reports]
    assert torch.equal(_logits(root), _logits(tmp_path / "whole"))


def test_a_trial_whose_last_report_was_stored_ends_from_it(
    supernet_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service ends such a trial from its stored reports alone, as Tune's completion would have."""
    whole = _FakeTune(tmp_path / "whole")
    _run(supernet_dir, tmp_path / "whole", "sgd", whole, monkeypatch)
    spec = SearchSpec.model_validate(SPEC)
    model_dir = trial_dir(str(tmp_path / "whole"), "s", 4)

    ended = ended_by_last_report(spec, _stored(whole.reports), model_dir, MANIFEST_FILE)
    assert ended is not None and ended.state is TrialState.SUCCEEDED
    assert ended.model_dir == Path(whole.reports[-1]["artifact_dir"]) == model_dir
    assert ended.metrics == observed_metrics(whole.reports[-1])
    assert ended_by_last_report(spec, _stored(whole.reports[:-1]), model_dir, MANIFEST_FILE) is None
    gone = ended_by_last_report(spec, _stored(whole.reports), tmp_path / "elsewhere", MANIFEST_FILE)
    assert gone is not None and gone.state is TrialState.LOST

    # a cost constraint ends the trial with its first report, infeasible, and the reason is the trainable's
    params = whole.reports[0]["params"]
    capped = SPEC | {"constraints": [{"metric": "params", "op": "<=", "value": params - 1}]}
    infeasible = _FakeTune(tmp_path / "infeasible")
    _run(supernet_dir, tmp_path / "infeasible", "sgd", infeasible, monkeypatch, spec_dict=capped)
    [report] = infeasible.reports
    capped_spec = SearchSpec.model_validate(capped)
    ended = ended_by_last_report(capped_spec, _stored([report]), tmp_path / "none", MANIFEST_FILE)
    assert ended is not None
    assert (ended.state, ended.reason, ended.model_dir) == (TrialState.INFEASIBLE, report["infeasible"], None)


def test_a_resumed_trials_reports_are_stored_after_its_earlier_steps() -> None:
    reported: list[tuple[int, int, float]] = []
    listener = SimpleNamespace(
        trial_reported=lambda n, step, fidelity, metrics: reported.append((n, step, fidelity))
    )
    callback = ListenerCallback(listener, max_fidelity=3, stop_reason=lambda: None)  # type: ignore[arg-type]
    fresh = SimpleNamespace(config={"number": 1, "params": {}})
    resumed = SimpleNamespace(
        config={"number": 4, "params": {}, "resume": {"checkpoint": "c", "last_step": 2}}
    )
    for trial, iteration, fidelity in ((fresh, 1, 0), (resumed, 1, 2), (resumed, 2, 3)):
        result = {"training_iteration": iteration, "fidelity": fidelity, "accuracy": 0.5}
        callback.on_trial_result(iteration=iteration, trials=[], trial=trial, result=result)  # type: ignore[arg-type]
    assert reported == [(1, 1, 0.0), (4, 3, 2.0), (4, 4, 3.0)]


def test_a_set_aside_trial_has_its_resume_recorded_once_when_it_first_starts() -> None:
    events: list[tuple[Any, ...]] = []
    listener = SimpleNamespace(
        trial_decided=lambda n, decision: events.append((n, decision)),
        trial_started=lambda n: events.append((n, "started")),
    )
    callback = ListenerCallback(listener, max_fidelity=3, stop_reason=lambda: None)  # type: ignore[arg-type]
    resume = {"checkpoint": "c", "fidelity": 2, "last_step": 3}
    resumed = SimpleNamespace(trial_id="t4", config={"number": 4, "params": {}, "resume": resume})
    fresh = SimpleNamespace(trial_id="t5", config={"number": 5, "params": {}})
    for trial in (resumed, fresh, resumed):  # trial 4 starts again later (a retry, or a freeze-thaw resume)
        callback.on_trial_start(iteration=1, trials=[], trial=trial)  # type: ignore[arg-type]
    reason = "the search runs again: resumes from its checkpoint of fidelity step 2"
    assert events == [
        (4, {"action": "resume", "fidelity": 2, "reason": reason}),
        (4, "started"),
        (5, "started"),
        (4, "started"),
    ]


class _Listener:
    def __init__(self) -> None:
        self.retries: list[tuple[int, int, str]] = []

    def trial_retried(self, number: int, attempt: int, reason: str) -> None:
        self.retries.append((number, attempt, reason))

    def trial_decided(self, number: int, decision: dict[str, Any]) -> None:
        """Scheduler decisions are not under test here."""


class _KilledWorker(RayActorError):
    """What Ray says when the worker process running the actor was killed."""

    def __str__(self) -> str:
        return (
            "The actor died unexpectedly before finishing this task.\n\tclass_name: ImplicitFunc\n"
            "\tpid: 10664\n\tip: 192.0.2.2\nThe actor is dead because its worker process has died. "
            "Worker exit type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits."
        )


def _failed_trial(tmp_path: Path, error: BaseException, failures: int) -> SimpleNamespace:
    """What Tune's ``Trial`` offers after ``handle_error``: the error text and the pickled error."""
    (tmp_path / "error.txt").write_text(f"Failure # {failures} (occurred at 2026-11-22)\n{error}\n")
    with open(tmp_path / "error.pkl", "wb") as f:
        cloudpickle.dump(error, f)
    return SimpleNamespace(
        config={"number": 5},
        error_file=str(tmp_path / "error.txt"),
        pickled_error_file=str(tmp_path / "error.pkl"),
        run_metadata=SimpleNamespace(num_failures=failures),
    )


def test_the_retry_callback_reports_a_lost_worker_or_the_error(tmp_path: Path) -> None:
    listener = _Listener()
    callback = ListenerCallback(listener, max_fidelity=3, stop_reason=lambda: None)  # type: ignore[arg-type]
    lost = _failed_trial(tmp_path, ActorDiedError(), failures=1)
    callback.on_trial_recover(iteration=1, trials=[], trial=lost)  # type: ignore[arg-type]
    try:
        raise ValueError("fine-tuning diverged")
    except ValueError as exc:
        raised = RayTaskError("evaluate_subnet", "Traceback ...\nValueError: fine-tuning diverged", exc)
    failed = _failed_trial(tmp_path, raised, failures=2)
    callback.on_trial_recover(iteration=2, trials=[], trial=failed)  # type: ignore[arg-type]
    killed = _failed_trial(tmp_path, _KilledWorker(), failures=3)
    callback.on_trial_recover(iteration=3, trials=[], trial=killed)  # type: ignore[arg-type]
    assert listener.retries == [
        (5, 1, "worker lost: The actor died unexpectedly before finishing this task."),
        (5, 2, "ValueError: fine-tuning diverged"),
        (
            5,
            3,
            "worker lost (pid 10664, exit type SYSTEM_ERROR): "
            "The actor died unexpectedly before finishing this task.",
        ),
    ]

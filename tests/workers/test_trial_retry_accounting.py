"""Retries through real Ray Tune, with the search's searcher and callbacks: a trial that fails once is
retried from its checkpoint and ends succeeded (not failed); one that keeps failing is retried up to
``max_retries`` times, each retry recorded, then fails once, and only it counts as failed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.cloudpickle as cloudpickle
from ray import tune

from search_spaces.spec import Budget, SearchSpec
from supernas.states import TrialState
from surrogates.registry import make_strategy
from surrogates.strategy import SearchProblem
from workers.ray_runtime import ensure_ray
from workers.searcher import StrategySearcher
from workers.tune_callbacks import ListenerCallback

pytestmark = pytest.mark.slow  # starts Ray

MAX_FIDELITY = 2
BUDGET = Budget(max_trials=2, max_parallel=1, max_retries=2)


class _Control:
    def __init__(self) -> None:
        self.suggested: list[int] = []

    def canceled(self) -> bool:
        return False

    def winding_down(self) -> bool:
        return False

    def budget(self) -> Budget:
        return BUDGET


def _searcher(control: _Control) -> StrategySearcher:
    spec = SearchSpec.model_validate(
        {
            "task": "digits",
            "space": {"family": "elastic_mlp"},
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        }
    )
    return StrategySearcher(
        make_strategy("random", SearchProblem(spec.param_space(), tuple(spec.objectives)), 0),
        history=[],
        first_number=0,
        max_fidelity=MAX_FIDELITY,
        metric="accuracy",
        mode="max",
        on_suggest=lambda number, config, suggestion: control.suggested.append(number),
        control=control,
    )


def _flaky(config: dict[str, Any]) -> None:
    """Reports fidelities 0..2 with a checkpoint each; raises at fidelity 1 on its first attempt
    (trial 0) or on every attempt (trial 1). A retry resumes after its checkpointed fidelity."""
    number = int(config["number"])
    checkpoint = tune.get_checkpoint()
    start = 0
    if checkpoint is not None:
        start = json.loads((Path(checkpoint.path) / "state.json").read_text())["fidelity"] + 1
    for fidelity in range(start, MAX_FIDELITY + 1):
        if fidelity == 1 and (number == 1 or checkpoint is None):
            raise ValueError(f"trial {number} broke at fidelity 1")
        last = fidelity == MAX_FIDELITY
        metrics = {
            "number": number,
            "fidelity": fidelity,
            "accuracy": 0.5,
            "artifact_dir": "model" if last else None,
        }
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"fidelity": fidelity}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


class _Listener:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def trial_started(self, number: int) -> None:
        self.events.append(("started", number))

    def trial_reported(self, number: int, step: int, fidelity: float, metrics: dict[str, Any]) -> None:
        self.events.append(("reported", number, step, fidelity))

    def trial_retried(self, number: int, attempt: int, reason: str) -> None:
        self.events.append(("retried", number, attempt, reason))

    def trial_decided(self, number: int, decision: dict[str, Any]) -> None:
        self.events.append(("decided", number, decision))

    def trial_finished(self, number: int, state: TrialState, reason: str | None, *_: Any) -> None:
        self.events.append(("finished", number, state, reason))

    def of(self, kind: str, number: int) -> list[tuple]:
        return [e[2:] for e in self.events if e[0] == kind and e[1] == number]


@pytest.fixture(scope="module")
def ray_started() -> Iterator[None]:
    started_here = not ray.is_initialized()
    ensure_ray(2)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    if started_here:
        ray.shutdown()


def test_retries_are_bounded_recorded_and_only_final_failures_count(
    ray_started: None, tmp_path: Path
) -> None:
    control = _Control()
    searcher = _searcher(control)
    listener = _Listener()
    tuner = tune.Tuner(
        tune.with_resources(_flaky, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            metric="accuracy", mode="max", search_alg=searcher, num_samples=-1, reuse_actors=False
        ),
        run_config=tune.RunConfig(
            name="retries",
            storage_path=str(tmp_path),
            callbacks=[ListenerCallback(listener, MAX_FIDELITY, lambda: None)],  # type: ignore[arg-type]
            failure_config=tune.FailureConfig(max_failures=BUDGET.max_retries),
            verbose=0,
        ),
    )
    tuner.fit()

    assert control.suggested == [0, 1]  # a retry is the same trial: no new number, no budget used
    # trial 0 failed once, was retried from its checkpoint (fidelity 0) and succeeded
    assert listener.of("retried", 0) == [(1, "ValueError: trial 0 broke at fidelity 1")]
    assert [(step, fidelity) for step, fidelity in listener.of("reported", 0)] == [
        (1, 0.0),
        (2, 1.0),
        (3, 2.0),
    ]
    assert listener.of("finished", 0) == [(TrialState.SUCCEEDED, None)]
    # trial 1 was retried max_retries times, then failed for good, once
    assert listener.of("retried", 1) == [(n, "ValueError: trial 1 broke at fidelity 1") for n in (1, 2)]
    assert [step for step, _ in listener.of("reported", 1)] == [1]  # no step reported twice
    assert listener.of("finished", 1) == [(TrialState.FAILED, "ValueError: trial 1 broke at fidelity 1")]
    assert searcher.failed == 1  # what max_failed counts: only trials that finally failed

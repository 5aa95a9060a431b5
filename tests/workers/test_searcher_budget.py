"""The Tune searcher enforces the live budget: max_parallel (wait), max_trials and a requested pause
or stop (finish), with changes taking effect on the next suggestion; failed trials are counted."""

from __future__ import annotations

from dataclasses import dataclass, field

from ray.tune.search import Searcher

from search_spaces.spec import Budget, SearchSpec
from surrogates.registry import make_strategy
from surrogates.strategy import SearchProblem
from workers.searcher import StrategySearcher


@dataclass
class MutableControl:
    current: Budget
    pausing: bool = False
    suggested: list[int] = field(default_factory=list)

    def canceled(self) -> bool:
        return False

    def winding_down(self) -> bool:
        return self.pausing

    def budget(self) -> Budget:
        return self.current


def _searcher(control: MutableControl, spent_before: int = 0) -> StrategySearcher:
    spec = SearchSpec.model_validate(
        {
            "task": "digits",
            "space": {"family": "elastic_mlp"},
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        }
    )
    problem = SearchProblem(spec.param_space(), tuple(spec.objectives))
    return StrategySearcher(
        make_strategy("random", problem, 0),
        history=[],
        first_number=spent_before,
        max_fidelity=1,
        metric="accuracy",
        mode="max",
        on_suggest=lambda number, config, suggestion: control.suggested.append(number),
        control=control,
        spent_before=spent_before,
    )


def test_max_parallel_waits_and_a_raised_limit_applies_at_once() -> None:
    control = MutableControl(Budget(max_trials=10, max_parallel=2))
    searcher = _searcher(control)
    assert searcher.suggest("a")["number"] == 0
    assert searcher.suggest("b")["number"] == 1
    assert searcher.suggest("c") is None  # two running: wait
    control.current = Budget(max_trials=10, max_parallel=3)
    assert searcher.suggest("c")["number"] == 2
    control.current = Budget(max_trials=10, max_parallel=1)  # lowered: running trials keep running
    assert searcher.suggest("d") is None
    for trial_id in ("a", "b"):
        searcher.on_trial_complete(trial_id, {"accuracy": 0.5, "fidelity": 1, "training_iteration": 2})
    assert searcher.suggest("d") is None  # "c" still runs
    searcher.on_trial_complete("c", error=True)
    assert searcher.failed == 1
    assert searcher.suggest("d")["number"] == 3


def test_max_trials_counts_earlier_runs_and_can_change() -> None:
    control = MutableControl(Budget(max_trials=3, max_parallel=5))
    searcher = _searcher(control, spent_before=2)
    assert searcher.suggest("a")["number"] == 2
    assert searcher.suggest("b") == Searcher.FINISHED
    control.current = Budget(max_trials=4, max_parallel=5)
    assert searcher.suggest("b")["number"] == 3
    assert control.suggested == [2, 3]


def test_a_requested_pause_or_stop_finishes_the_searcher() -> None:
    control = MutableControl(Budget(max_trials=10, max_parallel=5))
    searcher = _searcher(control)
    assert searcher.suggest("a")["number"] == 0
    control.pausing = True
    assert searcher.suggest("b") == Searcher.FINISHED
    assert control.suggested == [0]

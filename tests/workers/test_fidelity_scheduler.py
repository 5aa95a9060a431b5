"""The Ray Tune side of the schedulers: our ASHA decides exactly as Ray Tune's ASHAScheduler does, the
searcher lets paused trials free their worker, and trials set aside by an earlier run of the search are
handed out first and go on from their replayed curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search_spaces.params import Float, ParamSpace
from supernas.objectives import Direction
from surrogates.random_search import RandomStrategy
from surrogates.schedulers.asha import AshaScheduler
from surrogates.schedulers.base import Action, Decision, Prediction, SchedulerSettings, SchedulingProblem
from surrogates.strategy import SearchProblem
from workers.fidelity_scheduler import TuneFidelityScheduler
from workers.searcher import StrategySearcher
from workers.trial_checkpoints import ResumedTrial


@dataclass(frozen=True)
class _Trial:  # what Ray's ASHA touches of a trial
    trial_id: str


@pytest.mark.parametrize(("max_t", "grace", "eta"), [(9, 1, 3.0), (16, 2, 2.0), (5, 1, 2.0)])
def test_asha_makes_ray_tunes_decisions(max_t: int, grace: int, eta: float) -> None:
    ray_asha = ASHAScheduler(
        time_attr="step", metric="loss", mode="min", max_t=max_t, grace_period=grace, reduction_factor=eta
    )
    problem = SchedulingProblem(("loss",), (Direction.MINIMIZE,), max_fidelity=max_t - 1, min_fidelity=0)
    ours = AshaScheduler(problem, SchedulerSettings(grace_period=grace, reduction_factor=eta))
    rng = np.random.default_rng(0)
    alive: dict[int, int] = {}
    stops = 0
    for n in range(60):  # trials arrive while others run: interleave their reports at random
        ray_asha.on_trial_add(None, _Trial(str(n)))
        ours.add_trial(n, {})
        alive[n] = 0
        for _ in range(int(rng.integers(0, 4))):
            if not alive:
                break
            t = int(rng.choice(list(alive)))
            step = alive[t] + 1
            loss = float(rng.normal(1.0 / step + t % 7 * 0.05, 0.05))
            theirs = ray_asha.on_trial_result(None, _Trial(str(t)), {"step": step, "loss": loss})
            decision = ours.report(t, step - 1, {"loss": loss})
            if step >= max_t:
                assert decision.action is Action.STOP  # the last step ends the trial in both
                alive.pop(t)
                continue
            assert (theirs == TrialScheduler.STOP) == (decision.action is Action.STOP), (t, step)
            if decision.action is Action.STOP:
                stops += 1
                alive.pop(t)
            else:
                alive[t] = step
    assert stops > 10  # the comparison covered many stops, not only continues


class _Control:
    def __init__(self, max_parallel: int = 1, max_trials: int = 10) -> None:
        self._budget = type("B", (), {"max_trials": max_trials, "max_parallel": max_parallel})()

    def winding_down(self) -> bool:
        return False

    def pausing(self) -> bool:
        return False

    def budget(self) -> Any:
        return self._budget


def _searcher(
    max_parallel: int, first_number: int = 0, max_trials: int = 10, **hooks: Any
) -> StrategySearcher:
    space = ParamSpace([Float("lr", 0.001, 0.1, True)])
    return StrategySearcher(
        RandomStrategy(SearchProblem(space, ()), seed=0),
        history=[],
        first_number=first_number,
        max_fidelity=3,
        metric="accuracy",
        mode="max",
        on_suggest=lambda *args: None,
        control=_Control(max_parallel=max_parallel, max_trials=max_trials),
        **hooks,
    )


def test_paused_trials_do_not_hold_a_worker() -> None:
    paused: set[str] = set()
    searcher = _searcher(max_parallel=2, paused_trial_ids=lambda: set(paused))
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None  # two run: max_parallel
    paused.add("a")
    third = searcher.suggest("c")
    assert third is not None and third["number"] == 2  # a paused trial holds no worker
    assert searcher.suggest("d") is None


def test_a_resumed_search_replays_its_finished_curves() -> None:
    problem = SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=3)
    decisions: list[tuple[int, dict[str, Any]]] = []

    def fresh() -> TuneFidelityScheduler:
        scheduler = AshaScheduler(problem, SchedulerSettings(grace_period=1, reduction_factor=2))
        return TuneFidelityScheduler(scheduler, lambda n, d: decisions.append((n, d)), 20, _Control())

    stored = [(n, {"lr": 0.01}, [(0.0, {"accuracy": 0.8}), (1.0, {"accuracy": 0.85})]) for n in range(3)]
    resumed, new = fresh(), fresh()
    resumed.replay(stored)
    assert resumed.steps == 6 and not decisions  # history: no decision is taken again
    for scheduler in (resumed, new):
        scheduler.on_trial_add(None, _TuneTrial(str(3), {"number": 3, "params": {}}))
    result = {"fidelity": 0, "accuracy": 0.5}
    assert resumed.on_trial_result(None, _TuneTrial("3", {"number": 3}), result) == TrialScheduler.STOP
    assert new.on_trial_result(None, _TuneTrial("3", {"number": 3}), result) == TrialScheduler.CONTINUE
    assert [d["action"] for _, d in decisions] == ["stop", "promote"]


@dataclass(frozen=True)
class _TuneTrial:
    trial_id: str
    config: dict[str, Any]


def test_the_last_report_reaches_the_scheduler_and_ends_the_trial() -> None:
    problem = SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=1)
    inner = AshaScheduler(problem, SchedulerSettings())
    scheduler = TuneFidelityScheduler(inner, lambda n, d: None, None, _Control())
    trial = _TuneTrial("0", {"number": 0, "params": {}})
    scheduler.on_trial_add(None, trial)
    for fidelity in (0, 1):
        assert scheduler.on_trial_result(None, trial, {"fidelity": fidelity, "accuracy": 0.9}) == "CONTINUE"
    assert set(inner.trials[0].costs) == {0, 1} and 0 in inner.ended  # the model sees the final value


def test_no_trial_starts_once_the_schedulers_step_budget_is_spent() -> None:
    spent = {"value": False}
    searcher = _searcher(max_parallel=4, scheduler_done=lambda: spent["value"])
    assert isinstance(searcher.suggest("a"), dict)
    spent["value"] = True
    assert searcher.suggest("b") == StrategySearcher.FINISHED


def _set_aside(number: int) -> ResumedTrial:
    reports = [(0.0, {"accuracy": 0.8}), (1.0, {"accuracy": 0.85})]
    return ResumedTrial(number, {"lr": 0.01 * (number + 1)}, 1, reports, 2, f"/runs/ckpt-{number}")


def test_trials_set_aside_by_an_earlier_run_are_handed_out_first_within_the_budget() -> None:
    never_reported = ResumedTrial(5, {"lr": 0.07}, None, [], 0, None)
    searcher = _searcher(
        max_parallel=1,
        first_number=6,
        max_trials=4,  # with 1 used by earlier runs (spent_before): three more trials
        spent_before=1,
        resumed=[_set_aside(2), _set_aside(4), never_reported],
    )
    first = searcher.suggest("a")
    assert first == {
        "number": 2,
        "params": {"lr": 0.03},
        "resume": {"checkpoint": "/runs/ckpt-2", "fidelity": 1, "last_step": 2},
    }
    assert searcher.suggest("b") is None  # it holds the one worker
    searcher.on_trial_complete("a", {"fidelity": 3, "accuracy": 0.9})
    assert searcher.suggest("b")["number"] == 4
    searcher.on_trial_complete("b", {"fidelity": 3, "accuracy": 0.9})
    # it has nothing to resume from: it starts again under its number and config, as a new trial would
    assert searcher.suggest("c") == {"number": 5, "params": {"lr": 0.07}}
    searcher.on_trial_complete("c", {"fidelity": 3, "accuracy": 0.9})
    assert searcher.suggest("d") == StrategySearcher.FINISHED  # they count against max_trials


@dataclass
class _RunTrial:
    trial_id: str
    config: dict[str, Any]
    status: str


class _Controller:
    def __init__(self, trials: list[_RunTrial]) -> None:
        self.trials = trials

    def get_trials(self) -> list[_RunTrial]:
        return self.trials


RESUME_FROM_1 = {"checkpoint": "/runs/ckpt-2", "fidelity": 1, "last_step": 2}


def test_a_resumed_trial_keeps_its_replayed_curve_and_runs_before_paused_ones() -> None:
    problem = SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=3)
    inner = AshaScheduler(problem, SchedulerSettings(grace_period=1, reduction_factor=2))
    decisions: list[tuple[int, dict[str, Any]]] = []
    scheduler = TuneFidelityScheduler(inner, lambda n, d: decisions.append((n, d)), 20, _Control())
    finished = [(0, {"lr": 0.01}, [(0.0, {"accuracy": 0.9}), (1.0, {"accuracy": 0.95})])]
    scheduler.replay(finished, [_set_aside(2)])
    assert scheduler.steps == 4
    assert 0 in inner.ended and 2 not in inner.ended  # the resumed trial goes on in this run
    resumed = _RunTrial("t2", {"number": 2, "params": {"lr": 0.03}, "resume": RESUME_FROM_1}, "PENDING")
    scheduler.on_trial_add(None, resumed)  # type: ignore[arg-type]
    assert set(inner.trials[2].costs) == {0, 1}  # not reset by Tune adding it
    paused = _RunTrial("t5", {"number": 5, "params": {"lr": 0.06}}, "PAUSED")
    assert scheduler.choose_trial_to_run(_Controller([paused, resumed])) is resumed
    assert decisions == []  # its resume is recorded when it starts (ListenerCallback.on_trial_start)


class _ResumeLast(AshaScheduler):
    """A scheduler that pauses trials and resumes the paused trial with the highest number."""

    pauses = True

    def next_step(self, paused: Sequence[int], new_config: dict[str, Any] | None) -> Decision | None:
        return Decision(Action.RESUME, max(paused), self.trials[max(paused)].fidelity, "highest number")


def test_a_scheduler_that_pauses_also_lets_a_set_aside_trial_go_on_first() -> None:
    problem = SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=3)
    inner = _ResumeLast(problem, SchedulerSettings())
    decisions: list[tuple[int, dict[str, Any]]] = []
    scheduler = TuneFidelityScheduler(inner, lambda n, d: decisions.append((n, d)), 20, _Control())
    scheduler.replay([], [_set_aside(2)])
    set_aside = _RunTrial("t2", {"number": 2, "params": {}, "resume": RESUME_FROM_1}, "PENDING")
    paused = _RunTrial("t5", {"number": 5, "params": {"lr": 0.06}}, "PAUSED")
    for trial in (set_aside, paused):
        scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]
    scheduler.on_trial_result(None, paused, {"fidelity": 0, "accuracy": 0.5})  # type: ignore[arg-type]
    recorded = len(decisions)
    # Tune starts a pending trial whatever the scheduler chooses: it goes first, and the scheduler
    # (which would resume trial 5) records nothing for it; the callback records its resume
    assert scheduler.choose_trial_to_run(_Controller([paused, set_aside])) is set_aside
    assert len(decisions) == recorded


class _ResumeFirst(AshaScheduler):
    """Pauses every trial after each report and resumes the first paused one, else starts the new
    config; counts its choices."""

    def __init__(self, problem: SchedulingProblem) -> None:
        super().__init__(problem, SchedulerSettings())
        self.choices = 0

    def on_report(self, trial: int, fidelity: int, costs: np.ndarray) -> Decision:
        return Decision(Action.PAUSE, trial, fidelity, "step done")

    def next_step(self, paused: Sequence[int], new_config: dict[str, Any] | None) -> Decision | None:
        self.choices += 1
        if not paused:  # a new config, with what it is predicted to reach
            prediction = Prediction(5, 0.9, 0.1)
            return None if new_config is None else Decision(Action.START, None, None, "new", None, prediction)
        return Decision(Action.RESUME, paused[0], self.trials[paused[0]].fidelity, "first paused")


def _resume_first() -> tuple[TuneFidelityScheduler, _ResumeFirst, list[tuple[int, dict[str, Any]]]]:
    """A Tune scheduler over ``_ResumeFirst`` (5 fidelity steps), its inner scheduler and the
    decisions it records."""
    inner = _ResumeFirst(SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=5))
    decisions: list[tuple[int, dict[str, Any]]] = []
    scheduler = TuneFidelityScheduler(inner, lambda n, d: decisions.append((n, d)), None, _Control())
    return scheduler, inner, decisions


def test_the_same_trials_waiting_after_a_new_report_is_a_new_decision() -> None:
    scheduler, inner, decisions = _resume_first()
    trial = _RunTrial("t1", {"number": 1, "params": {}}, "RUNNING")
    scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]
    for fidelity in (0, 1):
        assert scheduler.on_trial_result(None, trial, {"fidelity": fidelity, "accuracy": 0.5}) == "PAUSE"  # type: ignore[arg-type]
        trial.status = "PAUSED"
        for _ in range(3):  # Tune asks again while nothing changed: one decision, recorded once
            assert scheduler.choose_trial_to_run(_Controller([trial])) is trial
        trial.status = "RUNNING"
    assert inner.choices == 2
    assert [(d["action"], d["fidelity"]) for _, d in decisions] == [
        ("pause", 0),
        ("resume", 0),
        ("pause", 1),
        ("resume", 1),
    ]


def test_a_chosen_trial_waiting_for_a_worker_is_announced_once_while_others_report() -> None:
    scheduler, inner, decisions = _resume_first()
    waiting = _RunTrial("t1", {"number": 1, "params": {}}, "RUNNING")
    other = _RunTrial("t2", {"number": 2, "params": {}}, "RUNNING")
    for trial in (waiting, other):
        scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]
    scheduler.on_trial_result(None, waiting, {"fidelity": 0, "accuracy": 0.5})  # type: ignore[arg-type]
    waiting.status = "PAUSED"  # chosen, but Tune has no worker for it yet: it stays paused
    for fidelity in (0, 1, 2):  # trial 2 reports meanwhile (and is resumed at once each time)
        assert scheduler.choose_trial_to_run(_Controller([waiting])) is waiting
        scheduler.on_trial_result(None, other, {"fidelity": fidelity, "accuracy": 0.5})  # type: ignore[arg-type]
    assert inner.choices == 3  # decided again after each report
    resumes = [(n, d["fidelity"]) for n, d in decisions if d["action"] == "resume"]
    assert resumes == [(1, 0)]  # but recorded once


def test_a_paused_trial_that_tune_shows_pending_while_it_resumes_is_not_a_new_config() -> None:
    scheduler, _, decisions = _resume_first()
    resuming = _RunTrial("t1", {"number": 1, "params": {}}, "RUNNING")
    scheduler.on_trial_add(None, resuming)  # type: ignore[arg-type]
    result = {"fidelity": 0, "accuracy": 0.5}
    scheduler.on_trial_result(None, resuming, result)  # type: ignore[arg-type]
    resuming.status = "PENDING"  # chosen to resume: Tune starts it
    assert scheduler.choose_trial_to_run(_Controller([resuming])) is None  # nothing else to run
    assert [d["action"] for _, d in decisions] == ["pause"]  # no "start" recorded on it

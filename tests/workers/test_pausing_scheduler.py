"""What every search's Tune scheduler does when its user pauses or stops the search: under a pause a
running trial pauses after its current step (never after its last), no paused trial is resumed and
the run may end once none runs; a withdrawn pause resumes the trials it held first. Each pause and
resume is recorded on its trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search_spaces.spec import Budget
from supernas.objectives import Direction
from surrogates.schedulers.asha import AshaScheduler
from surrogates.schedulers.base import SchedulerSettings, SchedulingProblem
from workers.fidelity_scheduler import TuneFidelityScheduler
from workers.pausing_scheduler import PAUSE_WITHDRAWN, PAUSING, PausingScheduler

MAX_FIDELITY = 3


@dataclass
class _Control:
    requested: str | None = None  # "pause" or "stop"

    def canceled(self) -> bool:
        return False

    def winding_down(self) -> bool:
        return self.requested is not None

    def pausing(self) -> bool:
        return self.requested == "pause"

    def budget(self) -> Budget:
        return Budget()


@dataclass
class _Trial:
    trial_id: str
    config: dict[str, Any]
    status: str = "RUNNING"
    last_result: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Controller:
    trials: list[_Trial]

    def get_trials(self) -> list[_Trial]:
        return self.trials


def _trial(number: int, status: str = "RUNNING") -> _Trial:
    return _Trial(f"t{number}", {"number": number, "params": {}}, status)


def _fifo(control: _Control) -> tuple[PausingScheduler, list[tuple[int, dict[str, Any]]]]:
    decisions: list[tuple[int, dict[str, Any]]] = []
    return PausingScheduler(lambda n, d: decisions.append((n, d)), control, MAX_FIDELITY), decisions


def test_a_pause_holds_running_trials_after_their_step_but_lets_a_last_step_finish() -> None:
    control = _Control()
    scheduler, decisions = _fifo(control)
    running = _trial(0)
    assert scheduler.on_trial_result(None, running, {"fidelity": 1}) == "CONTINUE"  # type: ignore[arg-type]
    control.requested = "pause"
    assert scheduler.on_trial_result(None, running, {"fidelity": 2}) == "PAUSE"  # type: ignore[arg-type]
    last = _trial(1)
    assert scheduler.on_trial_result(None, last, {"fidelity": MAX_FIDELITY}) == "CONTINUE"  # type: ignore[arg-type]
    infeasible = {"fidelity": 0, "infeasible": "latency_ms 9 > 5"}
    assert scheduler.on_trial_result(None, _trial(2), infeasible) == "CONTINUE"  # type: ignore[arg-type]
    assert decisions == [(0, {"action": "pause", "fidelity": 2, "reason": PAUSING})]


def test_a_stop_lets_running_trials_finish_and_ends_the_run_once_none_runs() -> None:
    control = _Control(requested="stop")
    scheduler, decisions = _fifo(control)
    running, paused = _trial(0), _trial(1, "PAUSED")
    assert scheduler.on_trial_result(None, running, {"fidelity": 1}) == "CONTINUE"  # type: ignore[arg-type]
    assert scheduler.choose_trial_to_run(_Controller([paused, running])) is None
    assert not scheduler.wound_down  # trial 0 still runs
    running.status = "TERMINATED"
    assert scheduler.choose_trial_to_run(_Controller([paused, running])) is None  # paused stays paused
    assert scheduler.wound_down and not decisions


def test_a_withdrawn_pause_resumes_the_trials_it_held_first() -> None:
    control = _Control(requested="pause")
    scheduler, decisions = _fifo(control)
    held = _trial(0)
    assert scheduler.on_trial_result(None, held, {"fidelity": 1}) == "PAUSE"  # type: ignore[arg-type]
    held.status, held.last_result = "PAUSED", {"fidelity": 1}
    pending = _trial(1, "PENDING")
    assert scheduler.choose_trial_to_run(_Controller([pending, held])) is None
    control.requested = None  # the user resumed the search before the run ended
    assert scheduler.choose_trial_to_run(_Controller([pending, held])) is held
    assert decisions[-1] == (0, {"action": "resume", "fidelity": 1, "reason": PAUSE_WITHDRAWN})
    held.status = "RUNNING"
    assert scheduler.choose_trial_to_run(_Controller([pending, held])) is pending  # then FIFO order


def test_under_a_multi_fidelity_scheduler_a_pause_holds_what_it_would_let_go_on() -> None:
    problem = SchedulingProblem(("accuracy",), (Direction.MAXIMIZE,), max_fidelity=MAX_FIDELITY)
    control = _Control()
    decisions: list[tuple[int, dict[str, Any]]] = []
    inner = AshaScheduler(problem, SchedulerSettings(grace_period=1, reduction_factor=2))
    scheduler = TuneFidelityScheduler(inner, lambda n, d: decisions.append((n, d)), None, control)
    good, bad = _trial(0), _trial(1)
    for trial in (good, bad):
        scheduler.on_trial_add(None, trial)  # type: ignore[arg-type]
        scheduler.on_trial_result(None, trial, {"fidelity": 0, "accuracy": 0.5})  # type: ignore[arg-type]
    decisions.clear()
    control.requested = "pause"
    assert scheduler.on_trial_result(None, good, {"fidelity": 1, "accuracy": 0.9}) == "PAUSE"  # type: ignore[arg-type]
    assert scheduler.on_trial_result(None, bad, {"fidelity": 1, "accuracy": 0.1}) == "STOP"  # type: ignore[arg-type]
    # the promotion past rung 1 is recorded, then the pause; the stop stays a stop
    assert [(n, d["action"]) for n, d in decisions] == [(0, "promote"), (0, "pause"), (1, "stop")]
    assert scheduler.paused_trial_ids() == {"t0"}  # a held trial holds no worker

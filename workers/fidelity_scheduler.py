"""Ray Tune glue of the multi-fidelity schedulers: a Tune ``TrialScheduler`` that hands every report to
a supernas ``FidelityScheduler`` and carries out its decisions on real trials.

``continue``/``promote`` let the trial go on, ``stop`` ends it, ``pause`` has Tune stop its worker and
keep its latest checkpoint (the trainable checkpoints every report), and when a worker is free the
scheduler chooses between resuming a paused trial (Tune restores the checkpoint and the trainable
continues with the next epoch) and starting the next new trial. Each decision but a plain continue is
handed to ``on_decision`` (the service stores it with the trial). Once ``max_steps`` reports were
made, paused and pending trials are stopped and none is resumed or started; once a pause or stop of
the search was requested, none is resumed either, and when no trial runs any more the run ends
with the paused ones left as they are (``wound_down``). A search resumed after
a crash, a shutdown or a pause first replays the stored learning curves of its finished trials and
of those it resumes from their checkpoints (``replay``), so that its rungs, its curve model and its
step budget go on from where they were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from surrogates.schedulers.base import Action, Decision, FidelityScheduler
from workers.live_hooks import DropsLiveHooksWhenPickled
from workers.trial_checkpoints import ResumedTrial
from workers.trial_outcome import observed_metrics

BUDGET_SPENT = "the scheduler's step budget (max_steps) is spent"
OnDecision = Callable[[int, dict[str, Any]], None]
# a finished trial's number, config and (fidelity, metrics) reports, as stored
StoredCurve = tuple[int, dict[str, Any], list[tuple[float, dict[str, Any]]]]


def _number(trial: Trial) -> int:
    return int(trial.config["number"])


class TuneFidelityScheduler(DropsLiveHooksWhenPickled, FIFOScheduler):
    _live_attributes = ("_on_decision", "_winding_down")

    def __init__(
        self,
        scheduler: FidelityScheduler,
        on_decision: OnDecision,
        max_steps: int | None,
        winding_down: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()
        self.scheduler = scheduler
        self._on_decision = on_decision
        self._max_steps = max_steps
        self._winding_down = winding_down  # a pause or stop of the search was requested
        self.wound_down = False  # winding down, and no trial runs: the run may end
        self.steps = 0  # reports made in this run
        self._paused: set[str] = set()  # Tune ids of the trials paused by a decision
        self._choice: tuple[tuple[Any, ...], Decision | None] | None = None  # (situation, decision)
        self._announced: set[tuple[Any, ...]] = set()

    def replay(self, curves: Sequence[StoredCurve], resumed: Sequence[ResumedTrial] = ()) -> None:
        """Feed the scheduler the reports of trials that ended in earlier runs of the search (their
        decisions are history: none is taken again), and of the ``resumed`` ones, which go on in
        this run; count them all against the step budget."""
        for number, config, reports in [*curves, *((t.number, t.config, t.reports) for t in resumed)]:
            self.scheduler.add_trial(number, config)
            for fidelity, metrics in sorted(reports, key=lambda r: r[0]):
                self.scheduler.report(number, int(fidelity), metrics)
                self.steps += 1
        for number, _, _ in curves:
            self.scheduler.end_trial(number)
        for trial in resumed:  # whatever the replay decided, it runs again (see choose_trial_to_run)
            self.scheduler.ended.discard(trial.number)

    def paused_trial_ids(self) -> set[str]:
        return set(self._paused)

    def budget_spent(self) -> bool:
        return self._max_steps is not None and self.steps >= self._max_steps

    def _tell(self, number: int, decision: Decision) -> None:
        self._on_decision(number, decision.record())

    # --- Tune's hooks ----------------------------------------------------------------------------

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if _number(trial) not in self.scheduler.trials:  # a resumed trial keeps its replayed curve
            self.scheduler.add_trial(_number(trial), trial.config["params"])

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self.steps += 1
        number = _number(trial)
        fidelity = int(result["fidelity"])
        decision = self.scheduler.report(number, fidelity, observed_metrics(result))
        if result.get("infeasible") or fidelity >= self.scheduler.problem.max_fidelity:
            self.scheduler.end_trial(number)
            return TrialScheduler.CONTINUE  # the trial's last report: the trainable returns by itself
        if decision.action is Action.PAUSE and self.budget_spent():
            decision = Decision(Action.STOP, number, fidelity, BUDGET_SPENT)
            self.scheduler.end_trial(number)
        if decision.action is not Action.CONTINUE:
            self._tell(number, decision)
        if decision.action is Action.PAUSE:
            self._paused.add(trial.trial_id)
            return TrialScheduler.PAUSE
        return TrialScheduler.STOP if decision.action is Action.STOP else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        self._forget(trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._forget(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._forget(trial)

    def _forget(self, trial: Trial) -> None:
        self._paused.discard(trial.trial_id)
        self.scheduler.end_trial(_number(trial))

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Resume a paused trial or start the first pending one, as the scheduler decides (idempotent:
        the same situation gives the same answer, and its decision is recorded once)."""
        trials = tune_controller.get_trials()
        if self._winding_down():  # paused trials stay paused; the run ends once none runs
            self.wound_down = not any(t.status == Trial.RUNNING for t in trials)
            return None
        pending = next((t for t in trials if t.status == Trial.PENDING), None)
        paused = {_number(t): t for t in trials if t.status == Trial.PAUSED}
        if pending is not None and pending.config.get("resume") and not self.budget_spent():
            return pending  # set aside when the last run stopped: it goes on first (its resume is recorded)
        if self.budget_spent():  # nothing runs again: paused and pending trials stop
            waiting = {**paused, **({_number(pending): pending} if pending is not None else {})}
            for number, trial in waiting.items():
                self._tell(
                    number,
                    Decision(Action.STOP, number, self.scheduler.trials[number].fidelity, BUDGET_SPENT),
                )
                self.scheduler.end_trial(number)
                tune_controller.stop_trial(trial)
            return None
        situation = (pending.trial_id if pending is not None else None, tuple(sorted(paused)))
        if self._choice is None or self._choice[0] != situation:
            config = pending.config["params"] if pending is not None else None
            self._choice = (situation, self.scheduler.next_step(sorted(paused), config))
        decision = self._choice[1]
        if decision is None:
            return None
        chosen = paused[decision.trial] if decision.action is Action.RESUME else pending
        if chosen is None:
            return None
        if situation not in self._announced and (
            decision.action is Action.RESUME or decision.predicted is not None
        ):
            self._announced.add(situation)
            self._tell(_number(chosen), decision)
        self._paused.discard(chosen.trial_id)
        return chosen

    def debug_string(self) -> str:
        return f"supernas {self.scheduler.name} scheduler ({self.steps} reports)"

"""Ray Tune glue of the multi-fidelity schedulers: a Tune ``TrialScheduler`` that hands every report to
a supernas ``FidelityScheduler`` and carries out its decisions on real trials.

``continue``/``promote`` let the trial go on, ``stop`` ends it, ``pause`` has Tune stop its worker and
keep its latest checkpoint (the trainable checkpoints every report), and when a worker is free the
scheduler chooses between resuming a paused trial (Tune restores the checkpoint and the trainable
continues with the next epoch) and starting the next new trial. Each decision but a plain continue is
handed to ``on_decision`` (the service stores it with the trial). Once ``max_steps`` reports were
made, paused and pending trials are stopped and none is resumed or started. A requested pause or
stop of the search is handled as by every search's scheduler (``workers.pausing_scheduler``): a
pause pauses a trial the scheduler would let go on. A search resumed after a crash, a shutdown or a
pause first replays the stored learning curves of its finished trials and of those it resumes from
their checkpoints (``replay``), so that its rungs, its curve model and its step budget go on from
where they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from surrogates.schedulers.base import Action, Decision, FidelityScheduler
from workers.control import SearchControl
from workers.pausing_scheduler import OnDecision, PausingScheduler, trial_number
from workers.trial_checkpoints import ResumedTrial
from workers.trial_outcome import observed_metrics

BUDGET_SPENT = "the scheduler's step budget (max_steps) is spent"
# a finished trial's number, config and (fidelity, metrics) reports, as stored
StoredCurve = tuple[int, dict[str, Any], list[tuple[float, dict[str, Any]]]]


class TuneFidelityScheduler(PausingScheduler):
    def __init__(
        self,
        scheduler: FidelityScheduler,
        on_decision: OnDecision,
        max_steps: int | None,
        control: SearchControl,
    ) -> None:
        super().__init__(on_decision, control, scheduler.problem.max_fidelity)
        self.scheduler = scheduler
        self._max_steps = max_steps
        self.steps = 0  # reports made in this run
        self._paused: set[str] = set()  # Tune ids of the trials paused by a decision
        self._choice: tuple[tuple[Any, ...], Decision | None] | None = None  # (situation, decision)
        self._announced: set[tuple[str, int | None]] = set()  # (Tune id, fidelity) of recorded choices

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
        return self._paused | self._held

    def budget_spent(self) -> bool:
        return self._max_steps is not None and self.steps >= self._max_steps

    def _tell(self, number: int, decision: Decision) -> None:
        self._on_decision(number, decision.record())

    # --- Tune's hooks ----------------------------------------------------------------------------

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if trial_number(trial) not in self.scheduler.trials:  # a resumed trial keeps its replayed curve
            self.scheduler.add_trial(trial_number(trial), trial.config["params"])

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        self.steps += 1
        number = trial_number(trial)
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
        if decision.action is Action.STOP:
            return TrialScheduler.STOP
        # it would go on, unless the search is pausing (``holds`` records that pause)
        return TrialScheduler.PAUSE if self.holds(trial, result) else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        self._forget(trial)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._forget(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._forget(trial)

    def _forget(self, trial: Trial) -> None:
        self._paused.discard(trial.trial_id)
        self._held.discard(trial.trial_id)
        self.scheduler.end_trial(trial_number(trial))

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Resume a paused trial or start the first pending one, as the scheduler decides. Tune asks
        repeatedly: the same situation (the same trials waiting, no report since) gives the same
        answer, and a choice is recorded once however often it is made again."""
        if self.winding_down(tune_controller):  # paused trials stay paused; the run ends once none runs
            return None
        if (held := self.held_trial(tune_controller)) is not None:
            return held
        trials = tune_controller.get_trials()
        waiting = [t for t in trials if t.status == Trial.PENDING]
        set_aside = next((t for t in waiting if t.config.get("resume")), None)
        # the first new trial (Tune also shows a paused trial it is resuming as pending: it reported)
        pending = next((t for t in waiting if not t.config.get("resume") and not self._reported(t)), None)
        paused = {trial_number(t): t for t in trials if t.status == Trial.PAUSED}
        if set_aside is not None and not self.budget_spent():  # Tune starts pending trials anyway
            return set_aside  # set aside when the last run stopped: it goes on first
        if self.budget_spent():  # nothing runs again: paused and pending trials stop
            stopped = {**paused, **{trial_number(t): t for t in waiting}}
            for number, trial in stopped.items():
                self._tell(
                    number,
                    Decision(Action.STOP, number, self.scheduler.trials[number].fidelity, BUDGET_SPENT),
                )
                self.scheduler.end_trial(number)
                tune_controller.stop_trial(trial)
            return None
        new_config = pending.config["params"] if pending is not None else None
        # the same trials waiting after a new report is a new situation: the scheduler decides again
        situation = (pending.trial_id if pending is not None else None, tuple(sorted(paused)), self.steps)
        if self._choice is None or self._choice[0] != situation:
            self._choice = (situation, self.scheduler.next_step(sorted(paused), new_config))
        decision = self._choice[1]
        if decision is None:
            return None
        chosen = paused[decision.trial] if decision.action is Action.RESUME else pending
        if chosen is None:
            return None
        # a chosen trial may wait for a worker (still paused or pending) while others report: it is
        # announced once per start, and per resume from a given fidelity
        announcement = (chosen.trial_id, decision.fidelity)
        if announcement not in self._announced and (
            decision.action is Action.RESUME or decision.predicted is not None
        ):
            self._announced.add(announcement)
            self._tell(trial_number(chosen), decision)
        self._paused.discard(chosen.trial_id)
        return chosen

    def _reported(self, trial: Trial) -> bool:
        curve = self.scheduler.trials.get(trial_number(trial))
        return curve is not None and bool(curve.costs)

    def debug_string(self) -> str:
        return f"supernas {self.scheduler.name} scheduler ({self.steps} reports)"

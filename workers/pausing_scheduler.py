"""Ray Tune's FIFO scheduler, plus what every search's scheduler does when its user pauses or stops it.

Once a pause or stop is requested, no paused trial is resumed, and when no trial runs any more the
run may end (``wound_down``) with the paused trials left as they are: the service then sets them
aside for the search's next run (a pause) or cancels them (a stop). Under a pause, a running trial
also pauses after the step it is on, keeping that step's checkpoint, instead of running to its
last step. If the pause is withdrawn while the run still goes on, those trials resume first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from workers.control import SearchControl
from workers.live_hooks import DropsLiveHooksWhenPickled

OnDecision = Callable[[int, dict[str, Any]], None]  # a trial's number and the decision's record
PAUSING = "the search is pausing: resumes from this step's checkpoint when the search runs again"
PAUSE_WITHDRAWN = "the search's pause was withdrawn"


def trial_number(trial: Trial) -> int:
    return int(trial.config["number"])


class PausingScheduler(DropsLiveHooksWhenPickled, FIFOScheduler):
    _live_attributes = ("_on_decision", "_control")

    def __init__(self, on_decision: OnDecision, control: SearchControl, max_fidelity: int) -> None:
        super().__init__()
        self._on_decision = on_decision
        self._control = control
        self._max_fidelity = max_fidelity
        self.wound_down = False  # a pause or stop was requested and no trial runs: the run may end
        self._held: set[str] = set()  # Tune ids of the trials paused because the search is pausing

    def holds(self, trial: Trial, result: dict[str, Any]) -> bool:
        """Whether the trial pauses after this report because the search is pausing (never after
        its last report, which has no checkpoint); the pause is recorded on the trial."""
        last = result.get("infeasible") or int(result["fidelity"]) >= self._max_fidelity
        if last or not self._control.pausing():
            return False
        self._held.add(trial.trial_id)
        self._record(trial, "pause", int(result["fidelity"]), PAUSING)
        return True

    def winding_down(self, tune_controller: Any) -> bool:
        """Whether a pause or stop holds every trial back (then none starts or resumes); updates
        ``wound_down``."""
        if not self._control.winding_down():
            return False
        self.wound_down = not any(t.status == Trial.RUNNING for t in tune_controller.get_trials())
        return True

    def held_trial(self, tune_controller: Any) -> Trial | None:
        """A trial paused for a pause that was since withdrawn: it resumes before anything else."""
        for trial in tune_controller.get_trials():
            if trial.trial_id in self._held and trial.status == Trial.PAUSED:
                self._held.discard(trial.trial_id)
                self._record(trial, "resume", (trial.last_result or {}).get("fidelity"), PAUSE_WITHDRAWN)
                return trial
        return None

    def _record(self, trial: Trial, action: str, fidelity: int | None, reason: str) -> None:
        self._on_decision(trial_number(trial), {"action": action, "fidelity": fidelity, "reason": reason})

    # --- Tune's hooks ----------------------------------------------------------------------------

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        return TrialScheduler.PAUSE if self.holds(trial, result) else TrialScheduler.CONTINUE

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        if self.winding_down(tune_controller):
            return None
        return self.held_trial(tune_controller) or super().choose_trial_to_run(tune_controller)

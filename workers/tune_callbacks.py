"""Ray Tune callbacks that forward trial events to a ``SearchListener``, and the run's stopper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.stopper import Stopper

from supernas.states import TrialState
from workers.listener import SearchListener
from workers.live_hooks import DropsLiveHooksWhenPickled
from workers.trial_outcome import observed_metrics, observed_state


def _error_summary(trial: Trial) -> str:
    error_file = trial.error_file
    if error_file and Path(error_file).exists():
        lines = [line for line in Path(error_file).read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1][:2000]
    return "trial raised an error (no error file)"


class ListenerCallback(DropsLiveHooksWhenPickled, Callback):
    _live_attributes = ("_listener", "_stop_reason")

    def __init__(
        self, listener: SearchListener, max_fidelity: int, stop_reason: Callable[[], str | None]
    ) -> None:
        self._listener = listener
        self._max_fidelity = max_fidelity
        self._stop_reason = stop_reason

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._listener.trial_started(int(trial.config["number"]))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self._listener.trial_reported(
            int(trial.config["number"]),
            step=int(result["training_iteration"]),
            fidelity=float(result["fidelity"]),
            metrics=observed_metrics(result),
        )

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        number = int(trial.config["number"])
        last = trial.last_result or {}
        state = observed_state(last, self._max_fidelity)
        if state == TrialState.SUCCEEDED:
            self._listener.trial_finished(number, state, None, last["artifact_dir"], observed_metrics(last))
        elif state == TrialState.INFEASIBLE:
            self._listener.trial_finished(number, state, last["infeasible"], None, observed_metrics(last))
        elif (reason := self._stop_reason()) is not None:
            self._listener.trial_finished(number, TrialState.CANCELED, reason, None, None)
        else:
            reason = f"stopped by the scheduler at fidelity {last.get('fidelity')} of {self._max_fidelity}"
            self._listener.trial_finished(number, TrialState.PRUNED, reason, None, None)

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        number = int(trial.config["number"])
        self._listener.trial_finished(number, TrialState.FAILED, _error_summary(trial), None, None)


class RunStopper(DropsLiveHooksWhenPickled, Stopper):
    """Stops the whole experiment (running trials included) once ``should_stop`` says so: a cancel,
    the time budget, or too many failed trials."""

    _live_attributes = ("_should_stop",)

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self._should_stop = should_stop

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._should_stop()

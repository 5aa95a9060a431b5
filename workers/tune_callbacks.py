"""Ray Tune callbacks that forward trial events to a ``SearchListener``, and the run's stopper."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray.cloudpickle as cloudpickle
from ray.exceptions import RayActorError, RayTaskError
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


# what Ray's ActorDiedError says of the dead worker process
_WORKER_DETAILS = (
    ("pid", re.compile(r"^\s*pid: (\d+)", re.M)),
    ("exit type", re.compile(r"Worker exit type: (\w+)")),
)


def _latest_error(trial: Trial) -> BaseException | None:
    """The exception of the trial's latest failure, as Tune pickled it (None if it could not)."""
    pickled = trial.pickled_error_file
    if not pickled or not Path(pickled).exists():
        return None
    try:
        with open(pickled, "rb") as f:
            error = cloudpickle.load(f)
    except Exception:  # an exception class that does not unpickle here: fall back to the error file
        return None
    return error if isinstance(error, BaseException) else None


def _worker_lost(error: BaseException | None) -> bool:
    """Whether the trial failed because its worker process (the Ray actor) died, not by raising."""
    if isinstance(error, RayTaskError):
        error = error.cause
    return isinstance(error, RayActorError)


def _retry_reason(trial: Trial) -> str:
    """Why a trial is being retried: ``worker lost (pid ..., exit type ...): ...`` when its worker
    process died (killed, out of memory, node gone), else the error's last line (as for a failed
    trial)."""
    error = _latest_error(trial)
    if not _worker_lost(error):
        return _error_summary(trial)
    text = str(error)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    details = [f"{name} {m.group(1)}" for name, pattern in _WORKER_DETAILS if (m := pattern.search(text))]
    return (f"worker lost ({', '.join(details)}): " if details else "worker lost: ") + first_line[:1000]


def resumes_from(fidelity: int) -> str:
    return f"the search runs again: resumes from its checkpoint of fidelity step {fidelity}"


class ListenerCallback(DropsLiveHooksWhenPickled, Callback):
    _live_attributes = ("_listener", "_stop_reason")

    def __init__(
        self, listener: SearchListener, max_fidelity: int, stop_reason: Callable[[], str | None]
    ) -> None:
        self._listener = listener
        self._max_fidelity = max_fidelity
        self._stop_reason = stop_reason
        self._resumed: set[str] = set()  # Tune ids of the set-aside trials whose resume was recorded

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """A trial starts (or restarts). One set aside by an earlier run of the search
        (``config["resume"]``) has its resume recorded the first time: Tune starts pending trials
        whatever the scheduler chose, so this is the one place that sees every such start."""
        number = int(trial.config["number"])
        resume = trial.config.get("resume")
        if resume and trial.trial_id not in self._resumed:
            self._resumed.add(trial.trial_id)
            fidelity = resume["fidelity"]
            self._listener.trial_decided(
                number, {"action": "resume", "fidelity": fidelity, "reason": resumes_from(fidelity)}
            )
        self._listener.trial_started(number)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        resume = trial.config.get("resume") or {}  # a resumed trial's steps follow its earlier ones
        self._listener.trial_reported(
            int(trial.config["number"]),
            step=int(result["training_iteration"]) + int(resume.get("last_step", 0)),
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
            resume = trial.config.get("resume") or {}  # stopped before it went on: where it stood
            fidelity = last.get("fidelity", resume.get("fidelity"))
            reason = f"stopped by the scheduler at fidelity {fidelity} of {self._max_fidelity}"
            self._listener.trial_finished(number, TrialState.PRUNED, reason, None, None)

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """The trial failed (it raised, or its worker was lost) and Tune will retry it from its latest
        checkpoint (``FailureConfig.max_failures`` bounds the retries); the searcher is not told."""
        attempt = max(int(trial.run_metadata.num_failures), 1)  # 1 for the first retry
        self._listener.trial_retried(int(trial.config["number"]), attempt, _retry_reason(trial))

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        number = int(trial.config["number"])
        self._listener.trial_finished(number, TrialState.FAILED, _error_summary(trial), None, None)


class RunStopper(DropsLiveHooksWhenPickled, Stopper):
    """Stops the whole experiment (running trials included) once ``should_stop`` says so: a cancel or
    a shutdown, the time budget, too many failed trials, or a pause or stop of the search that left
    only paused trials. Tune tells no callback of the trials it stops this way: the service sets
    them aside or cancels them as the search's end requires."""

    _live_attributes = ("_should_stop",)

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self._should_stop = should_stop

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._should_stop()

"""Ray Tune ``Searcher`` that asks a supernas ``Strategy`` for each new trial's config.

Trial numbers are dense per search and continue after a resume; the strategy sees the full
history (stored trials plus those finished in this run) and the configs still pending. What the
strategy predicted for each config is handed to ``on_suggest`` to be stored with the trial.

The searcher also enforces the search's live budget (``SearchControl.budget()``, which the user may
change while it runs): no trial beyond ``max_trials``, no more than ``max_parallel`` at once (trials
a scheduler paused do not count: they hold no worker), and none at all once a pause or stop was
requested, or once the scheduler's step budget is spent. A model-based scheduler (``proposer``) may
pick the new config instead of the strategy. Trials set aside when an earlier run of the search
stopped (``resumed``) are handed out first, under their own numbers, to go on from their checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from supernas.records import Observation
from supernas.states import TrialState
from surrogates.schedulers.base import FidelityScheduler
from surrogates.strategy import Strategy, Suggestion
from workers.control import SearchControl
from workers.live_hooks import DropsLiveHooksWhenPickled
from workers.trial_checkpoints import ResumedTrial
from workers.trial_outcome import observed_metrics, observed_state

OnSuggest = Callable[[int, dict[str, Any], dict[str, Any]], None]


class StrategySearcher(DropsLiveHooksWhenPickled, Searcher):
    _live_attributes = ("_on_suggest", "_control")

    def __init__(
        self,
        strategy: Strategy,
        history: list[Observation],
        first_number: int,
        max_fidelity: int,
        metric: str,
        mode: str,
        on_suggest: OnSuggest,
        control: SearchControl,
        spent_before: int = 0,
        resumed: Sequence[ResumedTrial] = (),
        proposer: FidelityScheduler | None = None,
        paused_trial_ids: Callable[[], set[str]] | None = None,
        scheduler_done: Callable[[], bool] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._strategy = strategy
        self._history = list(history)
        self._next_number = first_number
        self._max_fidelity = max_fidelity
        self._on_suggest = on_suggest
        self._control = control
        self._spent_before = spent_before  # trials of earlier runs that used budget
        self._resumed = list(resumed)  # handed out before any new trial
        self._created = 0
        self.failed = 0  # trials of this run that raised an error
        self._pending: dict[str, tuple[int, dict[str, Any]]] = {}
        self._proposer = proposer
        self._paused_trial_ids = paused_trial_ids or set
        self._scheduler_done = scheduler_done or (lambda: False)  # its step budget is spent
        self._seed = seed

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial's config; None while ``max_parallel`` trials run (Tune asks again later);
        ``Searcher.FINISHED`` once the trial budget is used or a pause or stop was requested (Tune
        then lets the running trials finish and ends)."""
        budget = self._control.budget()
        if self._control.winding_down() or self._spent_before + self._created >= budget.max_trials:
            return Searcher.FINISHED
        if self._scheduler_done():
            return Searcher.FINISHED
        if len(self._pending.keys() - self._paused_trial_ids()) >= budget.max_parallel:
            return None
        self._created += 1
        if self._resumed:
            return self._resume(trial_id, self._resumed.pop(0))
        number = self._next_number
        self._next_number += 1
        config, record = self._suggest(number)
        self._pending[trial_id] = (number, config)
        self._on_suggest(number, config, record)
        return {"number": number, "params": config}

    def _resume(self, trial_id: str, trial: ResumedTrial) -> dict[str, Any]:
        """A trial set aside when an earlier run stopped, under its own number, from its checkpoint
        (the scheduler records the resume when the trial starts), or from the beginning if it has
        none (it never reported)."""
        self._pending[trial_id] = (trial.number, trial.config)
        if trial.checkpoint is None:
            return {"number": trial.number, "params": trial.config}
        resume = {"checkpoint": trial.checkpoint, "fidelity": trial.fidelity, "last_step": trial.last_step}
        return {"number": trial.number, "params": trial.config, "resume": resume}

    def _suggest(self, number: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The config of trial ``number`` and what was predicted for it: from the scheduler's model
        when it has one (and enough data), else from the strategy."""
        if self._proposer is not None:
            proposal = self._proposer.propose(np.random.default_rng([self._seed, number]))
            if proposal is not None:
                config, info = proposal
                predicted = info.get("predicted") or {}
                suggestion = Suggestion(config, acquisition_value=info.get("acquisition"))
                record = suggestion.record(self._proposer.name)
                return config, record | {
                    "proposed_by": info.get("proposed_by"),
                    "scheduler_prediction": predicted,
                }
        pending = [config for _, config in self._pending.values()]
        suggestion = self._strategy.ask(self._history, pending, 1)[0]
        return suggestion.config, suggestion.record(self._strategy.name)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        number, config = self._pending.pop(trial_id, (None, None))
        if number is None or config is None:
            return
        if error or not result:
            self.failed += int(error)
            self._history.append(Observation(number, config, TrialState.FAILED, {}))
            return
        state = observed_state(result, self._max_fidelity)
        fidelity = float(result.get("fidelity", 0))
        self._history.append(Observation(number, config, state, observed_metrics(result), fidelity))

"""The dispatcher: claims queued searches and stand-alone supernets and runs each on Ray in a thread
of the service process.

The service is the only writer to the database: drivers report through ``StorageListener``.
A search or supernet interrupted by a shutdown is requeued and resumes from what storage holds; a
search's trials that were running or paused go on from their last checkpoints, and one whose last
report was stored before Tune completed it ends from that report.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from search_spaces.spec import Budget, SearchSpec
from service.settings import Settings
from service.storage import Storage
from supernas.records import Observation, SearchRecord, SupernetRecord
from supernas.states import SearchState, SupernetState, TrialState
from workers.driver import SearchJob, SearchOutcome, SupernetStateReader, run_search, supernet_dir
from workers.export import MANIFEST_FILE
from workers.supernet_job import run_supernet_training
from workers.trial import trial_dir
from workers.trial_checkpoints import resumable_trials
from workers.trial_outcome import ended_by_last_report

log = logging.getLogger(__name__)

# Trials that used up budget: a resumed search does not run them again.
_BUDGET_STATES = (TrialState.SUCCEEDED, TrialState.PRUNED, TrialState.FAILED, TrialState.INFEASIBLE)
_CANCEL_POLL_S = 2.0


class StorageListener:
    """Persists what a driver reports; artifact paths are stored relative to the artifact root."""

    def __init__(
        self, storage: Storage, search_id: str, artifacts_root: Path, supernet_id: str | None = None
    ) -> None:
        self._storage = storage
        self._search_id = search_id
        self._root = artifacts_root
        self._supernet_id = supernet_id

    def progress(self, message: str) -> None:
        self._storage.set_search_progress(self._search_id, message)

    def supernet_progress(self, message: str) -> None:
        self.progress(message)
        if self._supernet_id is not None and self._owns_supernet():
            self._storage.set_supernet_state(self._supernet_id, SupernetState.TRAINING, message)

    def supernet_finished(self, state: str, reason: str, summary: dict[str, Any] | None) -> None:
        if self._supernet_id is None or not self._owns_supernet():
            return
        # a canceled (or interrupted) training resumes from its checkpoint if the search runs again
        self._storage.set_supernet_state(self._supernet_id, SupernetState(state), reason, summary)

    def _owns_supernet(self) -> bool:
        assert self._supernet_id is not None
        return self._storage.get_supernet(self._supernet_id).search_id == self._search_id

    def trial_created(self, number: int, config: dict[str, Any], suggestion: dict[str, Any]) -> None:
        self._storage.create_trial(self._search_id, number, config, suggestion)

    def trial_started(self, number: int) -> None:
        self._storage.mark_trial_running(self._search_id, number)

    def trial_reported(self, number: int, step: int, fidelity: float, metrics: dict[str, Any]) -> None:
        self._storage.record_trial_report(self._search_id, number, step, fidelity, metrics)

    def trial_retried(self, number: int, attempt: int, reason: str) -> None:
        self._storage.record_trial_retry(self._search_id, number, reason, attempt)

    def trial_decided(self, number: int, decision: dict[str, Any]) -> None:
        self._storage.record_trial_decision(self._search_id, number, decision)

    def trial_finished(
        self,
        number: int,
        state: TrialState,
        reason: str | None,
        artifact_dir: str | None,
        metrics: dict[str, Any] | None,
    ) -> None:
        relative = str(Path(artifact_dir).resolve().relative_to(self._root)) if artifact_dir else None
        self._storage.finish_trial(self._search_id, number, state, reason, relative, metrics)


class SupernetStorageListener:
    """Persists the progress of a stand-alone supernet's training."""

    def __init__(self, storage: Storage, supernet_id: str) -> None:
        self._storage, self._supernet_id = storage, supernet_id

    def supernet_progress(self, message: str) -> None:
        self._storage.set_supernet_state(self._supernet_id, SupernetState.TRAINING, message)


class LiveControl:
    """A running search's ``SearchControl``, read from the database (at most every 2 s, and at the
    next call after a change made through this process): a cancel (also through this process, or on
    shutdown), a requested pause or stop, and the current budget."""

    def __init__(self, storage: Storage, record: SearchRecord, shutdown: threading.Event) -> None:
        self.event = threading.Event()
        self._storage, self.search_id, self._shutdown = storage, record.id, shutdown
        self._checked_at = time.monotonic()
        self._record = record

    def refresh(self) -> None:
        """Read the record again at the next call, not up to 2 s later."""
        self._checked_at = -math.inf

    def _poll(self) -> SearchRecord:
        if time.monotonic() - self._checked_at > _CANCEL_POLL_S:
            self._checked_at = time.monotonic()
            self._record = self._storage.get_search(self.search_id)
            if self._record.cancel_requested:
                self.event.set()
        return self._record

    def canceled(self) -> bool:
        if self.event.is_set() or self._shutdown.is_set():
            return True
        self._poll()
        return self.event.is_set()

    def winding_down(self) -> bool:
        return self._poll().requested_action is not None

    def pausing(self) -> bool:
        return self._poll().requested_action == "pause"

    def budget(self) -> Budget:
        return Budget.model_validate(self._poll().spec["budget"])


class Dispatcher:
    def __init__(self, storage: Storage, settings: Settings) -> None:
        self._storage = storage
        self._settings = settings
        self._artifacts_root = settings.resolved_artifacts_dir
        self._shutdown = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, tuple[threading.Thread, LiveControl | None]] = {}
        self._loop: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = threading.Thread(target=self._run_loop, name="supernas-dispatcher", daemon=True)
        self._loop.start()

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, search_id: str) -> None:
        control = self._live_control(search_id)
        if control is not None:
            control.event.set()

    def changed(self, search_id: str) -> None:
        """A search's record changed through this process (pause, stop, budget): a running search
        reads it at its next decision instead of within 2 s, and the dispatcher wakes."""
        control = self._live_control(search_id)
        if control is not None:
            control.refresh()
        self.wake()

    def wait_until_done(self, search_id: str, timeout_s: float) -> bool:
        """Wait for this process's run of the search of that id to wind down (its state may read ended
        a moment before its thread returns); False if it still runs after ``timeout_s``."""
        with self._lock:
            active = self._active.get(search_id)
        if active is not None:
            active[0].join(timeout_s)
            return not active[0].is_alive()
        return True

    def _live_control(self, search_id: str) -> LiveControl | None:
        with self._lock:
            active = self._active.get(search_id)
        return None if active is None else active[1]

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop claiming, stop running searches (they are requeued) and wait for their threads."""
        self._shutdown.set()
        self._wake.set()
        with self._lock:
            threads = [t for t, _ in self._active.values()]
        for thread in threads:
            thread.join(timeout_s)
        if self._loop is not None:
            self._loop.join(timeout_s)

    def active_searches(self) -> list[str]:
        with self._lock:
            return list(self._active)

    # --- internals ---------------------------------------------------------------------------

    def _run_loop(self) -> None:
        """Claim queued searches while there is room; Ray must already be initialised."""
        while not self._shutdown.is_set():
            with self._lock:
                has_room = len(self._active) < self._settings.max_concurrent_searches
            record = self._storage.claim_next_queued_search() if has_room else None
            if record is not None:
                self._launch(record)
                continue
            supernet = self._storage.claim_next_queued_supernet() if has_room else None
            if supernet is not None:
                self._launch_supernet(supernet)
                continue
            self._wake.wait(self._settings.dispatcher_poll_s)
            self._wake.clear()

    def _launch(self, record: SearchRecord) -> None:
        check = LiveControl(self._storage, record, self._shutdown)
        thread = threading.Thread(
            target=self._run_search, args=(record, check), name=f"search-{record.id[:8]}"
        )
        with self._lock:
            self._active[record.id] = (thread, check)
        thread.start()

    def _launch_supernet(self, record: SupernetRecord) -> None:
        thread = threading.Thread(
            target=self._train_supernet, args=(record,), name=f"supernet-{record.id[3:11]}"
        )
        with self._lock:
            self._active[record.id] = (thread, None)
        thread.start()

    def _train_supernet(self, record: SupernetRecord) -> None:
        log.info("training supernet %s (attempt %d)", record.id, record.attempt)
        listener = SupernetStorageListener(self._storage, record.id)
        try:
            outcome = run_supernet_training(
                record.spec,
                supernet_dir(self._artifacts_root, record.id),
                str(self._artifacts_root),
                listener,
                self._shutdown.is_set,
                self._settings.supernet_training_cpus,
            )
            if outcome.state is SupernetState.CANCELED and self._shutdown.is_set():
                self._storage.set_supernet_state(
                    record.id, SupernetState.QUEUED, "interrupted by service shutdown"
                )
            else:
                self._storage.set_supernet_state(record.id, outcome.state, outcome.reason, outcome.summary)
        except Exception as exc:
            log.exception("supernet %s crashed", record.id)
            self._storage.set_supernet_state(record.id, SupernetState.FAILED, f"training error: {exc}"[:2000])
        finally:
            with self._lock:
                self._active.pop(record.id, None)
            self._wake.set()

    def end_trials_by_last_report(self, search: SearchRecord) -> None:
        """End each unfinished trial whose stored last report was its last (``ended_by_last_report``):
        the search stopped after that report was stored but before Tune completed the trial."""
        spec = SearchSpec.model_validate(search.spec)
        listener = StorageListener(self._storage, search.id, self._artifacts_root, None)
        for trial in self._storage.all_trials(search.id, with_reports=True, unfinished_only=True):
            model_dir = trial_dir(str(self._artifacts_root), search.id, trial.number)
            ended = ended_by_last_report(spec, trial.reports, model_dir, MANIFEST_FILE)
            if ended is not None:
                model = str(ended.model_dir) if ended.model_dir is not None else None
                listener.trial_finished(trial.number, ended.state, ended.reason, model, ended.metrics)

    def _job(self, record: SearchRecord) -> SearchJob:
        self.end_trials_by_last_report(record)
        trials = self._storage.all_trials(record.id, with_reports=True)
        set_aside = [t for t in trials if t.state is TrialState.PAUSED]
        resumed, missing = resumable_trials(self._artifacts_root, record.id, record.attempt, set_aside)
        for number, reason in missing.items():
            self._storage.finish_trial(record.id, number, TrialState.LOST, reason)
        if missing:
            trials = self._storage.all_trials(record.id, with_reports=True)
        finished = [t for t in trials if t.state.is_terminal]
        history = [Observation(t.number, t.config, t.state, t.metrics, t.fidelity) for t in finished]
        curves = [(t.number, t.config, [(r.fidelity, r.metrics) for r in t.reports]) for t in finished]
        spent = sum(1 for t in trials if t.state in _BUDGET_STATES)
        failed = sum(1 for t in trials if t.state is TrialState.FAILED)
        started = record.started_at or datetime.now(UTC)
        return SearchJob(
            search_id=record.id,
            attempt=record.attempt,
            spec=record.spec,
            artifacts_root=str(self._artifacts_root),
            history=history,
            first_number=self._storage.next_trial_number(record.id),
            spent_before=spent,
            failed_before=failed,
            elapsed_s=(datetime.now(UTC) - started).total_seconds(),
            supernet_id=record.supernet_id,
            supernet_trains_elsewhere=self._trains_elsewhere(record),
            supernet_training_cpus=self._settings.supernet_training_cpus,
            curves=curves,
            resumed=resumed,
        )

    def _trains_elsewhere(self, record: SearchRecord) -> bool:
        """The search starts on the early epochs of a supernet a stand-alone job or another search
        is training (it was claimed while that supernet trained)."""
        if record.supernet_id is None or not record.starts_on_training_supernet:
            return False
        return self._storage.get_supernet(record.supernet_id).state is not SupernetState.READY

    def _supernet_state(self, supernet_id: str | None) -> SupernetStateReader:
        """A reader of the stored state of ``supernet_id``, at most one query per ``_CANCEL_POLL_S``."""
        last: list[Any] = [-math.inf, None]

        def read() -> tuple[SupernetState, str | None]:
            assert supernet_id is not None
            if time.monotonic() - last[0] > _CANCEL_POLL_S:
                supernet = self._storage.get_supernet(supernet_id)
                last[:] = [time.monotonic(), (supernet.state, supernet.state_reason)]
            return last[1]

        return read

    def _run_search(self, record: SearchRecord, check: LiveControl) -> None:
        log.info("running search %s (attempt %d)", record.id, record.attempt)
        listener = StorageListener(self._storage, record.id, self._artifacts_root, record.supernet_id)
        try:
            unusable = self._unusable_supernet(record)
            if unusable is not None:
                outcome = SearchOutcome(SearchState.FAILED, unusable)
            else:
                supernet_state = self._supernet_state(record.supernet_id)
                outcome = run_search(self._job(record), listener, check, supernet_state)
        except Exception as exc:
            log.exception("search %s crashed", record.id)
            outcome = SearchOutcome(SearchState.FAILED, f"search driver error: {exc}"[:2000])
        try:
            self._finish(record.id, outcome, user_canceled=check.event.is_set())
        finally:
            with self._lock:
                self._active.pop(record.id, None)
            self._wake.set()

    def _unusable_supernet(self, record: SearchRecord) -> str | None:
        """Why the search cannot run: the supernet it names, trained elsewhere, ended without being
        ready (the claim waits while it is queued or training). None if it can run."""
        if record.supernet_id is None:
            return None
        supernet = self._storage.get_supernet(record.supernet_id)
        if supernet.search_id == record.id or supernet.state is SupernetState.READY:
            return None
        untrained = supernet.state in (SupernetState.QUEUED, SupernetState.TRAINING)
        early = record.starts_on_training_supernet
        if untrained and supernet.search_id:
            owner = self._storage.get_search(supernet.search_id)
            if early and not owner.state.is_terminal:  # claimed while it trained: the driver follows it
                return None
            return f"supernet {supernet.id} will not be trained: its search {owner.id} is {owner.state.value}"
        if untrained and early:  # a stand-alone training: the driver follows it
            return None
        return f"supernet {supernet.id} is {supernet.state.value}: {supernet.state_reason}"[:2000]

    def _keep_own_supernet_queued(self, search: SearchRecord, reason: str) -> None:
        """A search paused or requeued during its supernet's training leaves the supernet queued, not
        canceled: the training resumes from its checkpoint when the search runs again, and searches
        naming the supernet keep waiting for it."""
        if search.supernet_id is None:
            return
        supernet = self._storage.get_supernet(search.supernet_id)
        if supernet.search_id == search.id and supernet.state is SupernetState.CANCELED:
            self._storage.set_supernet_state(supernet.id, SupernetState.QUEUED, reason)

    def _finish(self, search_id: str, outcome: SearchOutcome, user_canceled: bool) -> None:
        search = self._storage.get_search(search_id)
        self.end_trials_by_last_report(search)
        action = search.requested_action
        if self._shutdown.is_set() and not user_canceled:
            if action is None:
                self._storage.set_aside_unfinished_trials(search_id, "interrupted by service shutdown")
                self._keep_own_supernet_queued(
                    search, f"interrupted by service shutdown; trains when search {search_id} runs again"
                )
                self._storage.set_search_state(
                    search_id, SearchState.QUEUED, "interrupted by service shutdown"
                )
                return
            outcome = SearchOutcome(SearchState.SUCCEEDED, "interrupted by service shutdown")
        if outcome.state is SearchState.QUEUED and not user_canceled:  # its supernet is queued again
            if action is None:  # its trials resume from their checkpoints when it is claimed again
                self._storage.set_aside_unfinished_trials(search_id, outcome.reason or "queued again")
                self._storage.set_search_state(search_id, SearchState.QUEUED, outcome.reason)
                return
            outcome = SearchOutcome(SearchState.SUCCEEDED, outcome.reason)
        if user_canceled:
            outcome = SearchOutcome(SearchState.CANCELED, "canceled by user")
        elif outcome.state is SearchState.SUCCEEDED and action == "pause":
            outcome = SearchOutcome(SearchState.PAUSED, "paused by user")
        elif outcome.state is SearchState.SUCCEEDED and action == "stop":
            outcome = SearchOutcome(SearchState.SUCCEEDED, "stopped by user")
        if outcome.state is SearchState.PAUSED:
            self._storage.set_aside_unfinished_trials(search_id, "paused with the search")
            self._keep_own_supernet_queued(search, f"paused with search {search_id}; trains when it resumes")
        else:
            self._storage.cancel_unfinished_trials(search_id, outcome.reason or outcome.state.value)
        if outcome.state is SearchState.SUCCEEDED:
            outcome = SearchOutcome(
                outcome.state, with_feasibility(outcome.reason, self._storage.trial_counts(search_id))
            )
        self._storage.set_search_state(search_id, outcome.state, outcome.reason)
        log.info("search %s ended %s: %s", search_id, outcome.state.value, outcome.reason)


def with_feasibility(reason: str | None, counts: dict[str, int]) -> str | None:
    """``reason``, plus a warning when trials were measured but none met the constraints."""
    feasible = counts.get(TrialState.SUCCEEDED.value, 0) + counts.get(TrialState.PRUNED.value, 0)
    if feasible or not counts.get(TrialState.INFEASIBLE.value, 0):
        return reason
    warning = f"no trial met the constraints ({counts[TrialState.INFEASIBLE.value]} infeasible)"
    return f"{reason}; {warning}" if reason else warning

"""Runs one search on Ray: train the supernet once, then evaluate sub-networks through Ray Tune.

With ``fidelity.supernet_epochs`` the trials start as soon as the first of those epochs is trained
and run while the supernet trains on, in a Ray task that leaves them a CPU (``_TrainingAlongside``),
or elsewhere: stand-alone, or for another search (``_TrainingElsewhere``).

Called by the service's dispatcher in a thread of the service process; everything it learns goes
to the ``SearchListener`` (the service), never to the database directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from search_spaces.spec import MAX_PARALLEL_LIMIT, SearchSpec
from supernas.objectives import Direction
from supernas.records import Observation
from supernas.states import SearchState, SupernetState
from surrogates.registry import make_strategy
from surrogates.schedulers.base import SchedulerSettings, SchedulingProblem
from surrogates.schedulers.registry import make_scheduler
from surrogates.strategy import SearchProblem
from workers.control import SearchControl
from workers.fidelity_scheduler import BUDGET_SPENT, StoredCurve, TuneFidelityScheduler
from workers.listener import SearchListener
from workers.pausing_scheduler import OnDecision, PausingScheduler
from workers.ray_runtime import joins_a_cluster
from workers.searcher import StrategySearcher
from workers.supernet_job import SupernetOutcome, SupernetRun
from workers.supernet_training import SupernetPaths
from workers.trial import evaluate_subnet
from workers.trial_checkpoints import ResumedTrial, run_name, runs_root
from workers.tune_callbacks import ListenerCallback, RunStopper

log = logging.getLogger(__name__)

SupernetStateReader = Callable[[], tuple[SupernetState, str | None]]  # a stored supernet's state, reason
_ELSEWHERE_POLL_S = 0.5


def supernet_dir(artifacts_root: str | Path, supernet_id: str) -> Path:
    return Path(artifacts_root) / "supernets" / supernet_id


@dataclass(frozen=True)
class SearchJob:
    """Everything a driver needs to run (or resume) a search."""

    search_id: str
    attempt: int
    spec: dict[str, Any]
    artifacts_root: str
    history: list[Observation] = field(default_factory=list)
    first_number: int = 0
    spent_before: int = 0  # trials of earlier runs that used budget
    failed_before: int = 0  # trials of earlier runs that failed
    elapsed_s: float = 0.0
    supernet_id: str | None = None
    # fidelity.supernet_epochs on a supernet a stand-alone job or another search is training
    supernet_trains_elsewhere: bool = False
    # Ray CPUs and torch threads of the search's own supernet training (Settings.supernet_training_cpus)
    supernet_training_cpus: int = 2
    curves: list[StoredCurve] = field(default_factory=list)  # reports of the finished trials
    resumed: list[ResumedTrial] = field(default_factory=list)  # set aside when an earlier run stopped

    @property
    def supernet_dir(self) -> Path:
        if self.supernet_id is None:  # searches created before supernets were a resource
            return Path(self.artifacts_root) / "searches" / self.search_id / "supernet"
        return supernet_dir(self.artifacts_root, self.supernet_id)


@dataclass(frozen=True)
class SearchOutcome:
    state: SearchState
    reason: str | None


def _scheduler(spec: SearchSpec, on_decision: OnDecision, control: SearchControl) -> PausingScheduler:
    """Tune's FIFO scheduler, or a supernas scheduler (``surrogates.schedulers``) behind Tune's
    interface; either honours a requested pause or stop (``PausingScheduler``)."""
    steps = spec.max_fidelity + 1  # reports of a full trial: one per fidelity step (see Fidelity)
    if spec.scheduler.type == "fifo" or steps == 1:
        return PausingScheduler(on_decision, control, spec.max_fidelity)
    problem = SchedulingProblem(
        metrics=tuple(o.metric.value for o in spec.objectives),
        directions=tuple(o.direction for o in spec.objectives),
        max_fidelity=spec.max_fidelity,
        min_fidelity=0,
        space=spec.param_space(),
    )
    options = spec.scheduler
    settings = SchedulerSettings(
        grace_period=options.grace_period,
        reduction_factor=options.reduction_factor,
        brackets=options.brackets,
        step=options.step,
        candidates=options.candidates,
    )
    scheduler = make_scheduler(options.type, problem, settings, spec.seed)
    max_steps = options.step_budget(spec.budget.max_trials, steps)
    return TuneFidelityScheduler(scheduler, on_decision, max_steps, control)


def _training_ended(outcome: SupernetOutcome, listener: SearchListener) -> SearchOutcome | None:
    """Record the supernet's outcome; the search's outcome if it cannot go on without the supernet."""
    listener.supernet_finished(outcome.state.value, outcome.reason, outcome.summary)
    if outcome.state is SupernetState.CANCELED:
        return SearchOutcome(SearchState.CANCELED, outcome.reason)
    if outcome.state is not SupernetState.READY:
        return SearchOutcome(SearchState.FAILED, outcome.reason)
    listener.progress(f"{outcome.reason}; evaluating sub-networks")
    return None


class _TrainingAlongside:
    """The search's supernet training, followed in a thread while trials run on its early epochs."""

    def __init__(self, run: SupernetRun, listener: SearchListener, is_canceled: Callable[[], bool]) -> None:
        self.ended: SearchOutcome | None = None  # set once the training ended without a ready supernet
        self._thread = threading.Thread(
            target=self._follow, args=(run, listener, is_canceled), name="supernet-training", daemon=True
        )
        self._thread.start()

    def _follow(self, run: SupernetRun, listener: SearchListener, is_canceled: Callable[[], bool]) -> None:
        try:
            outcome = run.follow(is_canceled)
            assert outcome is not None  # no ``until``: followed to the end
            self.ended = _training_ended(outcome, listener)
        except Exception as exc:  # following it failed (Ray, the database): the trials must not wait
            log.exception("following the supernet training failed")
            self.ended = SearchOutcome(SearchState.FAILED, f"supernet training could not be followed: {exc}")

    def failure(self) -> str | None:
        """Why the search cannot go on (the training failed or was canceled); None while it can."""
        return self.ended.reason if self.ended is not None else None

    def join(self) -> SearchOutcome | None:
        """Wait for the training to end; the search's outcome if the supernet is not ready."""
        self._thread.join()
        return self.ended


class _TrainingElsewhere:
    """A supernet that a stand-alone job or another search is training, followed through its stored
    state (``supernet_state``) while this search's trials run on its early epochs; each of their
    steps waits until its epoch's weights exist (``workers.trial``)."""

    def __init__(self, supernet_id: str, supernet_state: SupernetStateReader) -> None:
        self._supernet_id = supernet_id
        self._supernet_state = supernet_state

    def outcome(self) -> SearchOutcome | None:
        """None while the supernet trains or is ready; else how this search ends: queued again while
        the supernet is (its search paused, or the service restarted), failed if it will not train."""
        state, reason = self._supernet_state()
        if state in (SupernetState.TRAINING, SupernetState.READY):
            return None
        if state is SupernetState.QUEUED:
            return SearchOutcome(
                SearchState.QUEUED, f"waiting for supernet {self._supernet_id} to train again: {reason}"
            )
        return SearchOutcome(SearchState.FAILED, f"supernet {self._supernet_id} is {state.value}: {reason}")

    def failure(self) -> str | None:
        outcome = self.outcome()
        return outcome.reason if outcome is not None else None

    def join(self) -> SearchOutcome | None:
        """The trials have ended: the search's outcome if the supernet stopped training under them."""
        return self.outcome()


def _follow_elsewhere(
    job: SearchJob,
    first_epoch: int,
    listener: SearchListener,
    is_canceled: Callable[[], bool],
    supernet_state: SupernetStateReader,
) -> tuple[SearchOutcome | None, _TrainingElsewhere | None]:
    """Wait until the supernet trained elsewhere has its ``first_epoch``; then its follower."""
    assert job.supernet_id is not None
    following = _TrainingElsewhere(job.supernet_id, supernet_state)
    paths = SupernetPaths(job.supernet_dir)
    listener.progress(f"waiting for epoch {first_epoch} of supernet {job.supernet_id}")
    while not paths.weights_ready(first_epoch):
        if (outcome := following.outcome()) is not None:
            return outcome, None
        if is_canceled():
            canceled = f"canceled while supernet {job.supernet_id} trained"
            return SearchOutcome(SearchState.CANCELED, canceled), None
        time.sleep(_ELSEWHERE_POLL_S)
    listener.progress(
        f"evaluating sub-networks from epoch {first_epoch} of supernet {job.supernet_id} while it trains"
    )
    return None, following


def _train(
    job: SearchJob,
    listener: SearchListener,
    is_canceled: Callable[[], bool],
    supernet_state: SupernetStateReader | None = None,
) -> tuple[SearchOutcome | None, _TrainingAlongside | _TrainingElsewhere | None]:
    """Train (or reuse) the search's supernet on Ray. Returns an outcome if the search ends here; or,
    with ``fidelity.supernet_epochs``, the training that goes on once their first epoch is trained
    (here, or elsewhere: ``job.supernet_trains_elsewhere``, followed through ``supernet_state``)."""
    spec = SearchSpec.model_validate(job.spec)
    early = spec.fidelity.supernet_epochs
    if job.supernet_trains_elsewhere:
        if supernet_state is None:
            raise ValueError("a search on a supernet trained elsewhere needs its supernet_state reader")
        return _follow_elsewhere(job, early[0], listener, is_canceled, supernet_state)
    run = SupernetRun(
        spec.supernet_spec().model_dump(mode="json"),
        job.supernet_dir,
        job.artifacts_root,
        listener,
        cpus=job.supernet_training_cpus,
        leave_cpu=bool(early),
    )
    outcome = run.follow(is_canceled, until=(lambda: run.paths.weights_ready(early[0])) if early else None)
    if outcome is None:  # the first early epoch is trained: trials start alongside the training
        listener.progress(f"training supernet; evaluating sub-networks from epoch {early[0]} on")
        return None, _TrainingAlongside(run, listener, is_canceled)
    return _training_ended(outcome, listener), None


def run_search(
    job: SearchJob,
    listener: SearchListener,
    control: SearchControl,
    supernet_state: SupernetStateReader | None = None,
) -> SearchOutcome:
    """Run the search until its budget is spent, it is canceled, too many trials failed, or (a pause or
    stop was requested) no new trial may start and the running ones have finished. The budget is
    read from ``control`` throughout, so changes made while the search runs take effect.
    ``supernet_state`` reads the stored state of a supernet trained elsewhere (see ``SearchJob``)."""
    spec = SearchSpec.model_validate(job.spec)
    started = time.monotonic()
    ended, alongside = _train(
        job, listener, lambda: control.canceled() or control.winding_down(), supernet_state
    )

    def training_outcome(ended: SearchOutcome) -> SearchOutcome:
        if ended.state is SearchState.CANCELED and not control.canceled() and control.winding_down():
            return SearchOutcome(SearchState.SUCCEEDED, "wound down during supernet training")
        return ended

    if ended is not None:
        return training_outcome(ended)
    outcome = _evaluate(job, spec, listener, control, started, alongside)
    # trials can end (all stopped early) before the supernet they started on is trained: it finishes
    ended = alongside.join() if alongside is not None else None
    return outcome if ended is None else training_outcome(ended)


def _evaluate(
    job: SearchJob,
    spec: SearchSpec,
    listener: SearchListener,
    control: SearchControl,
    started: float,
    alongside: _TrainingAlongside | _TrainingElsewhere | None,
) -> SearchOutcome:
    """Run the trials through Ray Tune until the budget is spent or the search must stop."""
    if job.spent_before >= control.budget().max_trials:
        return SearchOutcome(SearchState.SUCCEEDED, "trial budget already spent")

    def seconds_left() -> float | None:
        limit = control.budget().max_duration_s
        return None if limit is None else limit - job.elapsed_s - (time.monotonic() - started)

    if (left := seconds_left()) is not None and left <= 0:
        return SearchOutcome(SearchState.SUCCEEDED, "max_duration_s reached before any trial could run")

    searcher: StrategySearcher | None = None

    def too_many_failed() -> str | None:
        limit = control.budget().max_failed
        failed = job.failed_before + (searcher.failed if searcher is not None else 0)
        return (
            f"{failed} trials failed (max_failed {limit})" if limit is not None and failed >= limit else None
        )

    def stop_reason() -> str | None:
        if control.canceled():
            return "search canceled"
        if alongside is not None and (failure := alongside.failure()) is not None:
            return failure  # trials waiting for the supernet's later epochs would wait for ever
        if (left := seconds_left()) is not None and left <= 0:
            return "max_duration_s reached"
        return too_many_failed()

    first = spec.objectives[0]
    metric, mode = first.metric.value, "max" if first.direction == Direction.MAXIMIZE else "min"
    problem = SearchProblem(
        spec.param_space(), tuple(spec.objectives), tuple(spec.constraints), spec.budget.max_trials
    )
    scheduler = _scheduler(spec, listener.trial_decided, control)
    fidelity_scheduler = scheduler if isinstance(scheduler, TuneFidelityScheduler) else None
    if fidelity_scheduler is not None:
        fidelity_scheduler.replay(job.curves, job.resumed)
    searcher = StrategySearcher(
        make_strategy(spec.strategy, problem, spec.seed),
        history=job.history,
        first_number=job.first_number,
        max_fidelity=spec.max_fidelity,
        metric=metric,
        mode=mode,
        on_suggest=listener.trial_created,
        control=control,
        spent_before=job.spent_before,
        resumed=job.resumed,
        proposer=fidelity_scheduler.scheduler if fidelity_scheduler is not None else None,
        paused_trial_ids=fidelity_scheduler.paused_trial_ids if fidelity_scheduler is not None else None,
        scheduler_done=fidelity_scheduler.budget_spent if fidelity_scheduler is not None else None,
        seed=spec.seed,
    )
    job_params = {
        "spec": job.spec,
        "search_id": job.search_id,
        "artifacts_root": job.artifacts_root,
        "supernet_dir": str(job.supernet_dir),
        "supernet_id": job.supernet_id,
    }
    trainable = tune.with_resources(tune.with_parameters(evaluate_subnet, job=job_params), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,  # the searcher ends the run: the budget may change while it runs
            # the searcher enforces the live max_parallel; this bound only lets Tune keep as many
            # trials pending (Tune's default with a custom searcher is one at a time)
            max_concurrent_trials=MAX_PARALLEL_LIMIT,
            # on the embedded Ray, a finished trial's actor runs the next one: no new process, torch
            # import or task load per trial (each trial seeds its own generators, so results do not
            # depend on the actor). Not on a cluster: there Ray Tune 2.60 then ran the trials one at
            # a time on one node (tests/e2e/test_ray_cluster.py)
            reuse_actors=not joins_a_cluster(),
        ),
        run_config=tune.RunConfig(
            name=run_name(job.search_id, job.attempt),
            storage_path=str(runs_root(job.artifacts_root)),
            # a pause or stop that left only paused trials ends the run: they stay paused
            stop=RunStopper(lambda: stop_reason() is not None or scheduler.wound_down),
            callbacks=[ListenerCallback(listener, spec.max_fidelity, stop_reason)],
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),  # a retry needs only the last
            verbose=0,
        ),
    )
    tuner.fit()
    if control.canceled():
        return SearchOutcome(SearchState.CANCELED, "canceled by user")
    if (failed := too_many_failed()) is not None:
        return SearchOutcome(SearchState.FAILED, failed)
    if control.winding_down():
        return SearchOutcome(SearchState.SUCCEEDED, "wound down: running trials finished")
    if (reason := stop_reason()) is not None:
        return SearchOutcome(SearchState.SUCCEEDED, reason)
    if fidelity_scheduler is not None and fidelity_scheduler.budget_spent():
        return SearchOutcome(SearchState.SUCCEEDED, f"{BUDGET_SPENT} ({fidelity_scheduler.steps} reports)")
    return SearchOutcome(SearchState.SUCCEEDED, "trial budget spent")

"""Runs one search on Ray: train the supernet once, then evaluate sub-networks through Ray Tune.

Called by the service's dispatcher in a thread of the service process; everything it learns goes
to the ``SearchListener`` (the service), never to the database directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from search_spaces.spec import SearchSpec
from supernas.objectives import Direction
from supernas.records import Observation
from supernas.states import SearchState, SupernetState
from surrogates.registry import make_strategy
from surrogates.strategy import SearchProblem
from workers.listener import SearchListener
from workers.searcher import StrategySearcher
from workers.supernet_job import run_supernet_training
from workers.trial import evaluate_subnet
from workers.tune_callbacks import CancelStopper, ListenerCallback

log = logging.getLogger(__name__)


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
    trials_to_run: int = 0
    elapsed_s: float = 0.0
    supernet_id: str | None = None

    @property
    def supernet_dir(self) -> Path:
        if self.supernet_id is None:  # searches created before supernets were a resource
            return Path(self.artifacts_root) / "searches" / self.search_id / "supernet"
        return supernet_dir(self.artifacts_root, self.supernet_id)


@dataclass(frozen=True)
class SearchOutcome:
    state: SearchState
    reason: str | None


def _scheduler(spec: SearchSpec) -> TrialScheduler:
    max_t = spec.max_fidelity + 1  # reports per trial: inherited weights, then each fine-tuning epoch
    if spec.scheduler.type == "fifo" or max_t == 1:
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_t,
        grace_period=min(spec.scheduler.grace_period, max_t),
        reduction_factor=spec.scheduler.reduction_factor,
    )


def _train(job: SearchJob, listener: SearchListener, is_canceled: Callable[[], bool]) -> SearchOutcome | None:
    """Train (or reuse) the search's supernet on Ray; returns an outcome only if the search ends here."""
    spec = SearchSpec.model_validate(job.spec)
    outcome = run_supernet_training(
        spec.supernet_spec().model_dump(mode="json"),
        job.supernet_dir,
        job.artifacts_root,
        listener,
        is_canceled,
    )
    listener.supernet_finished(outcome.state.value, outcome.reason, outcome.summary)
    if outcome.state is SupernetState.CANCELED:
        return SearchOutcome(SearchState.CANCELED, outcome.reason)
    if outcome.state is not SupernetState.READY:
        return SearchOutcome(SearchState.FAILED, outcome.reason)
    listener.progress(f"{outcome.reason}; evaluating sub-networks")
    return None


def run_search(
    job: SearchJob,
    listener: SearchListener,
    is_canceled: Callable[[], bool],
    winding_down: Callable[[], bool] = lambda: False,
) -> SearchOutcome:
    """Run the search until its budget is spent, it is canceled, or (``winding_down``: a pause or stop
    was requested) no new trial may start and the running ones have finished."""
    spec = SearchSpec.model_validate(job.spec)
    started = time.monotonic()
    ended = _train(job, listener, lambda: is_canceled() or winding_down())
    if ended is not None:
        if ended.state is SearchState.CANCELED and not is_canceled() and winding_down():
            return SearchOutcome(SearchState.SUCCEEDED, "wound down during supernet training")
        return ended
    if job.trials_to_run <= 0:
        return SearchOutcome(SearchState.SUCCEEDED, "trial budget already spent")

    time_budget = None
    if spec.budget.max_duration_s is not None:
        time_budget = spec.budget.max_duration_s - job.elapsed_s - (time.monotonic() - started)
        if time_budget <= 0:
            return SearchOutcome(SearchState.SUCCEEDED, "max_duration_s reached before any trial could run")
    deadline = time.monotonic() + time_budget if time_budget is not None else None

    def stop_reason() -> str | None:
        if is_canceled():
            return "search canceled"
        if deadline is not None and time.monotonic() >= deadline:
            return "max_duration_s reached"
        return None

    first = spec.objectives[0]
    metric, mode = first.metric.value, "max" if first.direction == Direction.MAXIMIZE else "min"
    problem = SearchProblem(
        spec.param_space(), tuple(spec.objectives), tuple(spec.constraints), spec.budget.max_trials
    )
    searcher = StrategySearcher(
        make_strategy(spec.strategy, problem, spec.seed),
        history=job.history,
        first_number=job.first_number,
        max_fidelity=spec.max_fidelity,
        metric=metric,
        mode=mode,
        on_suggest=listener.trial_created,
        winding_down=winding_down,
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
            scheduler=_scheduler(spec),
            num_samples=job.trials_to_run,
            max_concurrent_trials=spec.budget.max_parallel,
            time_budget_s=time_budget,
            reuse_actors=False,
        ),
        run_config=tune.RunConfig(
            name=f"{job.search_id}-attempt{job.attempt}",
            storage_path=str(Path(job.artifacts_root) / "ray_results"),
            stop=CancelStopper(is_canceled),
            callbacks=[ListenerCallback(listener, spec.max_fidelity, stop_reason)],
            failure_config=tune.FailureConfig(max_failures=1),
            verbose=0,
        ),
    )
    tuner.fit()
    if is_canceled():
        return SearchOutcome(SearchState.CANCELED, "canceled by user")
    if winding_down():
        return SearchOutcome(SearchState.SUCCEEDED, "wound down: running trials finished")
    reason = stop_reason()
    return SearchOutcome(SearchState.SUCCEEDED, reason or "trial budget spent")

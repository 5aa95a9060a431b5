"""Runs one search on Ray: train the supernet once, then evaluate sub-networks through Ray Tune.

Called by the service's dispatcher in a thread of the service process; everything it learns goes
to the ``SearchListener`` (the service), never to the database directly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from search_spaces.spec import SearchSpec
from supernas.objectives import Direction
from supernas.records import Observation
from supernas.states import SearchState
from surrogates.registry import make_strategy
from surrogates.strategy import SearchProblem
from workers.listener import SearchListener
from workers.searcher import StrategySearcher
from workers.supernet_training import SupernetPaths, train_supernet
from workers.trial import evaluate_subnet
from workers.tune_callbacks import CancelStopper, ListenerCallback

log = logging.getLogger(__name__)

_POLL_S = 0.5


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

    @property
    def supernet_dir(self) -> Path:
        return Path(self.artifacts_root) / "searches" / self.search_id / "supernet"


@dataclass(frozen=True)
class SearchOutcome:
    state: SearchState
    reason: str | None


@ray.remote(max_retries=0)
def _train_supernet_task(spec: dict[str, Any], root: str, num_threads: int) -> dict[str, Any]:
    return train_supernet(spec, root, num_threads)


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
    """Train the supernet on Ray, relaying its progress; returns an outcome only if the search ends here."""
    paths = SupernetPaths(job.supernet_dir)
    cpus = max(1, min(2, int(ray.cluster_resources().get("CPU", 1))))
    ref = _train_supernet_task.options(num_cpus=cpus).remote(job.spec, str(paths.root), cpus)
    listener.progress("training supernet")
    last_progress = None
    while not ray.wait([ref], timeout=_POLL_S)[0]:
        if is_canceled():
            ray.cancel(ref, force=True)
            return SearchOutcome(SearchState.CANCELED, "canceled during supernet training")
        if paths.progress.exists():
            progress = json.loads(paths.progress.read_text())
            if progress != last_progress:
                last_progress = progress
                listener.progress(
                    f"training supernet: epoch {progress['epoch']}/{progress['epochs']}, "
                    f"val accuracy largest {progress['largest_val_accuracy']:.3f}, "
                    f"smallest {progress['smallest_val_accuracy']:.3f}"
                )
    try:
        summary = ray.get(ref)
    except Exception as exc:  # the task's own error, re-raised by Ray
        log.exception("supernet training failed for search %s", job.search_id)
        return SearchOutcome(SearchState.FAILED, f"supernet training failed: {exc}"[:2000])
    listener.progress(
        f"supernet trained: val accuracy largest {summary['largest_val_accuracy']:.3f}, "
        f"smallest {summary['smallest_val_accuracy']:.3f}; evaluating sub-networks"
    )
    return None


def run_search(job: SearchJob, listener: SearchListener, is_canceled: Callable[[], bool]) -> SearchOutcome:
    spec = SearchSpec.model_validate(job.spec)
    started = time.monotonic()
    ended = _train(job, listener, is_canceled)
    if ended is not None:
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
    )
    job_params = {
        "spec": job.spec,
        "search_id": job.search_id,
        "artifacts_root": job.artifacts_root,
        "supernet_dir": str(job.supernet_dir),
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
    reason = stop_reason()
    return SearchOutcome(SearchState.SUCCEEDED, reason or "trial budget spent")

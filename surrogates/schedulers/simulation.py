"""A simulated clock: the schedulers (or a peer's) run against recorded learning curves, several
workers at once, so hours of asynchronous scheduling take seconds.

A ``CurveTable`` holds, per recorded config, per seed and per epoch, the metrics and the seconds the
epoch took. ``simulate`` runs a ``Policy`` with ``workers`` simulated workers: a free worker asks the
policy what to do (start a new config, resume a paused trial, or nothing); each epoch ends after its
recorded time and the policy decides whether the trial continues, pauses or stops. The run ends once
``max_epochs`` epochs were trained in all (the budget) or nothing is left to run.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from surrogates.schedulers.base import Action, FidelityScheduler

ROW = "_row"  # the config key naming the recorded config a trial replays


@dataclass(frozen=True)
class CurveTable:
    """Recorded learning curves: ``values`` (C, S, E, M) per config, seed, epoch, metric."""

    configs: list[dict[str, Any]]
    values: np.ndarray  # (C, S, E, M)
    seconds: np.ndarray  # (C, S, E)
    metrics: tuple[str, ...]

    def __post_init__(self) -> None:
        c, s, e, m = self.values.shape
        if len(self.configs) != c or self.seconds.shape != (c, s, e) or len(self.metrics) != m:
            raise ValueError("configs, values (C, S, E, M), seconds (C, S, E) and metrics do not agree")

    @property
    def epochs(self) -> int:
        return self.values.shape[2]

    def config(self, row: int) -> dict[str, Any]:
        return {**self.configs[row], ROW: row}


class RowSampler:
    """Draws recorded configs uniformly among those no trial has started yet (then any)."""

    def __init__(self, table: CurveTable) -> None:
        self.table = table
        self.started: set[int] = set()

    def __call__(self, rng: np.random.Generator) -> dict[str, Any]:
        free = [r for r in range(len(self.table.configs)) if r not in self.started]
        return self.table.config(
            int(rng.choice(free)) if free else int(rng.integers(len(self.table.configs)))
        )


Verdict = Literal["continue", "pause", "stop"]


class Policy(Protocol):
    """What the simulator drives: ours (``SchedulerPolicy``) or a peer's library."""

    def next_job(
        self, paused: Sequence[int]
    ) -> tuple[Literal["start"], dict[str, Any]] | tuple[Literal["resume"], int] | None:
        """A worker is free: ("start", config), ("resume", trial) or None (nothing to do now)."""

    def started(self, trial: int, config: dict[str, Any]) -> None:
        """The config of ``start`` runs as ``trial``."""

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        """``trial`` finished ``epoch`` (from 1) with ``metrics``."""


class SchedulerPolicy:
    """A supernas scheduler as a policy; new configs come from its ``propose`` or at random."""

    def __init__(self, scheduler: FidelityScheduler, sampler: RowSampler, seed: int) -> None:
        self.scheduler = scheduler
        self.sampler = sampler
        self.rng = np.random.default_rng([seed, 3])
        self._next: dict[str, Any] | None = None
        self.decisions: list[dict[str, Any]] = []

    def next_job(self, paused: Sequence[int]) -> tuple[str, Any] | None:
        if self._next is None:
            proposal = self.scheduler.propose(self.rng)
            self._next = proposal[0] if proposal is not None else self.sampler(self.rng)
        decision = self.scheduler.next_step(paused, self._next)
        if decision is None:
            return None
        self.decisions.append(decision.record() | {"trial": decision.trial})
        if decision.action is Action.RESUME:
            return "resume", decision.trial
        config, self._next = self._next, None
        return "start", config

    def started(self, trial: int, config: dict[str, Any]) -> None:
        self.scheduler.add_trial(trial, config)

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        decision = self.scheduler.report(trial, epoch, metrics)
        if decision.action is not Action.CONTINUE:
            self.decisions.append(decision.record() | {"trial": trial})
        if decision.action is Action.PAUSE:
            return "pause"
        return "stop" if decision.action is Action.STOP else "continue"


@dataclass
class Trace:
    """Every epoch the simulation trained: when it ended, which trial, and what it measured."""

    time: list[float] = field(default_factory=list)
    trial: list[int] = field(default_factory=list)
    row: list[int] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)  # (M,) each
    resumes: int = 0

    @property
    def epochs_used(self) -> int:
        return len(self.time)


def simulate(
    policy: Policy, table: CurveTable, sampler: RowSampler, seed_index: int, workers: int, max_epochs: int
) -> Trace:
    """Run ``policy`` on ``table`` (curves of seed ``seed_index``) until ``max_epochs`` are trained."""
    trace = Trace()
    running: list[tuple[float, int, int, int]] = []  # heap of (ends at, worker, trial, epoch)
    progress: dict[int, int] = {}  # trial -> epochs done
    rows: dict[int, int] = {}
    paused: list[int] = []
    now, scheduled, next_trial = 0.0, 0, 0

    def assign(worker: int) -> bool:
        nonlocal scheduled, next_trial
        if scheduled >= max_epochs:
            return False
        job = policy.next_job(list(paused))
        if job is None:
            return False
        if job[0] == "resume":
            trial = int(job[1])
            paused.remove(trial)
            trace.resumes += 1
        else:
            trial, next_trial = next_trial, next_trial + 1
            config = job[1]
            rows[trial], progress[trial] = int(config[ROW]), 0
            sampler.started.add(rows[trial])
            policy.started(trial, config)
        run_epoch(worker, trial)
        return True

    def run_epoch(worker: int, trial: int) -> None:
        nonlocal scheduled
        epoch = progress[trial] + 1
        seconds = float(table.seconds[rows[trial], seed_index, epoch - 1])
        heapq.heappush(running, (now + seconds, worker, trial, epoch))
        scheduled += 1

    idle = list(range(workers))
    while True:
        while idle and assign(idle[0]):
            idle.pop(0)
        if not running:
            break
        now, worker, trial, epoch = heapq.heappop(running)
        progress[trial] = epoch
        values = table.values[rows[trial], seed_index, epoch - 1]
        trace.time.append(now)
        trace.trial.append(trial)
        trace.row.append(rows[trial])
        trace.epoch.append(epoch)
        trace.values.append(values)
        verdict = policy.on_epoch(trial, epoch, dict(zip(table.metrics, map(float, values), strict=True)))
        if verdict == "continue" and epoch < table.epochs and scheduled < max_epochs:
            run_epoch(worker, trial)
            continue
        if verdict == "pause" and epoch < table.epochs:
            paused.append(trial)
        idle.append(worker)
    return trace

"""The scheduler interface: reports in, decisions out, each decision with the reason it was taken.

A trial reports one value per objective at each fidelity step (``0..max_fidelity``, or from 1 when
there is no step-0 report). After each report the scheduler decides ``continue`` (or ``promote``,
a continue that passes a rung), ``pause`` (the trial keeps its checkpoint and may be resumed) or
``stop``; whenever a worker is free it decides whether to ``resume`` a paused trial or ``start`` the
next new config. Every decision is a ``Decision`` whose ``record()`` is the JSON stored with the trial.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from search_spaces.params import ParamSpace
from supernas.objectives import Direction


class Action(StrEnum):
    CONTINUE = "continue"
    PROMOTE = "promote"  # continue past a rung the trial was ranked at
    PAUSE = "pause"
    STOP = "stop"
    RESUME = "resume"
    START = "start"


@dataclass(frozen=True)
class Prediction:
    """A predicted value of the (scalarised) objective at a later fidelity."""

    fidelity: int
    mean: float
    std: float


@dataclass(frozen=True)
class Decision:
    """What the scheduler decided for one trial (``trial`` None: start the next new config)."""

    action: Action
    trial: int | None
    fidelity: int | None
    reason: str
    rung: int | None = None
    predicted: Prediction | None = None
    acquisition: float | None = None

    def record(self) -> dict[str, Any]:
        """The JSON stored with the trial and shown over the API."""
        out: dict[str, Any] = {"action": self.action.value, "fidelity": self.fidelity, "reason": self.reason}
        if self.rung is not None:
            out["rung"] = self.rung
        if self.predicted is not None:
            out["predicted"] = {
                "fidelity": self.predicted.fidelity,
                "mean": _finite_or_none(self.predicted.mean),
                "std": _finite_or_none(self.predicted.std),
            }
        if self.acquisition is not None:
            out["acquisition"] = _finite_or_none(self.acquisition)
        return out


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class SchedulingProblem:
    """What a scheduler schedules: objectives (metric names and directions) over fidelity steps."""

    metrics: tuple[str, ...]
    directions: tuple[Direction, ...]
    max_fidelity: int
    min_fidelity: int = 0  # the first step a trial reports (0: before any training)
    space: ParamSpace | None = None  # needed by model-based schedulers to encode configs
    # draws a candidate config (default: ``space.sample``); a simulation draws recorded configs
    sampler: Callable[[np.random.Generator], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if len(self.metrics) != len(self.directions) or not self.metrics:
            raise ValueError("one direction per metric, at least one metric")
        if not 0 <= self.min_fidelity <= self.max_fidelity:
            raise ValueError("need 0 <= min_fidelity <= max_fidelity")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        if self.sampler is not None:
            return self.sampler(rng)
        if self.space is None:
            raise ValueError("this scheduler needs the search space to draw configs")
        return self.space.sample(rng)

    @property
    def steps(self) -> int:
        """Fidelity steps of a full trial (reports from min_fidelity to max_fidelity)."""
        return self.max_fidelity - self.min_fidelity + 1

    def costs(self, metrics: Mapping[str, Any]) -> np.ndarray:
        """Objective values as costs to minimise (M,); a missing or non-finite value costs +inf."""
        out = np.full(len(self.metrics), np.inf)
        for j, (name, direction) in enumerate(zip(self.metrics, self.directions, strict=True)):
            value = metrics.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[j] = -float(value) if direction == Direction.MAXIMIZE else float(value)
        return out


@dataclass
class TrialCurve:
    """A trial's config and its costs at each fidelity step reported so far."""

    config: dict[str, Any]
    costs: dict[int, np.ndarray] = field(default_factory=dict)  # fidelity -> (M,)

    @property
    def fidelity(self) -> int | None:
        return max(self.costs) if self.costs else None


class FidelityScheduler(ABC):
    """Base class of the multi-fidelity schedulers: one abstract method, ``on_report``.

    Subclasses that pause trials also override ``next_step``; those that pick new configs with a
    model of their own override ``propose``.
    """

    name: ClassVar[str] = ""
    pauses: ClassVar[bool] = False  # whether trials are paused (and resumed) rather than stopped

    def __init__(self, problem: SchedulingProblem, settings: SchedulerSettings, seed: int = 0) -> None:
        self.problem = problem
        self.settings = settings
        self.seed = seed
        self.trials: dict[int, TrialCurve] = {}
        self.ended: set[int] = set()

    # --- bookkeeping -------------------------------------------------------------------------

    def add_trial(self, trial: int, config: dict[str, Any]) -> None:
        self.trials[trial] = TrialCurve(dict(config))

    def _record(self, trial: int, fidelity: int, metrics: Mapping[str, Any]) -> np.ndarray:
        if trial not in self.trials:
            raise KeyError(f"trial {trial} was never added to the scheduler")
        costs = self.problem.costs(metrics)
        self.trials[trial].costs[int(fidelity)] = costs
        return costs

    def end_trial(self, trial: int) -> None:
        """The trial will not run again (it finished, failed or was stopped)."""
        self.ended.add(trial)

    def running(self) -> list[int]:
        """The trials that have not ended (schedulers that pause trials leave the paused ones out)."""
        return [t for t in self.trials if t not in self.ended]

    # --- decisions ---------------------------------------------------------------------------

    def report(self, trial: int, fidelity: int, metrics: Mapping[str, Any]) -> Decision:
        """Record a report and decide what the trial does next; at the last fidelity it ends."""
        fidelity = int(fidelity)
        costs = self._record(trial, fidelity, metrics)
        if fidelity >= self.problem.max_fidelity:
            self.end_trial(trial)
            return Decision(Action.STOP, trial, fidelity, "reached the maximum fidelity")
        decision = self.on_report(trial, fidelity, costs)
        if decision.action is Action.STOP:
            self.end_trial(trial)
        return decision

    @abstractmethod
    def on_report(self, trial: int, fidelity: int, costs: np.ndarray) -> Decision:
        """Continue, promote, pause or stop ``trial`` after it reported ``costs`` (M,) at ``fidelity``
        (below the maximum)."""

    def next_step(self, paused: Sequence[int], new_config: dict[str, Any] | None) -> Decision | None:
        """A worker is free: resume one of the ``paused`` trials, start ``new_config`` (None: no new
        config may start), or nothing (None). By default new configs start and nothing is resumed."""
        if new_config is not None:
            return Decision(Action.START, None, None, "a worker is free")
        return None

    def propose(self, rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The next new config and what was predicted for it, or None to let the search's strategy
        choose (the default)."""
        return None

    def on_budget_spent(self, paused: Sequence[int]) -> list[Decision]:
        """The search ends: stop every paused trial."""
        decisions = [
            Decision(Action.STOP, t, self.trials[t].fidelity, "the search's budget is spent") for t in paused
        ]
        for t in paused:
            self.end_trial(t)
        return decisions


@dataclass(frozen=True)
class SchedulerSettings:
    """Settings shared by the schedulers (the spec's ``scheduler`` block)."""

    grace_period: int = 1
    reduction_factor: float = 2.0
    brackets: int = 1  # hyperband: the number of asynchronous brackets
    step: int = 1  # freeze-thaw: fidelity steps a resumed trial runs before it is paused again
    candidates: int = 512  # model-based schedulers: random configs scored per proposal
    extra: dict[str, Any] = field(default_factory=dict)

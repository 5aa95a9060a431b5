"""Scheduler names a spec may use, and their classes (a new scheduler is one file plus one line here)."""

from __future__ import annotations

from surrogates.schedulers.asha import AshaScheduler, HyperbandScheduler
from surrogates.schedulers.base import FidelityScheduler, SchedulerSettings, SchedulingProblem
from surrogates.schedulers.freeze_thaw import FreezeThawScheduler
from surrogates.schedulers.mobster import MobsterScheduler

SCHEDULERS: dict[str, type[FidelityScheduler]] = {
    cls.name: cls for cls in (AshaScheduler, HyperbandScheduler, MobsterScheduler, FreezeThawScheduler)
}


def make_scheduler(
    name: str, problem: SchedulingProblem, settings: SchedulerSettings, seed: int = 0
) -> FidelityScheduler:
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; known: {sorted(SCHEDULERS)}") from None
    return cls(problem, settings, seed)

"""Lifecycle states of searches and trials, and which of them are terminal."""

from __future__ import annotations

from enum import StrEnum


class SearchState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_SEARCH_STATES


class TrialState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"  # a scheduler (freeze-thaw) paused it, keeping its checkpoint; it may resume
    SUCCEEDED = "succeeded"
    PRUNED = "pruned"
    FAILED = "failed"
    CANCELED = "canceled"
    INFEASIBLE = "infeasible"
    LOST = "lost"

    @property
    def is_terminal(self) -> bool:
        return self not in _UNFINISHED_TRIAL_STATES


class SupernetState(StrEnum):
    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (SupernetState.READY, SupernetState.FAILED, SupernetState.CANCELED)


_TERMINAL_SEARCH_STATES = frozenset({SearchState.SUCCEEDED, SearchState.FAILED, SearchState.CANCELED})
# unfinished: not started yet, running, or paused by the scheduler (it may resume)
_UNFINISHED_TRIAL_STATES = frozenset({TrialState.PENDING, TrialState.RUNNING, TrialState.PAUSED})

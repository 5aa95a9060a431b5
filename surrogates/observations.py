"""Turning a search's history into training data for surrogates (pure numpy).

A strategy learns from trials that ran to the end (``succeeded``) and from ``infeasible`` ones,
which carry the metrics that broke a constraint. Objectives come out in *maximisation* form (a
minimised metric is negated), as BoTorch expects; NaN or infinite results are left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces.spec import Constraint, Objective
from supernas.objectives import Direction, is_finite_number
from supernas.records import Observation
from supernas.states import TrialState

LEARNABLE_STATES = (TrialState.SUCCEEDED, TrialState.INFEASIBLE)


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def sign(objective: Objective) -> float:
    return 1.0 if objective.direction == Direction.MAXIMIZE else -1.0


@dataclass(frozen=True)
class TrainingData:
    configs: list[dict[str, Any]]
    y: np.ndarray  # (N, M) objectives, maximisation form
    slack: np.ndarray  # (N, C) constraint slack, <= 0 feasible
    feasible: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.configs)


def training_data(
    history: Sequence[Observation], objectives: Sequence[Objective], constraints: Sequence[Constraint]
) -> TrainingData:
    """Observations with finite values for every objective and constrained metric."""
    metrics = {o.metric.value for o in objectives} | {c.metric.value for c in constraints}
    usable = [
        o
        for o in history
        if o.state in LEARNABLE_STATES and all(is_finite_number(o.metrics.get(m)) for m in metrics)
    ]
    y = np.array([[sign(obj) * float(o.metrics[obj.metric.value]) for obj in objectives] for o in usable])
    slack = np.array([[c.slack(o.metrics) for c in constraints] for o in usable])
    slack = slack.reshape(len(usable), len(constraints))  # (N, C)
    return TrainingData(
        configs=[o.config for o in usable],
        y=y.reshape(len(usable), len(objectives)),  # (N, M)
        slack=slack,
        feasible=np.all(slack <= 0, axis=1),  # (N,)
    )


def seen_keys(history: Sequence[Observation], pending: Sequence[dict[str, Any]]) -> set[str]:
    """Keys of every config already evaluated (in any state) or in flight."""
    return {config_key(o.config) for o in history} | {config_key(c) for c in pending}

"""Metrics a search can optimise and the direction of each objective."""

from __future__ import annotations

import math
from enum import StrEnum


class Metric(StrEnum):
    ACCURACY = "accuracy"
    LATENCY_MS = "latency_ms"
    PARAMS = "params"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


def is_finite_number(value: object) -> bool:
    """True for a real number that is neither NaN nor infinite (such values never win "best")."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

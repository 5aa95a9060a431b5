"""Metrics a search can optimise and the direction of each objective."""

from __future__ import annotations

import math
from enum import StrEnum


class Metric(StrEnum):
    ACCURACY = "accuracy"
    LATENCY_MS = "latency_ms"
    PARAMS = "params"
    MACS = "macs"
    MODEL_BYTES = "model_bytes"
    LATENCY_MS_B32 = "latency_ms_b32"
    PEAK_MEMORY_MB = "peak_memory_mb"


# Metrics known before any training (measured on the extracted sub-network); constraints on them
# make a trial infeasible at once.
COST_METRICS = frozenset(
    {
        Metric.LATENCY_MS,
        Metric.PARAMS,
        Metric.MACS,
        Metric.MODEL_BYTES,
        Metric.LATENCY_MS_B32,
        Metric.PEAK_MEMORY_MB,
    }
)


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


def is_finite_number(value: object) -> bool:
    """True for a real number that is neither NaN nor infinite (such values never win "best")."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

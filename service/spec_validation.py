"""Validation of a submitted spec against the registries of the layers below (tasks, strategies)."""

from __future__ import annotations

from search_spaces.spec import SearchSpec
from supernas.errors import InvalidInputError
from surrogates.registry import STRATEGIES
from workers.tasks import TASKS


def check_registered_names(spec: SearchSpec) -> None:
    """Raise ``InvalidInputError`` naming the field when a task or strategy is unknown."""
    if spec.task not in TASKS:
        raise InvalidInputError(
            f"unknown task {spec.task!r}; built-in tasks: {sorted(TASKS)}", ("body", "task")
        )
    if spec.strategy not in STRATEGIES:
        raise InvalidInputError(
            f"unknown strategy {spec.strategy!r}; available: {sorted(STRATEGIES)}", ("body", "strategy")
        )

"""A finished search's reason warns when no trial met the constraints, and only then."""

from __future__ import annotations

import pytest

from service.dispatch import with_feasibility


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"infeasible": 3}, "trial budget spent; no trial met the constraints (3 infeasible)"),
        ({"infeasible": 3, "failed": 1}, "trial budget spent; no trial met the constraints (3 infeasible)"),
        ({"infeasible": 3, "succeeded": 1}, "trial budget spent"),
        ({"infeasible": 3, "pruned": 2}, "trial budget spent"),  # pruned trials met them at their fidelity
        ({"failed": 2}, "trial budget spent"),  # nothing was measured: no claim about the constraints
        ({}, "trial budget spent"),
    ],
)
def test_reason_names_an_empty_front(counts: dict[str, int], expected: str) -> None:
    assert with_feasibility("trial budget spent", counts) == expected


def test_without_a_reason_the_warning_stands_alone() -> None:
    assert with_feasibility(None, {"infeasible": 1}) == "no trial met the constraints (1 infeasible)"

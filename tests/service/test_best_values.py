"""A search's "best" per objective: the best feasible value, and among trials that tie on it, one
that no other trial dominates (the full-suite run that found this: two architectures shared the
best accuracy on the digits validation split, and the first of them was dominated)."""

from __future__ import annotations

from search_spaces.spec import Objective
from service.summaries import PlottedPoint, best_values, front_mask
from supernas.states import TrialState

OBJECTIVES = [
    Objective(metric="accuracy", direction="maximize"),
    Objective(metric="latency_ms", direction="minimize"),
    Objective(metric="params", direction="minimize"),
]


def _point(number: int, values: tuple[float, float, float], state=TrialState.SUCCEEDED) -> PlottedPoint:
    return PlottedPoint(number, state, values, None, None)


def test_a_tie_on_the_best_value_goes_to_the_trial_on_the_front() -> None:
    points = [
        _point(0, (0.95, 3.0, 900.0)),  # dominated by trial 4: same accuracy, faster and smaller
        _point(1, (0.90, 1.0, 100.0)),
        _point(2, (0.99, 2.0, 500.0), TrialState.INFEASIBLE),  # infeasible trials never win
        _point(4, (0.95, 2.0, 800.0)),
        _point(5, (0.95, 2.0, 700.0)),  # ties trial 4 on two objectives, smaller: the winner
    ]
    best = best_values(points, OBJECTIVES)
    assert best["accuracy"] == (0.95, 5)
    assert best["latency_ms"] == (1.0, 1)
    assert best["params"] == (100.0, 1)
    on_front = {p.number for p, keep in zip(points, front_mask(points, OBJECTIVES), strict=True) if keep}
    assert {n for _, n in best.values()} <= on_front


def test_no_feasible_point_has_no_best() -> None:
    assert best_values([_point(0, (0.9, 1.0, 1.0), TrialState.INFEASIBLE)], OBJECTIVES) == {}

"""The search spec accepts the shipped examples and rejects bad input naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from search_spaces.spec import SearchSpec

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.*"))


def _base() -> dict:
    return {
        "task": "digits",
        "space": {"family": "elastic_cnn"},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    }


def _error_locs(payload: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        SearchSpec.model_validate(payload)
    return [tuple(e["loc"]) for e in info.value.errors()]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_spec_is_valid(path: Path) -> None:
    spec = SearchSpec.model_validate(yaml.safe_load(path.read_text()))
    assert spec.objectives


def test_defaults_fill_in_a_minimal_spec() -> None:
    spec = SearchSpec.model_validate(_base())
    assert spec.strategy == "random"
    assert spec.budget.max_trials > 0
    assert spec.space.size == 3**2 * 3 * 2


def test_unknown_family_names_the_field() -> None:
    payload = _base() | {"space": {"family": "transformer_xl"}}
    assert ("space", "family") in _error_locs(payload)


def test_negative_budget_names_the_field() -> None:
    payload = _base() | {"budget": {"max_trials": -3}}
    assert ("budget", "max_trials") in _error_locs(payload)


def test_unknown_metric_and_direction_are_rejected() -> None:
    payload = _base() | {"objectives": [{"metric": "flops", "direction": "sideways"}]}
    locs = _error_locs(payload)
    assert ("objectives", 0, "metric") in locs
    assert ("objectives", 0, "direction") in locs


def test_repeated_metric_is_rejected() -> None:
    objective = {"metric": "accuracy", "direction": "maximize"}
    assert ("objectives",) in _error_locs(_base() | {"objectives": [objective, objective]})


def test_misspelled_field_is_rejected_not_ignored() -> None:
    assert ("budgett",) in _error_locs(_base() | {"budgett": {"max_trials": 3}})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("width_mult", [0.0, 1.0]),
        ("width_mult", [1.5]),
        ("kernel_size", [4]),
        ("depth", [0, 1]),
        ("depth", [2, 2]),
    ],
)
def test_invalid_space_choices_are_rejected(field: str, value: list) -> None:
    payload = _base() | {"space": {"family": "elastic_cnn", field: value}}
    assert ("space", field) in _error_locs(payload)


def test_architecture_outside_the_space_is_rejected() -> None:
    from supernas.errors import InvalidInputError

    space = SearchSpec.model_validate(_base()).space
    assert space.validate_arch(space.largest().to_config()) == space.largest()
    with pytest.raises(InvalidInputError, match="kernel_size 7"):
        space.validate_arch({"depth": [1, 1], "width_mult": 1.0, "kernel_size": 7})
    with pytest.raises(InvalidInputError, match="depth"):
        space.validate_arch({"depth": [1], "width_mult": 1.0, "kernel_size": 3})

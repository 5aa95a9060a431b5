"""The search spec accepts the shipped examples and rejects bad input naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from search_spaces.spec import SearchSpec, SupernetSpec

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


SUPERNET_EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "supernets").glob("*.*"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_spec_is_valid(path: Path) -> None:
    spec = SearchSpec.model_validate(yaml.safe_load(path.read_text()))
    assert spec.objectives


@pytest.mark.parametrize("path", SUPERNET_EXAMPLES, ids=lambda p: p.name)
def test_every_supernet_example_is_valid(path: Path) -> None:
    assert SupernetSpec.model_validate(yaml.safe_load(path.read_text())).training.epochs > 0


def test_there_is_an_example_per_family() -> None:
    families = {yaml.safe_load(p.read_text()).get("space", {}).get("family") for p in EXAMPLES}
    assert {"elastic_cnn", "elastic_transformer", "elastic_mlp"} <= families


def test_defaults_fill_in_a_minimal_spec() -> None:
    spec = SearchSpec.model_validate(_base())
    assert spec.strategy == "random"
    assert spec.budget.max_trials > 0
    assert spec.space.size == 3**2 * 3 * 2 * 2  # depth per stage, width, kernel, expand ratio


def test_unknown_family_names_the_field() -> None:
    payload = _base() | {"space": {"family": "transformer_xl"}}
    assert ("space", "family") in _error_locs(payload)
    with pytest.raises(ValidationError, match="unknown supernet family 'transformer_xl'; known families"):
        SearchSpec.model_validate(payload)


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
    largest = space.config_from_arch(space.largest())
    assert space.validate_arch(largest) == space.largest()
    with pytest.raises(InvalidInputError, match="kernel_size=7"):
        space.validate_arch({"depth_s0": 1, "depth_s1": 1, "width_mult": 1.0, "kernel_size": 7})
    with pytest.raises(InvalidInputError, match="depth_s1 is missing"):
        space.validate_arch({"depth_s0": 1, "width_mult": 1.0, "kernel_size": 3})


def test_per_block_kernels_exist_only_for_blocks_the_depth_includes() -> None:
    space = SearchSpec.model_validate(
        _base() | {"space": {"family": "elastic_cnn", "kernel_per_block": True}}
    ).space
    names = {p.name: p for p in space.params()}
    assert names["kernel_s0_b0"].condition is None
    assert names["kernel_s1_b2"].condition.values == (3,)
    arch = space.arch_from_config(
        {"depth_s0": 1, "depth_s1": 3, "width_mult": 0.5, "expand_ratio": 2, "kernel_s0_b0": 5}
        | {"kernel_s1_b0": 3, "kernel_s1_b1": 5, "kernel_s1_b2": 3}
    )
    assert arch.block_kernels == ((5,), (3, 5, 3))
    assert space.config_from_arch(arch)["kernel_s1_b1"] == 5
    # 3 depths per stage, each block's kernel chosen from 2: (2 + 4 + 8)^2 kernel-depth combos
    # x 3 widths x 2 expand ratios
    assert space.size == (2 + 4 + 8) ** 2 * 3 * 2


def test_hyperparameters_and_constraints() -> None:
    spec = SearchSpec.model_validate(
        _base()
        | {
            "hyperparameters": {
                "finetune_lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
                "finetune_batch_size": {"type": "int", "low": 16, "high": 128, "log": True},
                "finetune_optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
            },
            "constraints": [{"metric": "latency_ms", "op": "<=", "value": 2.5}],
        }
    )
    space = spec.param_space()
    assert space.names[-3:] == ["finetune_batch_size", "finetune_lr", "finetune_optimizer"]
    config = space.sample(__import__("numpy").random.default_rng(0))
    assert spec.finetune_settings(config)["finetune_lr"] == config["finetune_lr"]
    (constraint,) = spec.constraints
    assert constraint.violation({"latency_ms": 2.0}) is None
    assert "violates <= 2.5" in constraint.violation({"latency_ms": 3.0})
    assert "not a finite number" in constraint.violation({"latency_ms": float("nan")})
    assert constraint.slack({"latency_ms": 3.0}) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"dropout": {"type": "float", "low": 0, "high": 1}}, "unknown hyperparameter"),
        ({"finetune_lr": {"type": "categorical", "choices": [0.1]}}, "takes a range of type float"),
        ({"finetune_lr": {"type": "float", "low": 0.1, "high": 0.01}}, "low < high"),
        ({"finetune_optimizer": {"type": "categorical", "choices": ["lion"]}}, "among"),
    ],
)
def test_bad_hyperparameters_are_rejected(hyperparameters: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SearchSpec.model_validate(_base() | {"hyperparameters": hyperparameters})


def test_constraint_value_must_be_finite() -> None:
    bad = {"constraints": [{"metric": "params", "op": "<=", "value": float("inf")}]}
    assert ("constraints", 0, "value") in _error_locs(_base() | bad)

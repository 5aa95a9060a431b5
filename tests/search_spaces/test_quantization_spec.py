"""The quantization policy as a search dimension (torch-free): per-unit genes masked by depth, the
policy of a config, per-unit overrides, bad input rejected naming the problem, and the fidelity steps
a growing calibration set adds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from search_spaces.params import Categorical, Condition, ParamSpace
from search_spaces.quantization import (
    QUANTIZED,
    Quantization,
    UnitPolicy,
    is_all_float,
    policy_from_config,
    policy_to_json,
    uniform_policy,
)
from search_spaces.spec import FidelitySteps, SearchSpec
from supernas.errors import InvalidInputError

EXAMPLES = Path(__file__).parents[2] / "examples"
OBJECTIVES = [{"metric": "accuracy", "direction": "maximize"}]

CNN = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2, 3]}
TRANSFORMER = {"family": "elastic_transformer", "num_layers": [1, 2, 3]}
MLP = {"family": "elastic_mlp", "depth": [1, 2, 3]}

CNN_UNITS = ["stem", *(f"s{s}_b{b}" for s in range(2) for b in range(3)), "head"]
TRANSFORMER_UNITS = ["embed", "l0", "l1", "l2", "head"]
MLP_UNITS = ["l0", "l1", "l2", "head"]


def _spec(space: dict[str, Any], quantization: dict[str, Any] | None = None, **extra: Any) -> SearchSpec:
    payload: dict[str, Any] = {"task": "digits", "space": space, "objectives": OBJECTIVES, **extra}
    if quantization is not None:
        payload["quantization"] = quantization
    return SearchSpec.model_validate(payload)


def _samples(space: ParamSpace, n: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


# --- genes: names, conditions, masking -------------------------------------------------------------


FAMILIES = [
    # space, its units, the depth gene, a unit that needs depth >= n, n
    pytest.param(CNN, CNN_UNITS, "depth_s0", "s0_b2", 3, id="elastic_cnn"),
    pytest.param(TRANSFORMER, TRANSFORMER_UNITS, "num_layers", "l2", 3, id="elastic_transformer"),
    pytest.param(MLP, MLP_UNITS, "depth", "l1", 2, id="elastic_mlp"),
]


@pytest.mark.parametrize(("space", "units", "depth_gene", "deep_unit", "needs"), FAMILIES)
def test_every_unit_gets_a_weight_and_an_activation_gene(
    space: dict, units: list[str], depth_gene: str, deep_unit: str, needs: int
) -> None:
    spec = _spec(space, {})
    assert [u.name for u in spec.arch_space.quant_units()] == units
    params = spec.param_space()
    names = params.names
    quant_names = [n for n in names if n.startswith(("qw_", "qa_"))]
    assert quant_names == [f"{g}_{u}" for u in units for g in ("qw", "qa")]
    assert names[: len(spec.arch_space.params())] == [p.name for p in spec.arch_space.params()]
    for unit in units:
        weights, activations = params[f"qw_{unit}"], params[f"qa_{unit}"]
        assert isinstance(weights, Categorical) and set(weights.choices) == {"int4", "int8", "float"}
        assert weights.ordered  # one coordinate (the order: test_weight_genes_are_ordered_by_bits)
        assert activations.choices == ("int8", "float")
        assert activations.condition is not None and activations.condition.parent == f"qw_{unit}"
        assert set(activations.condition.values) == set(QUANTIZED)
    deep = params[f"qw_{deep_unit}"].condition
    assert deep is not None and deep.parent == depth_gene and min(deep.values) == needs
    # the first unit of a family runs at every depth: no condition
    assert params[f"qw_{units[0]}"].condition is None
    assert _spec(space).param_space().names == names[: len(spec.arch_space.params())]


@pytest.mark.parametrize(("space", "units", "depth_gene", "deep_unit", "needs"), FAMILIES)
def test_sampled_genes_follow_depth_and_weight_precision(
    space: dict, units: list[str], depth_gene: str, deep_unit: str, needs: int
) -> None:
    params = _spec(space, {}).param_space()
    configs = _samples(params)
    for config in configs:
        assert (f"qw_{deep_unit}" in config) == (config[depth_gene] >= needs), config
        for unit in units:
            weights = config.get(f"qw_{unit}")
            assert (f"qa_{unit}" in config) == (weights in ("int8", "int4")), config
        assert params.validate(config) == config
    # both sides of each condition were seen
    assert {f"qw_{deep_unit}" in c for c in configs} == {True, False}
    assert {c[f"qw_{units[0]}"] for c in configs} == {"int4", "int8", "float"}
    assert {c.get(f"qa_{units[0]}") for c in configs} == {"int8", "float", None}


@pytest.mark.parametrize(("space", "units", "depth_gene", "deep_unit", "needs"), FAMILIES)
def test_inactive_genes_encode_as_zeros(
    space: dict, units: list[str], depth_gene: str, deep_unit: str, needs: int
) -> None:
    params = _spec(space, {}).param_space()
    for config in _samples(params, n=200, seed=1):
        x, mask = params.encode(config), params.active_mask(config)
        assert x.shape == mask.shape == (params.dim,)
        assert np.all(x[~mask] == 0.0)
        assert mask.sum() == sum(p.width for p in params.params if p.name in config)
        assert params.decode(x) == config
    shallow = params.decode(np.zeros(params.dim))  # the smallest depth: the deep unit is off
    assert f"qw_{deep_unit}" not in shallow and f"qa_{deep_unit}" not in shallow
    assert not params.active_mask(shallow)[_offset(params, f"qw_{deep_unit}")]


def _offset(params: ParamSpace, name: str) -> int:
    return sum(p.width for p in params.params[: params.names.index(name)])


def _weight_coordinates(spec: SearchSpec) -> list[float]:
    """The coordinate of qw_head for int4, int8 and float weights."""
    params = spec.param_space()
    i = _offset(params, "qw_head")
    base = {"depth": 1, "width_l0": 32, "activation": "relu"}
    return [
        params.encode({**base, "qw_head": w, **({"qa_head": "int8"} if w != "float" else {})})[i]
        for w in ("int4", "int8", "float")
    ]


def test_given_weight_choices_encode_ordinally_by_bits() -> None:
    spec = _spec(MLP, {"weights": ["int8", "float", "int4"]})
    assert spec.quantization.weights == ["int4", "int8", "float"]
    assert _weight_coordinates(spec) == [0.0, 0.5, 1.0]


def test_weight_genes_are_ordered_by_bits_by_default() -> None:
    """BUG: the default ``weights`` is ``["int8", "int4", "float"]`` and pydantic does not run the
    canonicalising validator on defaults, so ``quantization: {}`` gives an ordinal gene int8 < int4 <
    float (int4 sits between int8 and float for every surrogate), and the spec changes when its dump is
    validated again (the service stores the dump: an identical retry with the same Idempotency-Key gets
    409). Fix: default ``["int4", "int8", "float"]`` or ``validate_default=True`` on the field."""
    spec = _spec(MLP, {})
    assert spec.param_space()["qw_head"].choices == ("int4", "int8", "float")
    assert _weight_coordinates(spec) == [0.0, 0.5, 1.0]
    assert SearchSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_genes_of_an_inactive_block_are_rejected_by_validate() -> None:
    params = _spec(CNN, {}).param_space()
    config = _samples(params, n=1)[0] | {"depth_s0": 1}
    config = {k: v for k, v in config.items() if not k.endswith(("s0_b1", "s0_b2"))}
    assert params.validate(config)
    with pytest.raises(InvalidInputError, match="qw_s0_b2 is inactive"):
        params.validate(config | {"qw_s0_b2": "int8"})
    float_head = {k: v for k, v in config.items() if k != "qa_head"} | {"qw_head": "float"}
    with pytest.raises(InvalidInputError, match="qa_head is inactive"):
        params.validate(float_head | {"qa_head": "int8"})


# --- the policy of a config ------------------------------------------------------------------------


def test_policy_of_a_config_covers_its_active_units() -> None:
    spec = _spec(CNN, {})
    for config in _samples(spec.param_space(), n=100, seed=2):
        policy = spec.policy_of(config)
        assert policy is not None
        active = [u for u in CNN_UNITS if f"qw_{u}" in config]
        assert list(policy) == active
        for unit in active:
            weights = config[f"qw_{unit}"]
            expected = config[f"qa_{unit}"] if weights != "float" else "float"
            assert policy[unit] == UnitPolicy(weights, expected)
        blocks = sum(config[f"depth_s{s}"] for s in range(2))
        assert len(policy) == blocks + 2  # stem and head


def test_policy_from_config_by_hand() -> None:
    config = {
        "depth_s0": 1,
        "qw_stem": "float",
        "qw_s0_b0": "int4",
        "qa_s0_b0": "int8",
        "qw_head": "int8",
        "qa_head": "float",
        "finetune_lr": 0.01,
    }
    policy = policy_from_config(config)
    assert policy == {
        "stem": UnitPolicy("float", "float"),
        "s0_b0": UnitPolicy("int4", "int8"),
        "head": UnitPolicy("int8", "float"),
    }
    assert policy["stem"].is_float and not policy["s0_b0"].is_float
    assert policy_to_json(policy)["s0_b0"] == {"weights": "int4", "activations": "int8"}
    assert not is_all_float(policy)


def test_float_weights_imply_float_activations() -> None:
    # even a stray activation gene cannot make a float unit's activations int8
    assert policy_from_config({"qw_head": "float", "qa_head": "int8"}) == {
        "head": UnitPolicy("float", "float")
    }
    assert policy_from_config({"qw_head": "int8"}) == {"head": UnitPolicy("int8", "float")}
    assert uniform_policy(["a", "b"], "float", "int8") == {
        "a": UnitPolicy("float", "float"),
        "b": UnitPolicy("float", "float"),
    }
    assert is_all_float(policy_from_config({"qw_stem": "float", "qw_head": "float"}))


def test_a_search_without_quantization_has_no_policy_and_no_genes() -> None:
    spec = _spec(CNN)
    assert spec.quantization is None
    assert spec.policy_of({"depth_s0": 1, "qw_stem": "int8"}) is None
    assert not any(n.startswith(("qw_", "qa_")) for n in spec.param_space().names)


def test_defaults_of_an_empty_quantization() -> None:
    quantization = _spec(CNN, {}).quantization
    assert quantization == Quantization()
    assert quantization.backend == "onnxruntime"
    assert set(quantization.weights) == {"int4", "int8", "float"}  # the order: see above
    assert quantization.activations == ["int8", "float"]
    assert quantization.calibration_examples == [256]
    assert quantization.layers == {}


# --- per-unit overrides ----------------------------------------------------------------------------


def test_a_layer_override_narrows_that_unit_only() -> None:
    layers = {"head": {"weights": ["float"]}, "stem": {"activations": ["float"]}}
    spec = _spec(CNN, {"weights": ["int4", "int8", "float"], "layers": layers})
    params = spec.param_space()
    assert params["qw_head"].choices == ("float",)
    assert "qa_head" not in params.names
    assert params["qa_stem"].choices == ("float",)
    assert params["qw_stem"].choices == ("int4", "int8", "float")
    assert params["qw_s0_b0"].choices == ("int4", "int8", "float")
    assert params["qa_s0_b0"].choices == ("int8", "float")
    for config in _samples(params, n=50, seed=3):
        assert config["qw_head"] == "float" and "qa_head" not in config
        policy = spec.policy_of(config)
        assert policy is not None and policy["head"] == UnitPolicy("float", "float")
        assert policy["stem"].activations == "float"
        assert params.encode(config)[_offset(params, "qw_head")] == 0.0  # one choice: one constant coordinate


def test_choices_are_put_in_canonical_order() -> None:
    spec = _spec(MLP, {"weights": ["float", "int8"], "layers": {"l0": {"weights": ["int8", "int4"]}}})
    params = spec.param_space()
    assert params["qw_head"].choices == ("int8", "float")
    assert params["qw_l0"].choices == ("int4", "int8")  # no float: the activation gene is always there
    assert params["qa_l0"].condition == Condition("qw_l0", ("int4", "int8"))
    assert all("qa_l0" in c for c in _samples(params, n=50))


def test_a_weight_only_search_has_single_choice_activation_genes() -> None:
    params = _spec(MLP, {"activations": ["float"]}).param_space()
    for config in _samples(params, n=50, seed=4):
        for unit, policy in policy_from_config(config).items():
            assert policy.activations == "float", unit


# --- bad input -------------------------------------------------------------------------------------


def _rejected(space: dict[str, Any], quantization: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _spec(space, quantization)
    return info.value


@pytest.mark.parametrize(
    ("quantization", "loc", "message"),
    [
        (
            {"weights": ["int2"]},
            ("quantization", "weights"),
            "weight precision 'int2' cannot run on the onnxruntime backend",
        ),
        (
            {"weights": ["int8", "fp16"]},
            ("quantization", "weights"),
            "weight precision 'fp16' cannot run on the onnxruntime backend",
        ),
        (
            {"activations": ["int4"]},
            ("quantization", "activations"),
            "activation precision 'int4' cannot run on the onnxruntime backend",
        ),
        (
            {"calibration_examples": []},
            ("quantization", "calibration_examples"),
            "the calibration set cannot be empty",
        ),
        (
            {"calibration_examples": [256, 64]},
            ("quantization", "calibration_examples"),
            "calibration_examples must be strictly ascending",
        ),
        (
            {"calibration_examples": [64, 64]},
            ("quantization", "calibration_examples"),
            "calibration_examples must be strictly ascending",
        ),
        ({"calibration_examples": [0, 64]}, ("quantization", "calibration_examples", 0), "greater than 0"),
        (
            {"weights": ["int8", "int8"]},
            ("quantization", "weights"),
            "weight precisions must be unique",
        ),
        (
            {"activations": ["float", "float"]},
            ("quantization", "activations"),
            "activation precisions must be unique",
        ),
        ({"weights": []}, ("quantization", "weights"), "at least 1 item"),
        (
            {"layers": {"head": {"weights": ["int2"]}}},
            ("quantization", "layers", "head", "weights"),
            "weight precision 'int2' cannot run on the onnxruntime backend",
        ),
        (
            {"layers": {"head": {"weights": ["int8", "int8"]}}},
            ("quantization", "layers", "head", "weights"),
            "weight precisions must be unique",
        ),
        ({"layers": {"head": {"bits": 4}}}, ("quantization", "layers", "head", "bits"), "Extra inputs"),
        ({"backend": "tensorrt"}, ("quantization", "backend"), "'onnxruntime'"),
        ({"bits": 4}, ("quantization", "bits"), "Extra inputs"),
    ],
)
def test_bad_quantization_is_rejected_naming_the_problem(
    quantization: dict, loc: tuple, message: str
) -> None:
    error = _rejected(CNN, quantization)
    assert loc in [tuple(e["loc"]) for e in error.errors()], error
    assert message in str(error)


def test_an_unknown_layer_is_named_with_the_real_ones() -> None:
    error = _rejected(CNN, {"layers": {"s9_b0": {"weights": ["float"]}}})
    message = str(error)
    assert "quantization.layers names 's9_b0'" in message
    assert "not a quantizable layer of the elastic_cnn family" in message
    assert "its layers: " + ", ".join(CNN_UNITS) in message


def test_a_layer_the_depth_choices_never_reach_is_unknown() -> None:
    # depth [1, 2, 3] has blocks 0..2; block 3 never runs
    assert "'s0_b3'" in str(_rejected(CNN, {"layers": {"s0_b3": {"weights": ["float"]}}}))
    error = str(_rejected(MLP, {"layers": {"stem": {"weights": ["float"]}}}))
    assert "not a quantizable layer of the elastic_mlp family; its layers: l0, l1, l2, head" in error
    error = str(_rejected(TRANSFORMER, {"layers": {"l3": {"weights": ["int8"]}}}))
    assert "'l3'" in error and "its layers: embed, l0, l1, l2, head" in error


def test_every_real_layer_may_be_overridden() -> None:
    for space, units in ((CNN, CNN_UNITS), (TRANSFORMER, TRANSFORMER_UNITS), (MLP, MLP_UNITS)):
        layers = {u: {"weights": ["int8"], "activations": ["int8"]} for u in units}
        params = _spec(space, {"layers": layers}).param_space()
        for config in _samples(params, n=20):
            assert all(p == UnitPolicy("int8", "int8") for p in policy_from_config(config).values())


# --- fidelity steps --------------------------------------------------------------------------------


def test_calibration_sets_add_inherited_steps() -> None:
    spec = _spec(
        CNN,
        {"calibration_examples": [64, 128, 256, 512]},
        fidelity={"validation_examples": [100, 200], "finetune_epochs": 2},
    )
    steps = spec.steps
    assert steps == FidelitySteps((100, 200), (64, 128, 256, 512), 2)
    assert steps.inherited == 4
    assert spec.max_fidelity == steps.last == 3 + 2
    table = [
        (steps.validation_subset(s), steps.calibration_size(s), steps.finetune_epoch(s))
        for s in range(spec.max_fidelity + 1)
    ]
    assert table == [
        (100, 64, 0),
        (200, 128, 0),
        (None, 256, 0),  # the whole validation split
        (None, 512, 0),
        (None, 512, 1),  # fine-tuning keeps the largest calibration set
        (None, 512, 2),
    ]


def test_more_validation_subsets_than_calibration_sets() -> None:
    spec = _spec(
        CNN,
        {"calibration_examples": [32, 64]},
        fidelity={"validation_examples": [50, 100, 200], "finetune_epochs": 1},
    )
    steps = spec.steps
    assert steps.inherited == 4 and spec.max_fidelity == 4
    assert [steps.calibration_size(s) for s in range(5)] == [32, 64, 64, 64, 64]
    assert [steps.validation_subset(s) for s in range(5)] == [50, 100, 200, None, None]
    assert [steps.finetune_epoch(s) for s in range(5)] == [0, 0, 0, 0, 1]


@pytest.mark.parametrize(("validation", "epochs"), [([], 0), ([], 3), ([100, 200], 2), ([10, 20, 30], 0)])
def test_without_quantization_the_steps_are_unchanged(validation: list[int], epochs: int) -> None:
    fidelity = {"validation_examples": validation, "finetune_epochs": epochs}
    spec = _spec(CNN, fidelity=fidelity)
    assert spec.max_fidelity == len(validation) + epochs
    steps = spec.steps
    assert steps.calibration_examples == () and steps.inherited == len(validation) + 1
    assert all(steps.calibration_size(s) is None for s in range(spec.max_fidelity + 1))
    assert [steps.finetune_epoch(s) for s in range(spec.max_fidelity + 1)] == [0] * (
        len(validation) + 1
    ) + list(range(1, epochs + 1))
    # a single calibration set adds no step
    quantized = _spec(CNN, {"calibration_examples": [128]}, fidelity=fidelity)
    assert quantized.max_fidelity == spec.max_fidelity
    assert quantized.steps.calibration_size(0) == 128


# --- the shipped example ---------------------------------------------------------------------------


def test_a_quantization_example_is_shipped() -> None:
    quant = [p for p in EXAMPLES.glob("*.yaml") if "quant" in p.name]
    assert quant, "no example whose name contains 'quant'"
    for path in quant:
        spec = SearchSpec.model_validate(yaml.safe_load(path.read_text()))
        assert spec.quantization is not None
        assert any(n.startswith("qa_") for n in spec.param_space().names)

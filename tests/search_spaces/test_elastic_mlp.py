"""Tests of the elastic MLP family: space, extraction, weight sharing, TorchScript/ONNX export."""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from search_spaces.elastic_mlp import DynamicLinear, ElasticMLP, ElasticMLPConfig, SubnetMLP
from search_spaces.elastic_mlp_space import ElasticMLPSpace, MLPArch
from search_spaces.params import Condition, ParamSpace
from search_spaces.supernet import count_params
from supernas.errors import InvalidInputError

TABULAR = (12,)


def archs_of(space: ElasticMLPSpace, n_random: int = 10, seed: int = 0) -> list[MLPArch]:
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def supernet(space: ElasticMLPSpace, input_shape=TABULAR, num_classes: int = 5) -> ElasticMLP:
    torch.manual_seed(0)
    return ElasticMLP.from_space(space, input_shape, num_classes).eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


ALL_ACTIVATIONS = ElasticMLPSpace(activation=["relu", "gelu", "silu", "tanh"])


# --- extraction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("input_shape", [TABULAR, (1, 8, 8), (40, 1)])
def test_extracted_subnet_equals_supernet(input_shape: tuple[int, ...]) -> None:
    net = supernet(ALL_ACTIVATIONS, input_shape)
    x = torch.randn(4, *input_shape)
    outputs = []
    for arch in archs_of(ALL_ACTIVATIONS, n_random=10):
        sub = net.extract(arch).eval()
        assert isinstance(sub, SubnetMLP)
        with torch.no_grad():
            expected = net(x, arch)
            got = sub(x)
        assert got.shape == (4, 5)
        assert max_diff(got, expected) < 1e-5, arch
        outputs.append(expected)
    assert max_diff(outputs[0], outputs[1]) > 1e-3  # the archs really differ


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_each_activation_extracts_to_its_module(activation: str) -> None:
    net = supernet(ALL_ACTIVATIONS)
    arch = MLPArch(2, (64, 32), activation)
    sub = net.extract(arch)
    modules = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
    assert [type(m) for m in sub] == [
        nn.Flatten,
        nn.Linear,
        modules[activation],
        nn.Linear,
        modules[activation],
        nn.Linear,
    ]
    assert [m.out_features for m in sub if isinstance(m, nn.Linear)] == [64, 32, 5]
    x = torch.randn(3, *TABULAR)
    with torch.no_grad():
        assert max_diff(sub(x), net(x, arch)) < 1e-5


def test_param_counts() -> None:
    space = ElasticMLPSpace()
    net = supernet(space)
    assert count_params(net.extract(space.largest())) == count_params(net)
    # 12 -> 32 -> 5
    assert count_params(net.extract(space.smallest())) == (12 * 32 + 32) + (32 * 5 + 5)
    assert count_params(net.extract(MLPArch(2, (64, 32), "relu"))) == (12 * 64 + 64) + (64 * 32 + 32) + (
        32 * 5 + 5
    )


def test_extracted_subnet_is_independent() -> None:
    space = ElasticMLPSpace()
    net = supernet(space)
    arch = MLPArch(2, (128, 32), "gelu")
    sub = net.extract(arch)
    assert not any(isinstance(m, (ElasticMLP, DynamicLinear)) for m in sub.modules())
    net_ptrs = {p.untyped_storage().data_ptr() for p in net.parameters()}
    assert all(p.untyped_storage().data_ptr() not in net_ptrs for p in sub.parameters())
    x = torch.randn(2, *TABULAR)
    with torch.no_grad():
        reference = net(x, arch)
        for p in sub.parameters():
            p.add_(1.0)
        assert torch.equal(net(x, arch), reference)


def test_extract_follows_supernet_mode() -> None:
    net = ElasticMLP.from_space(ElasticMLPSpace(), TABULAR, 2)
    assert net.train().extract(MLPArch(1, (32,), "relu")).training
    assert not net.eval().extract(MLPArch(1, (32,), "relu")).training


# --- weight sharing ---------------------------------------------------------------------------------


def test_small_subnet_gradient_reaches_only_its_slice_of_the_largest_weights() -> None:
    net = ElasticMLP.from_space(ElasticMLPSpace(), TABULAR, 3).train()
    arch = MLPArch(2, (32, 64), "silu")
    loss = nn.functional.cross_entropy(net(torch.randn(8, *TABULAR), arch), torch.tensor([0, 1, 2, 0] * 2))
    loss.backward()
    w0, w1 = net.layers[0].weight.grad, net.layers[1].weight.grad  # (128, 12), (128, 128)
    assert w0[:32].abs().sum() > 0 and w0[32:].abs().sum() == 0
    assert w1[:64, :32].abs().sum() > 0
    assert w1[64:].abs().sum() == 0 and w1[:, 32:].abs().sum() == 0
    b1 = net.layers[1].bias.grad
    assert b1[:64].abs().sum() > 0 and b1[64:].abs().sum() == 0
    head = net.head.weight.grad  # (3, 128)
    assert head[:, :64].abs().sum() > 0 and head[:, 64:].abs().sum() == 0
    assert all(p.grad is None for p in net.layers[2].parameters())


# --- export -----------------------------------------------------------------------------------------


def test_torchscript_roundtrip(tmp_path) -> None:
    net = supernet(ALL_ACTIVATIONS, (1, 8, 8))
    x = torch.randn(3, 1, 8, 8)
    for i, arch in enumerate(archs_of(ALL_ACTIVATIONS, n_random=4, seed=1)):
        path = tmp_path / f"subnet{i}.pt"
        torch.jit.script(net.extract(arch).eval()).save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            assert max_diff(loaded(x), net(x, arch)) < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_onnx_export_runs_in_onnxruntime(tmp_path, activation: str) -> None:
    net = supernet(ALL_ACTIVATIONS, (1, 8, 8))
    arch = MLPArch(3, (128, 32, 64), activation)
    path = tmp_path / "subnet.onnx"
    torch.onnx.export(
        net.extract(arch).eval(),
        (torch.randn(2, 1, 8, 8),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(7, 1, 8, 8)
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert max_diff(torch.from_numpy(got), net(x, arch)) < 1e-4


# --- configs and the space ---------------------------------------------------------------------------


def test_config_roundtrip() -> None:
    space = ElasticMLPSpace(depth=[2, 4], width=[16, 8])
    config = ElasticMLPConfig.from_space(space, (3, 4), num_classes=7)
    assert config == ElasticMLPConfig((3, 4), 7, max_depth=4, max_width=16)
    assert config.in_features == 12
    assert ElasticMLPConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    rebuilt = ElasticMLP.from_config_dict(json.loads(json.dumps(config.to_dict())))
    rebuilt.load_state_dict(ElasticMLP(config).state_dict())  # same parameter shapes
    with pytest.raises(InvalidInputError):
        ElasticMLPConfig((3, 0), 7, 4, 16)
    with pytest.raises(InvalidInputError):
        ElasticMLPConfig((3,), 0, 4, 16)


def test_arch_roundtrips() -> None:
    space = ALL_ACTIVATIONS
    for arch in archs_of(space):
        assert MLPArch.from_config(json.loads(json.dumps(arch.to_config()))) == arch
        config = space.config_from_arch(arch)
        assert space.validate_arch(config) == arch
        assert space.arch_from_config({**config, "lr": 0.1}) == arch  # other keys are ignored
    with pytest.raises(InvalidInputError):
        space.arch_from_config({"depth": 2, "width_l0": 32, "activation": "relu"})
    with pytest.raises(InvalidInputError):
        space.config_from_arch(MLPArch(2, (32,), "relu"))


def test_widths_are_conditional_on_depth() -> None:
    space = ElasticMLPSpace()
    params = ParamSpace(space.params())
    assert params.names == ["depth", "width_l0", "width_l1", "width_l2", "activation"]
    assert params["width_l0"].condition is None
    assert params["width_l1"].condition == Condition("depth", (2, 3))
    assert params["width_l2"].condition == Condition("depth", (3,))
    assert not params["activation"].ordered
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = params.sample(rng)
        assert {k for k in config if k.startswith("width_l")} == {
            f"width_l{i}" for i in range(config["depth"])
        }
    one = space.config_from_arch(MLPArch(1, (64,), "gelu"))
    assert one == {"depth": 1, "width_l0": 64, "activation": "gelu"}
    with pytest.raises(InvalidInputError):
        space.validate_arch({**one, "width_l1": 32})  # inactive at depth 1
    with pytest.raises(InvalidInputError):
        space.validate_arch({**one, "activation": "tanh"})  # not a choice of this space


def test_space_size_and_defaults() -> None:
    space = ElasticMLPSpace()
    assert (space.depth, space.width, space.activation) == ([1, 2, 3], [32, 64, 128], ["relu", "gelu"])
    assert space.size == (3 + 3**2 + 3**3) * 2
    assert ElasticMLPSpace(depth=[2], width=[8, 16], activation=["tanh"]).size == 4
    assert space.largest() == MLPArch(3, (128, 128, 128), "relu")
    assert space.smallest() == MLPArch(1, (32,), "relu")
    assert ElasticMLPSpace(width=[64, 8]).width == [8, 64]  # sorted


@pytest.mark.parametrize(
    "fields",
    [
        {"width": [0, 32]},
        {"width": [32, 32]},
        {"depth": []},
        {"depth": [0]},
        {"depth": [100]},
        {"activation": ["swish"]},
        {"activation": ["relu", "relu"]},
        {"activation": []},
        {"family": "elastic_cnn"},
        {"num_layers": [1]},  # unknown field
    ],
)
def test_space_validation_errors(fields: dict) -> None:
    with pytest.raises(ValidationError):
        ElasticMLPSpace(**fields)


# --- invalid archs and inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "loc"),
    [
        (MLPArch(4, (32,) * 4, "relu"), ("arch", "depth")),
        (MLPArch(0, (), "relu"), ("arch", "depth")),
        (MLPArch(2, (32,), "relu"), ("arch", "widths")),
        (MLPArch(1, (129,), "relu"), ("arch", "widths")),
        (MLPArch(1, (0,), "relu"), ("arch", "widths")),
        (MLPArch(1, (32,), "swish"), ("arch", "activation")),
    ],
)
def test_invalid_arch_raises(arch: MLPArch, loc: tuple[str, ...]) -> None:
    net = ElasticMLP.from_space(ElasticMLPSpace(), TABULAR, 2)
    with pytest.raises(InvalidInputError) as exc_info:
        net(torch.randn(2, *TABULAR), arch)
    assert exc_info.value.loc == loc
    with pytest.raises(InvalidInputError):
        net.extract(arch)


def test_wrong_arch_type_and_space_raise() -> None:
    net = ElasticMLP.from_space(ElasticMLPSpace(), TABULAR, 2)
    with pytest.raises(InvalidInputError):
        net(torch.randn(2, *TABULAR), {"depth": 1})
    from search_spaces.elastic_transformer_space import ElasticTransformerSpace

    with pytest.raises(InvalidInputError):
        ElasticMLP.from_space(ElasticTransformerSpace(), TABULAR, 2)


@pytest.mark.parametrize("input_shape", [(), (0,), (3, -1)])
def test_from_space_rejects_bad_input_shapes(input_shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInputError):
        ElasticMLP.from_space(ElasticMLPSpace(), input_shape, 2)


@pytest.mark.parametrize("shape", [(2, 13), (2, 3, 4), (12,), (2, 12, 1)])
def test_wrong_input_shape_raises(shape: tuple[int, ...]) -> None:
    net = ElasticMLP.from_space(ElasticMLPSpace(), TABULAR, 2)
    with pytest.raises(InvalidInputError) as exc_info:
        net(torch.randn(*shape), MLPArch(1, (32,), "relu"))
    assert exc_info.value.loc == ("x",)


# --- training ---------------------------------------------------------------------------------------


def test_training_lowers_the_loss_of_the_largest_subnet() -> None:
    torch.manual_seed(0)
    n = 128
    x = torch.randn(n, *TABULAR)
    y = (x[:, :3].sum(dim=1) > 0).long()  # linearly separable
    space = ElasticMLPSpace()
    net = ElasticMLP.from_space(space, TABULAR, 2).train()
    arch = space.largest()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x, arch), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]

"""Tests of the elastic Transformer family: space, extraction, weight sharing, TorchScript/ONNX export."""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from search_spaces.elastic_transformer import (
    DynamicLayerNorm,
    ElasticTransformer,
    ElasticTransformerConfig,
    SubnetTransformer,
)
from search_spaces.elastic_transformer_space import ElasticTransformerSpace, TransformerArch
from search_spaces.params import Condition, ParamSpace
from search_spaces.supernet import count_params
from supernas.errors import InvalidInputError

SEQ = (40, 1)  # mnist1d: 40 steps of 1 feature


def archs_of(space: ElasticTransformerSpace, n_random: int = 10, seed: int = 0) -> list[TransformerArch]:
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def supernet(space: ElasticTransformerSpace, input_shape=SEQ, num_classes: int = 10) -> ElasticTransformer:
    """A supernet with non-trivial layer-norm affine params, in eval mode."""
    torch.manual_seed(0)
    net = ElasticTransformer.from_space(space, input_shape, num_classes)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, DynamicLayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# --- extraction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_layer", [False, True])
def test_extracted_subnet_equals_supernet(per_layer: bool) -> None:
    space = ElasticTransformerSpace(per_layer=per_layer)
    net = supernet(space)
    x = torch.randn(4, *SEQ)
    outputs = []
    for arch in archs_of(space):
        sub = net.extract(arch).eval()
        assert isinstance(sub, SubnetTransformer)
        with torch.no_grad():
            expected = net(x, arch)
            got = sub(x)
            # shorter sequences use the first positions
            assert max_diff(sub(x[:, :17]), net(x[:, :17], arch)) < 1e-5
        assert got.shape == (4, 10)
        assert max_diff(got, expected) < 1e-5, arch
        outputs.append(expected)
    assert max_diff(outputs[0], outputs[1]) > 1e-3  # the archs really differ


def test_per_layer_arch_runs_its_own_heads_and_ratios() -> None:
    space = ElasticTransformerSpace(per_layer=True, mlp_ratio=[1.5, 4])
    net = supernet(space)
    arch = TransformerArch(3, 48, heads=(4, 1, 2), mlp_ratios=(1.5, 4.0, 1.5))
    sub = net.extract(arch)
    assert [layer.attn.q.out_features for layer in sub.layers] == [64, 16, 32]  # heads * head_dim
    assert [layer.mlp.fc.out_features for layer in sub.layers] == [72, 192, 72]
    assert sub.pos.shape == (40, 48)
    x = torch.randn(2, *SEQ)
    with torch.no_grad():
        assert max_diff(sub.eval()(x), net(x, arch)) < 1e-5


def test_largest_extract_holds_every_weight() -> None:
    space = ElasticTransformerSpace()
    net = ElasticTransformer.from_space(space, SEQ, 10)
    assert count_params(net.extract(space.largest())) == count_params(net)
    assert count_params(net.extract(space.smallest())) < count_params(net)


def test_extracted_subnet_is_independent() -> None:
    space = ElasticTransformerSpace()
    net = supernet(space)
    arch = space.largest()
    sub = net.extract(arch)
    assert not any(isinstance(m, (ElasticTransformer, DynamicLayerNorm)) for m in sub.modules())
    net_ptrs = {p.untyped_storage().data_ptr() for p in net.parameters()}
    assert all(p.untyped_storage().data_ptr() not in net_ptrs for p in sub.parameters())
    x = torch.randn(2, *SEQ)
    with torch.no_grad():
        reference = net(x, arch)
        for p in sub.parameters():
            p.add_(1.0)
        assert torch.equal(net(x, arch), reference)


def test_extract_follows_supernet_mode() -> None:
    net = ElasticTransformer.from_space(ElasticTransformerSpace(), SEQ, 2)
    arch = TransformerArch.uniform(1, 32, 1, 1.0)
    assert net.train().extract(arch).training
    assert not net.eval().extract(arch).training


# --- weight sharing ---------------------------------------------------------------------------------


def test_small_subnet_gradient_reaches_only_its_slice_of_the_largest_weights() -> None:
    space = ElasticTransformerSpace()
    net = ElasticTransformer.from_space(space, SEQ, 3).train()
    arch = TransformerArch(1, 32, heads=(2,), mlp_ratios=(2.0,))
    x = torch.randn(8, 20, 1)
    loss = nn.functional.cross_entropy(net(x, arch), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    loss.backward()

    q = net.layers[0].attn.q.weight.grad  # (4 * 16, 64)
    assert q is not None and q.shape == (64, 64)
    assert q[:32, :32].abs().sum() > 0  # 2 heads of 16, embed dim 32
    assert q[32:].abs().sum() == 0 and q[:, 32:].abs().sum() == 0
    fc = net.layers[0].mlp.fc.weight.grad  # (256, 64)
    assert fc[:64, :32].abs().sum() > 0 and fc[64:].abs().sum() == 0
    pos = net.pos.grad  # (40, 64)
    assert pos[:20, :32].abs().sum() > 0 and pos[20:].abs().sum() == 0 and pos[:, 32:].abs().sum() == 0
    ln = net.ln_f.weight.grad
    assert ln[:32].abs().sum() > 0 and ln[32:].abs().sum() == 0
    # layers beyond num_layers do not run
    assert all(p.grad is None for p in net.layers[1].parameters())


# --- export -----------------------------------------------------------------------------------------


def test_torchscript_roundtrip(tmp_path) -> None:
    space = ElasticTransformerSpace(per_layer=True)
    net = supernet(space)
    x = torch.randn(3, *SEQ)
    for i, arch in enumerate(archs_of(space, n_random=2, seed=1)):
        path = tmp_path / f"subnet{i}.pt"
        torch.jit.script(net.extract(arch).eval()).save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            assert max_diff(loaded(x), net(x, arch)) < 1e-5
            assert max_diff(loaded(x[:, :11]), net(x[:, :11], arch)) < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_runs_in_onnxruntime(tmp_path) -> None:
    space = ElasticTransformerSpace(per_layer=True)
    net = supernet(space)
    arch = TransformerArch(2, 48, heads=(4, 1), mlp_ratios=(2.0, 4.0))
    sub = net.extract(arch).eval()
    path = tmp_path / "subnet.onnx"
    torch.onnx.export(
        sub,
        (torch.randn(2, *SEQ),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch", 1: "length"}, "logits": {0: "batch"}},
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(5, 40, 1), (1, 13, 1)]:
        x = torch.randn(*shape)
        (got,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            assert max_diff(torch.from_numpy(got), net(x, arch)) < 1e-4


# --- configs and the space ---------------------------------------------------------------------------


def test_config_roundtrip() -> None:
    space = ElasticTransformerSpace(num_layers=[2, 4], num_heads=[2, 3], embed_dim=[24], mlp_ratio=[0.5, 3])
    config = ElasticTransformerConfig.from_space(space, (12, 5), num_classes=4)
    assert config == ElasticTransformerConfig(12, 5, 4, 4, 24, 3, 16, 3.0)
    assert config.max_hidden_dim == 72
    assert ElasticTransformerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    rebuilt = ElasticTransformer.from_config_dict(json.loads(json.dumps(config.to_dict())))
    net = ElasticTransformer(config)
    rebuilt.load_state_dict(net.state_dict())  # same parameter shapes
    with pytest.raises(InvalidInputError):
        ElasticTransformerConfig(12, 5, 4, 0, 24, 3, 16, 3.0)
    with pytest.raises(InvalidInputError):
        ElasticTransformerConfig(12, 5, 4, 1, 24, 3, 16, float("nan"))


def test_arch_roundtrips() -> None:
    for per_layer in (False, True):
        space = ElasticTransformerSpace(per_layer=per_layer)
        for arch in archs_of(space):
            assert TransformerArch.from_config(json.loads(json.dumps(arch.to_config()))) == arch
            config = space.config_from_arch(arch)
            assert space.validate_arch(config) == arch
            assert space.arch_from_config({**config, "lr": 0.1}) == arch  # other keys are ignored
    mixed = TransformerArch(2, 32, heads=(1, 2), mlp_ratios=(1.0, 1.0))
    with pytest.raises(InvalidInputError):
        ElasticTransformerSpace().config_from_arch(mixed)
    with pytest.raises(InvalidInputError):
        ElasticTransformerSpace().arch_from_config({"num_layers": 2, "embed_dim": 32})


def test_per_layer_params_are_conditional_on_num_layers() -> None:
    space = ElasticTransformerSpace(per_layer=True)
    params = ParamSpace(space.params())
    assert params.names == [
        "num_layers",
        "embed_dim",
        *(f"{name}_l{i}" for i in range(3) for name in ("num_heads", "mlp_ratio")),
    ]
    assert params["num_heads_l0"].condition is None
    assert params["num_heads_l1"].condition == Condition("num_layers", (2, 3))
    assert params["mlp_ratio_l2"].condition == Condition("num_layers", (3,))
    rng = np.random.default_rng(0)
    for _ in range(20):
        config = params.sample(rng)
        layers = config["num_layers"]
        assert {k for k in config if k.startswith("num_heads_l")} == {
            f"num_heads_l{i}" for i in range(layers)
        }
    one_layer = space.config_from_arch(TransformerArch.uniform(1, 32, 2, 4.0))
    assert set(one_layer) == {"num_layers", "embed_dim", "num_heads_l0", "mlp_ratio_l0"}
    with pytest.raises(InvalidInputError):
        space.validate_arch({**one_layer, "num_heads_l1": 2})  # inactive at one layer
    with pytest.raises(InvalidInputError):
        space.validate_arch({**one_layer, "num_heads_l0": 3})  # not a choice
    global_names = [p.name for p in ElasticTransformerSpace().params()]
    assert global_names == ["num_layers", "embed_dim", "num_heads", "mlp_ratio"]


def test_space_size() -> None:
    assert ElasticTransformerSpace().size == 3 * 3 * 3 * 3
    # per layer: embed_dim x sum over num_layers of (heads x ratios) ** layers
    assert ElasticTransformerSpace(per_layer=True).size == 3 * (9 + 9**2 + 9**3)
    assert ElasticTransformerSpace(num_layers=[2], num_heads=[1, 2], embed_dim=[8], mlp_ratio=[1]).size == 2
    small = ElasticTransformerSpace(
        num_layers=[1, 2], num_heads=[1, 2], embed_dim=[8], mlp_ratio=[1], per_layer=True
    )
    assert small.size == 2 + 4


def test_space_defaults_and_normalisation() -> None:
    space = ElasticTransformerSpace()
    assert (space.num_layers, space.num_heads, space.embed_dim, space.mlp_ratio) == (
        [1, 2, 3],
        [1, 2, 4],
        [32, 48, 64],
        [1.0, 2.0, 4.0],
    )
    assert space.head_dim == 16 and not space.per_layer
    assert ElasticTransformerSpace(num_heads=[4, 1]).num_heads == [1, 4]  # sorted
    assert space.largest() == TransformerArch(3, 64, (4, 4, 4), (4.0, 4.0, 4.0))
    assert space.smallest() == TransformerArch(1, 32, (1,), (1.0,))


@pytest.mark.parametrize(
    "fields",
    [
        {"num_heads": [0, 1]},
        {"num_layers": []},
        {"num_layers": [1, 1]},
        {"num_layers": [100]},
        {"embed_dim": [-8]},
        {"mlp_ratio": [0.0]},
        {"mlp_ratio": [float("inf")]},
        {"head_dim": 0},
        {"family": "elastic_mlp"},
        {"depth": [1]},  # unknown field
    ],
)
def test_space_validation_errors(fields: dict) -> None:
    with pytest.raises(ValidationError):
        ElasticTransformerSpace(**fields)


# --- invalid archs and inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "loc"),
    [
        (TransformerArch(4, 32, (1,) * 4, (1.0,) * 4), ("arch", "num_layers")),
        (TransformerArch(0, 32, (), ()), ("arch", "num_layers")),
        (TransformerArch(1, 65, (1,), (1.0,)), ("arch", "embed_dim")),
        (TransformerArch(1, 0, (1,), (1.0,)), ("arch", "embed_dim")),
        (TransformerArch(1, 32, (5,), (1.0,)), ("arch", "heads")),
        (TransformerArch(2, 32, (1,), (1.0, 1.0)), ("arch", "heads")),
        (TransformerArch(1, 64, (1,), (4.5,)), ("arch", "mlp_ratios")),
        (TransformerArch(1, 32, (1,), (-1.0,)), ("arch", "mlp_ratios")),
        (TransformerArch(2, 32, (1, 1), (1.0,)), ("arch", "mlp_ratios")),
    ],
)
def test_invalid_arch_raises(arch: TransformerArch, loc: tuple[str, ...]) -> None:
    net = ElasticTransformer.from_space(ElasticTransformerSpace(), SEQ, 2)
    with pytest.raises(InvalidInputError) as exc_info:
        net(torch.randn(2, *SEQ), arch)
    assert exc_info.value.loc == loc
    with pytest.raises(InvalidInputError):
        net.extract(arch)


def test_wrong_arch_type_and_space_raise() -> None:
    net = ElasticTransformer.from_space(ElasticTransformerSpace(), SEQ, 2)
    with pytest.raises(InvalidInputError):
        net(torch.randn(2, *SEQ), {"num_layers": 1})
    from search_spaces.elastic_mlp_space import ElasticMLPSpace

    with pytest.raises(InvalidInputError):
        ElasticTransformer.from_space(ElasticMLPSpace(), SEQ, 2)


@pytest.mark.parametrize("input_shape", [(40,), (1, 40, 1), (0, 1), ()])
def test_from_space_rejects_non_sequence_shapes(input_shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInputError):
        ElasticTransformer.from_space(ElasticTransformerSpace(), input_shape, 10)


@pytest.mark.parametrize("shape", [(2, 40, 3), (2, 41, 1), (2, 40), (2, 0, 1), (2, 1, 40, 1)])
def test_wrong_input_shape_raises(shape: tuple[int, ...]) -> None:
    net = ElasticTransformer.from_space(ElasticTransformerSpace(), SEQ, 2)
    with pytest.raises(InvalidInputError) as exc_info:
        net(torch.randn(*shape), TransformerArch.uniform(1, 32, 1, 1.0))
    assert exc_info.value.loc == ("x",)


# --- training ---------------------------------------------------------------------------------------


def test_training_lowers_the_loss_of_the_largest_subnet() -> None:
    torch.manual_seed(0)
    n, length = 64, 16
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, length, 1) * 0.5 + (y.float() * 2 - 1).view(n, 1, 1)  # class = sign of the mean
    space = ElasticTransformerSpace(num_layers=[1, 2], embed_dim=[16, 32])
    net = ElasticTransformer.from_space(space, (length, 1), 2).train()
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

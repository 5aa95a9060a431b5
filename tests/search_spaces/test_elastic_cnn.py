"""Tests of the elastic CNN family: its space (params, conditions, validation, size) and its supernet
(extraction equality, kernel centre crop, weight sharing, TorchScript / ONNX export, validation)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from search_spaces.elastic_cnn import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicLinear,
    DynamicSqueezeExcite,
    ElasticCNN,
    ElasticCNNConfig,
    SubnetCNN,
    SubnetSqueezeExcite,
    count_params,
)
from search_spaces.elastic_cnn_space import CNNArch, ElasticCNNSpace
from search_spaces.family import ArchSpace
from search_spaces.supernet import Supernet
from supernas.errors import InvalidInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ElasticCNNConfig(
    in_channels=1, num_classes=2, stage_channels=(4, 8), max_depth=2, max_kernel_size=3, max_expand_ratio=2
)
SMALL_SPACE = {"stage_channels": [4, 8], "depth": [1, 2], "kernel_size": [3, 5, 7], "expand_ratio": [1, 2, 3]}


def archs_of(space: ElasticCNNSpace, n_random: int = 10, seed: int = 0) -> list[CNNArch]:
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def warmed_supernet(space: ElasticCNNSpace, in_channels: int, size: int, seed: int = 0) -> ElasticCNN:
    """A supernet with non-trivial BN affine params and running stats, in eval mode."""
    torch.manual_seed(seed)
    net = ElasticCNN.from_space(space, (in_channels, size, size), num_classes=10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, DynamicBatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.train()
    with torch.no_grad():
        for arch in archs_of(space, n_random=6, seed=seed + 1):
            net(torch.randn(8, in_channels, size, size) * 2.0 + 0.5, arch)
    return net.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# --- the supernet: extraction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kernel_per_block", "expand_per_block", "squeeze_excite"),
    [(False, False, False), (True, True, False), (False, False, True), (True, True, True)],
)
def test_extracted_subnet_equals_supernet(
    kernel_per_block: bool, expand_per_block: bool, squeeze_excite: bool
) -> None:
    space = ElasticCNNSpace(
        **SMALL_SPACE,
        kernel_per_block=kernel_per_block,
        expand_per_block=expand_per_block,
        squeeze_excite=squeeze_excite,
    )
    net = warmed_supernet(space, 1, 8)
    bn = net.stages[0][0].depthwise.bn
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    x = torch.randn(4, 1, 8, 8)
    outputs = []
    for arch in archs_of(space):
        sub = net.extract(arch).eval()
        with torch.no_grad():
            expected = net(x, arch)
            got = sub(x)
        assert got.shape == (4, 10)
        assert max_diff(got, expected) < 1e-5, arch
        outputs.append(expected)
    # the archs really differ: otherwise the equality above would prove little
    assert max_diff(outputs[0], outputs[1]) > 1e-3


def test_extracted_subnet_equals_supernet_on_rgb_inputs() -> None:
    space = ElasticCNNSpace(stage_channels=[4, 8, 8], depth=[1, 2], expand_ratio=[2, 4], squeeze_excite=True)
    net = warmed_supernet(space, 3, 16)
    x = torch.randn(2, 3, 16, 16)
    for arch in archs_of(space, n_random=3):
        with torch.no_grad():
            assert max_diff(net.extract(arch).eval()(x), net(x, arch)) < 1e-5


def test_extracted_subnet_is_plain_torch_and_independent() -> None:
    space = ElasticCNNSpace(**SMALL_SPACE, squeeze_excite=True)
    net = warmed_supernet(space, 1, 8)
    arch = CNNArch((2, 1), 0.75, 5, expand_ratio=2)
    sub = net.extract(arch)
    assert isinstance(sub, SubnetCNN)
    dynamic = (ElasticCNN, DynamicConv2d, DynamicBatchNorm2d, DynamicLinear, DynamicSqueezeExcite)
    assert not any(isinstance(m, dynamic) for m in sub.modules())
    assert any(isinstance(m, SubnetSqueezeExcite) for m in sub.modules())
    net_ptrs = {t.untyped_storage().data_ptr() for t in [*net.parameters(), *net.buffers()]}
    assert all(t.untyped_storage().data_ptr() not in net_ptrs for t in [*sub.parameters(), *sub.buffers()])

    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        reference = net(x, arch)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # fine-tune the extracted copy in train mode; the supernet must not move
    sub.train()
    for _ in range(3):  # plain SGD by hand: torch.optim's first step imports torch._dynamo (seconds)
        sub.zero_grad()
        loss = nn.functional.cross_entropy(sub(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,)))
        loss.backward()
        with torch.no_grad():
            for p in sub.parameters():
                p.sub_(0.5 * p.grad)
        assert torch.isfinite(loss)
    with torch.no_grad():
        for p in sub.parameters():
            p.add_(1.0)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        assert torch.equal(net(x, arch), reference)
        assert max_diff(sub.eval()(x), reference) > 1e-3


def test_extract_follows_supernet_mode() -> None:
    net = ElasticCNN(TINY)
    assert net.extract(CNNArch((1, 1), 1.0, 3)).training
    assert not net.eval().extract(CNNArch((1, 1), 1.0, 3)).training


def test_kernel_is_centre_crop_of_largest() -> None:
    torch.manual_seed(0)
    net = ElasticCNN(ElasticCNNConfig(1, 3, (4, 8), max_depth=2, max_kernel_size=5, max_expand_ratio=2))
    full = net.stages[0][1].depthwise.conv.weight  # (8, 1, 5, 5): hidden 4 * 2, depthwise
    sub = net.extract(CNNArch((2, 2), 1.0, 3, expand_ratio=2))
    dw = sub.blocks[1].depthwise[0]
    assert dw.weight.shape == (8, 1, 3, 3) and dw.groups == 8
    assert torch.equal(dw.weight, full[:, :, 1:4, 1:4])
    assert dw.padding == (1, 1)
    # width 0.5 -> 2 channels, expand 1 -> 2 hidden channels, kernel 1 -> the centre tap, no padding
    sub1 = net.extract(CNNArch((2, 2), 0.5, 1, expand_ratio=1))
    dw1 = sub1.blocks[1].depthwise[0]
    assert torch.equal(dw1.weight, full[:2, :, 2:3, 2:3])
    assert dw1.padding == (0, 0) and dw1.groups == 2
    # the stem keeps its 3x3 kernel whatever the arch's kernel
    assert sub1.stem[0].weight.shape == (2, 1, 3, 3)


def test_dynamic_conv_equals_conv_with_cropped_weight() -> None:
    torch.manual_seed(0)
    conv = DynamicConv2d(6, 6, 7, stride=2, depthwise=True)
    x = torch.randn(2, 4, 9, 9)
    y = conv(x, 4, 3)
    expected = nn.functional.conv2d(x, conv.weight[:4, :, 2:5, 2:5], stride=2, padding=1, groups=4)
    assert y.shape == (2, 4, 5, 5)
    assert torch.equal(y, expected)


def test_active_weights_are_views_of_the_largest() -> None:
    conv = DynamicConv2d(4, 8, 5)
    w = conv.active_weight(2, 3, 3)
    assert w.shape == (3, 2, 3, 3)
    assert w.untyped_storage().data_ptr() == conv.weight.untyped_storage().data_ptr()
    assert w._base is conv.weight


def test_gradient_reaches_only_the_shared_slice() -> None:
    torch.manual_seed(0)
    net = ElasticCNN(TINY).train()
    stats_before = net.stages[1][0].project.bn.running_mean.clone()
    arch = CNNArch((1, 1), 0.5, 1, expand_ratio=1)  # channels (2, 4), kernel 1 cropped from 3, hidden = in
    loss = nn.functional.cross_entropy(net(torch.randn(8, 1, 8, 8), arch), torch.tensor([0, 1] * 4))
    loss.backward()

    def only_inside(grad: torch.Tensor, inside: tuple[slice, ...]) -> None:
        mask = torch.ones_like(grad, dtype=torch.bool)
        mask[inside] = False
        assert grad[inside].abs().sum() > 0
        assert torch.all(grad[mask] == 0)

    block = net.stages[1][0]  # 4 -> 8 at full width; (2 -> 4) here, hidden 2 of 8
    only_inside(block.expand.conv.weight.grad, (slice(0, 2), slice(0, 2)))  # (8, 4, 1, 1)
    only_inside(block.depthwise.conv.weight.grad, (slice(0, 2), slice(None), slice(1, 2), slice(1, 2)))
    only_inside(block.project.conv.weight.grad, (slice(0, 4), slice(0, 2)))  # (8, 8, 1, 1)
    only_inside(block.project.bn.weight.grad, (slice(0, 4),))
    only_inside(net.head.linear.weight.grad, (slice(None), slice(0, 4)))
    # the unused second block of each stage gets no gradient
    assert net.stages[0][1].expand.conv.weight.grad is None
    # training-mode BN updates only the active slice of the running stats
    bn = block.project.bn
    assert not torch.equal(bn.running_mean[:4], stats_before[:4])
    assert torch.equal(bn.running_mean[4:], stats_before[4:])


def test_squeeze_excite_slices_and_gates() -> None:
    torch.manual_seed(0)
    se = DynamicSqueezeExcite(16)
    assert se.reduce.weight.shape == (4, 16, 1, 1)
    x = torch.randn(2, 8, 3, 3)
    y = se(x)
    s = x.mean(dim=(2, 3), keepdim=True)
    s = torch.relu(nn.functional.conv2d(s, se.reduce.weight[:2, :8], se.reduce.bias[:2]))
    expected = x * torch.sigmoid(nn.functional.conv2d(s, se.expand.weight[:8, :2], se.expand.bias[:8]))
    assert torch.allclose(y, expected)
    assert torch.allclose(se.extract(8)(x), y, atol=1e-6)


# --- export ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("squeeze_excite", [False, True])
def test_torchscript_roundtrip(tmp_path, squeeze_excite: bool) -> None:
    space = ElasticCNNSpace(**SMALL_SPACE, kernel_per_block=True, squeeze_excite=squeeze_excite)
    net = warmed_supernet(space, 3, 8)
    x = torch.randn(4, 3, 8, 8)
    for i, arch in enumerate([space.largest(), space.smallest(), space.sample(np.random.default_rng(3))]):
        scripted = torch.jit.script(net.extract(arch).eval())
        path = tmp_path / f"subnet{i}.pt"
        scripted.save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            assert max_diff(loaded(x), net(x, arch)) < 1e-5


@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
def test_onnx_export_matches(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    space = ElasticCNNSpace(**SMALL_SPACE, squeeze_excite=True)
    net = warmed_supernet(space, 1, 8)
    arch = space.largest()
    sub = net.extract(arch).eval()
    x = torch.randn(2, 1, 8, 8)
    path = tmp_path / "subnet.onnx"
    torch.onnx.export(sub, (x,), str(path), dynamo=False, input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert max_diff(torch.from_numpy(got), net(x, arch)) < 1e-4


# --- shape, params, config ---------------------------------------------------------------------------


def test_param_counts() -> None:
    space = ElasticCNNSpace(**SMALL_SPACE)
    net = ElasticCNN.from_space(space, (1, 8, 8), num_classes=10)
    assert count_params(net.extract(space.smallest())) < count_params(net.extract(space.largest()))
    assert count_params(net.extract(space.largest())) <= count_params(net)

    tiny = ElasticCNN(TINY)
    # stem 1->4 (3x3) + BN; per block: expand in->2*in (1x1) + BN, depthwise 3x3 + BN, project -> out + BN
    stem, head = 1 * 4 * 9 + 2 * 4, 8 * 2 + 2
    block0 = (4 * 8 + 2 * 8) + (8 * 9 + 2 * 8) + (8 * 4 + 2 * 4)
    block1 = (4 * 8 + 2 * 8) + (8 * 9 + 2 * 8) + (8 * 8 + 2 * 8)
    arch = CNNArch((1, 1), 1.0, 3, expand_ratio=2)
    assert count_params(tiny.extract(arch)) == stem + block0 + block1 + head == 454
    # squeeze-excite on the 8 hidden channels: 8 -> 2 -> 8 with biases, in both blocks
    with_se = ElasticCNN(dataclasses.replace(TINY, squeeze_excite=True))
    assert count_params(with_se.extract(arch)) == 454 + 2 * ((8 * 2 + 2) + (2 * 8 + 8))
    assert count_params(nn.BatchNorm2d(5)) == 10  # buffers are not counted


def test_strides_and_residuals() -> None:
    net = ElasticCNN(ElasticCNNConfig(1, 2, (4, 8, 8), max_depth=2, max_kernel_size=3))
    sub = net.extract(CNNArch((2, 2, 2), 1.0, 3))
    assert [b.depthwise[0].stride[0] for b in sub.blocks] == [1, 1, 2, 1, 2, 1]
    assert [b.residual for b in sub.blocks] == [True, True, False, True, False, True]
    assert sub(torch.randn(1, 1, 8, 8)).shape == (1, 2)


def test_config_roundtrip_through_json() -> None:
    space = ElasticCNNSpace(
        stage_channels=[8, 16, 24],
        depth=[1, 2],
        kernel_size=[1, 3, 7],
        expand_ratio=[3, 6],
        squeeze_excite=True,
    )
    config = ElasticCNNConfig.from_space(space, (3, 32, 32), num_classes=5)
    assert config == ElasticCNNConfig(3, 5, (8, 16, 24), 2, 7, max_expand_ratio=6, squeeze_excite=True)
    assert ElasticCNNConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    net = ElasticCNN.from_space(space, (3, 32, 32), 5)
    assert isinstance(net, Supernet) and net.config == config
    clone = ElasticCNN.from_config_dict(json.loads(json.dumps(net.config.to_dict())))
    clone.load_state_dict(net.state_dict())
    with pytest.raises(InvalidInputError):
        ElasticCNNConfig(1, 2, (4,), max_depth=1, max_kernel_size=4)
    with pytest.raises(InvalidInputError):
        ElasticCNNConfig(1, 2, (4,), max_depth=1, max_kernel_size=3, max_expand_ratio=0)
    with pytest.raises(InvalidInputError, match="not an elastic CNN config"):
        ElasticCNNConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "max_expand_ratio"})


@pytest.mark.parametrize("shape", [(1, 8), (8,), (1, 8, 8, 8), (0, 8, 8)])
def test_from_space_needs_an_image_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInputError) as info:
        ElasticCNN.from_space(ElasticCNNSpace(), shape, 10)
    assert info.value.loc == ("input_shape",)


# --- invalid architectures and inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "loc"),
    [
        (CNNArch((1,), 1.0, 3), ("arch", "depth")),
        (CNNArch((1, 1, 1), 1.0, 3), ("arch", "depth")),
        (CNNArch((3, 1), 1.0, 3), ("arch", "depth")),
        (CNNArch((0, 1), 1.0, 3), ("arch", "depth")),
        (CNNArch((1, 1), 0.0, 3), ("arch", "width_mult")),
        (CNNArch((1, 1), 1.5, 3), ("arch", "width_mult")),
        (CNNArch((1, 1), float("nan"), 3), ("arch", "width_mult")),
        (CNNArch((1, 1), 1.0, 2), ("arch", "kernel_size")),
        (CNNArch((1, 1), 1.0, 5), ("arch", "kernel_size")),
        (CNNArch((1, 1), 1.0, 3, ((3,), (4,))), ("arch", "kernel_size")),
        (CNNArch((1, 1), 1.0, 3, ((3,), (3, 3))), ("arch", "block_kernels")),
        (CNNArch((1, 1), 1.0, 3, expand_ratio=0), ("arch", "expand_ratio")),
        (CNNArch((1, 1), 1.0, 3, expand_ratio=3), ("arch", "expand_ratio")),
        (CNNArch((1, 1), 1.0, 3, None, 2, ((2,), (3,))), ("arch", "expand_ratio")),
        (CNNArch((2, 1), 1.0, 3, None, 2, ((2,), (2,))), ("arch", "block_expands")),
    ],
)
def test_invalid_arch_raises(arch: CNNArch, loc: tuple[str, ...]) -> None:
    net = ElasticCNN(TINY)
    with pytest.raises(InvalidInputError) as exc_info:
        net(torch.randn(2, 1, 8, 8), arch)
    assert exc_info.value.loc == loc
    with pytest.raises(InvalidInputError):
        net.extract(arch)


def test_wrong_input_channels_raises() -> None:
    with pytest.raises(InvalidInputError):
        ElasticCNN(TINY)(torch.randn(2, 3, 8, 8), CNNArch((1, 1), 1.0, 3))


# --- the space -------------------------------------------------------------------------------------


def test_default_space() -> None:
    space = ElasticCNNSpace()
    assert isinstance(space, ArchSpace) and space.family == "elastic_cnn"
    assert space.expand_ratio == [2, 4] and not space.squeeze_excite
    assert [p.name for p in space.params()] == [
        "depth_s0",
        "depth_s1",
        "width_mult",
        "kernel_size",
        "expand_ratio",
    ]
    assert space.size == 3**2 * 3 * 2 * 2
    assert space.largest() == CNNArch((3, 3), 1.0, 5, expand_ratio=4)
    assert space.smallest() == CNNArch((1, 1), 0.5, 3, expand_ratio=2)
    # specs written before expand ratios existed stay valid
    old = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]}
    assert ElasticCNNSpace.model_validate(old | {"kernel_size": [3], "kernel_per_block": True}).size


def test_per_block_params_exist_only_for_blocks_the_depth_includes() -> None:
    space = ElasticCNNSpace(kernel_per_block=True, expand_per_block=True)
    params = {p.name: p for p in space.params()}
    assert params["kernel_s0_b0"].condition is None and params["expand_s1_b0"].condition is None
    assert params["kernel_s1_b2"].condition.values == (3,)
    assert params["expand_s0_b1"].condition.parent == "depth_s0"
    assert params["expand_s0_b1"].condition.values == (2, 3)
    assert "kernel_size" not in params and "expand_ratio" not in params
    config = {"depth_s0": 1, "depth_s1": 3, "width_mult": 0.5, "kernel_s0_b0": 5, "expand_s0_b0": 2}
    config |= {"kernel_s1_b0": 3, "kernel_s1_b1": 5, "kernel_s1_b2": 3}
    config |= {"expand_s1_b0": 4, "expand_s1_b1": 2, "expand_s1_b2": 2}
    arch = space.validate_arch(config)
    assert arch.block_kernels == ((5,), (3, 5, 3)) and arch.kernel_size == 5
    assert arch.block_expands == ((2,), (4, 2, 2)) and arch.expand_ratio == 4
    assert arch.expand_at(1, 0) == 4 and arch.kernel_at(1, 1) == 5
    assert space.config_from_arch(arch) == config
    rng = np.random.default_rng(0)
    for _ in range(20):
        sampled = space.sample(rng)
        names = set(space.config_from_arch(sampled))
        assert {f"kernel_s0_b{b}" for b in range(sampled.depth[0])} <= names
        assert not {f"expand_s0_b{b}" for b in range(sampled.depth[0], 3)} & names
    with pytest.raises(InvalidInputError, match="inactive"):
        space.validate_arch(config | {"expand_s0_b1": 2})
    # (per-block choices summed over depths)^stages x widths, kernels and expands each 2 per block
    assert space.size == (4 + 16 + 64) ** 2 * 3


def test_global_and_per_block_mixed_and_roundtrip() -> None:
    space = ElasticCNNSpace(**SMALL_SPACE, expand_per_block=True)
    rng = np.random.default_rng(1)
    for _ in range(10):
        arch = space.sample(rng)
        assert arch.block_kernels is None and arch.block_expands is not None
        assert space.arch_from_config(space.config_from_arch(arch)) == arch
        assert CNNArch.from_config(json.loads(json.dumps(arch.to_config()))) == arch
    assert space.size == (3 + 9) ** 2 * 3 * 3


def test_cnn_arch_defaults_and_old_configs() -> None:
    arch = CNNArch((2, 1), 0.75, 3)
    assert arch.expand_ratio == 1 and arch.expands() == [1, 1, 1] and arch.kernels() == [3, 3, 3]
    assert CNNArch.from_config({"depth": [2, 1], "width_mult": 0.75, "kernel_size": 3}) == arch


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expand_ratio", [0, 2]),
        ("expand_ratio", [9]),
        ("expand_ratio", [2, 2]),
        ("expand_ratio", []),
        ("kernel_size", [4]),
        ("depth", [0, 1]),
        ("width_mult", [1.5]),
        ("squeeze_excite", "maybe"),
        ("expand_ratios", [2]),
    ],
)
def test_invalid_space_choices_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        ElasticCNNSpace.model_validate({"family": "elastic_cnn", field: value})
    assert (field,) in [tuple(e["loc"]) for e in info.value.errors()]


def test_malformed_config_raises() -> None:
    with pytest.raises(InvalidInputError, match="malformed"):
        ElasticCNNSpace().arch_from_config(
            {"depth_s0": 1, "depth_s1": 1, "width_mult": 1.0, "kernel_size": 3}
        )
    with pytest.raises(InvalidInputError, match="expand_ratio=3"):
        ElasticCNNSpace().validate_arch(
            {"depth_s0": 1, "depth_s1": 1, "width_mult": 1.0, "kernel_size": 3, "expand_ratio": 3}
        )

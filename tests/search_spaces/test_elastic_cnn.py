"""Tests of the elastic CNN supernet: extraction, weight sharing, TorchScript export and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces.elastic_cnn import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicLinear,
    ElasticCNN,
    ElasticCNNConfig,
    SubnetCNN,
    count_params,
)
from search_spaces.elastic_cnn_space import CNNArch, ElasticCNNSpace
from supernas.errors import InvalidInputError

TINY = ElasticCNNConfig(in_channels=1, num_classes=2, stage_channels=(4, 8), max_depth=2, max_kernel_size=3)


def archs_of(space: ElasticCNNSpace, n_random: int = 10, seed: int = 0) -> list[CNNArch]:
    rng = np.random.default_rng(seed)
    return [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]


def warmed_supernet(space: ElasticCNNSpace, in_channels: int, size: int, seed: int = 0) -> ElasticCNN:
    """A supernet with non-trivial BN affine params and running stats, in eval mode."""
    torch.manual_seed(seed)
    net = ElasticCNN(ElasticCNNConfig.from_space(space, in_channels=in_channels, num_classes=10))
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


@pytest.mark.parametrize(("in_channels", "size"), [(1, 8), (3, 28)])
def test_extracted_subnet_equals_supernet(in_channels: int, size: int) -> None:
    space = ElasticCNNSpace()
    net = warmed_supernet(space, in_channels, size)
    bn = net.stages[0][0].bn
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
    x = torch.randn(4, in_channels, size, size)
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


def test_torchscript_roundtrip(tmp_path) -> None:
    space = ElasticCNNSpace()
    net = warmed_supernet(space, 3, 16)
    x = torch.randn(4, 3, 16, 16)
    for i, arch in enumerate([space.largest(), space.smallest(), CNNArch((2, 1), 0.75, 3)]):
        sub = net.extract(arch).eval()
        scripted = torch.jit.script(sub)
        path = tmp_path / f"subnet{i}.pt"
        scripted.save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            assert max_diff(loaded(x), net(x, arch)) < 1e-5


def test_param_counts() -> None:
    space = ElasticCNNSpace()
    net = ElasticCNN(ElasticCNNConfig.from_space(space, in_channels=1, num_classes=10))
    assert count_params(net.extract(space.smallest())) < count_params(net.extract(space.largest()))
    assert count_params(net.extract(space.largest())) <= count_params(net)

    tiny = ElasticCNN(TINY)
    # stem 1->4 (3x3) + BN; stage 0 block 4->4 + BN; stage 1 block 4->8 + BN; linear 8->2
    full = (1 * 4 * 9 + 2 * 4) + (4 * 4 * 9 + 2 * 4) + (4 * 8 * 9 + 2 * 8) + (8 * 2 + 2)
    assert count_params(tiny.extract(CNNArch((1, 1), 1.0, 3))) == full == 518
    # width 0.5: channels (2, 4); kernel 1
    half = (1 * 2 * 9 + 2 * 2) + (2 * 2 * 1 + 2 * 2) + (2 * 4 * 1 + 2 * 4) + (4 * 2 + 2)
    assert count_params(tiny.extract(CNNArch((1, 1), 0.5, 1))) == half
    # buffers are not counted
    assert count_params(nn.BatchNorm2d(5)) == 10


def test_kernel_is_centre_crop_of_largest() -> None:
    torch.manual_seed(0)
    net = ElasticCNN(ElasticCNNConfig(1, 3, (4, 8), max_depth=2, max_kernel_size=5))
    sub = net.extract(CNNArch((2, 2), 1.0, 3))
    full = net.stages[0][1].conv.weight  # (4, 4, 5, 5)
    assert sub.blocks[1].conv.weight.shape == (4, 4, 3, 3)
    assert torch.equal(sub.blocks[1].conv.weight, full[:, :, 1:4, 1:4])
    sub1 = net.extract(CNNArch((2, 2), 0.5, 1))
    assert torch.equal(sub1.blocks[1].conv.weight, full[:2, :2, 2:3, 2:3])
    assert sub1.blocks[1].conv.padding == (0, 0)
    # the stem keeps its 3x3 kernel whatever the arch's kernel
    assert sub1.stem.conv.weight.shape == (2, 1, 3, 3)


def test_gradient_step_updates_only_the_shared_slice() -> None:
    torch.manual_seed(0)
    net = ElasticCNN(TINY).train()
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    stats_before = net.stages[1][0].bn.running_mean.clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    arch = CNNArch((1, 1), 0.5, 1)  # channels (2, 4), kernel 1 cropped from 3
    loss = nn.functional.cross_entropy(net(torch.randn(8, 1, 8, 8), arch), torch.tensor([0, 1] * 4))
    loss.backward()
    opt.step()

    w_before, w_after = (
        before["stages.1.0.conv.weight"],
        net.stages[1][0].conv.weight.detach(),
    )  # (8, 4, 3, 3)
    inside = (slice(0, 4), slice(0, 2), slice(1, 2), slice(1, 2))
    assert not torch.equal(w_after[inside], w_before[inside])
    mask = torch.ones_like(w_after, dtype=torch.bool)
    mask[inside] = False
    assert torch.equal(w_after[mask], w_before[mask])
    # the unused second block of each stage is untouched
    assert torch.equal(net.stages[0][1].conv.weight.detach(), before["stages.0.1.conv.weight"])
    # the classifier reads 4 of 8 features; BN slices likewise
    head_w = net.head.linear.weight.detach()
    assert not torch.equal(head_w[:, :4], before["head.linear.weight"][:, :4])
    assert torch.equal(head_w[:, 4:], before["head.linear.weight"][:, 4:])
    bn = net.stages[1][0].bn
    assert torch.equal(bn.weight.detach()[4:], before["stages.1.0.bn.weight"][4:])
    # training-mode BN updates only the active slice of the running stats
    assert not torch.equal(bn.running_mean[:4], stats_before[:4])
    assert torch.equal(bn.running_mean[4:], stats_before[4:])


def test_extracted_subnet_is_independent_and_fine_tunable() -> None:
    space = ElasticCNNSpace()
    net = warmed_supernet(space, 1, 8)
    arch = CNNArch((2, 3), 0.75, 3)
    sub = net.extract(arch)
    assert isinstance(sub, SubnetCNN)
    assert not any(
        isinstance(m, (ElasticCNN, DynamicConv2d, DynamicBatchNorm2d, DynamicLinear)) for m in sub.modules()
    )
    net_ptrs = {t.untyped_storage().data_ptr() for t in [*net.parameters(), *net.buffers()]}
    assert all(t.untyped_storage().data_ptr() not in net_ptrs for t in [*sub.parameters(), *sub.buffers()])

    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        reference = net(x, arch)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # fine-tune the extracted copy in train mode; the supernet must not move
    sub.train()
    opt = torch.optim.SGD(sub.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(sub(torch.randn(8, 1, 8, 8)), torch.randint(0, 10, (8,)))
        loss.backward()
        opt.step()
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
    ],
)
def test_invalid_arch_raises(arch: CNNArch, loc: tuple[str, ...]) -> None:
    net = ElasticCNN(TINY)
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(InvalidInputError) as exc_info:
        net(x, arch)
    assert exc_info.value.loc == loc
    with pytest.raises(InvalidInputError):
        net.extract(arch)


def test_wrong_input_channels_raises() -> None:
    with pytest.raises(InvalidInputError):
        ElasticCNN(TINY)(torch.randn(2, 3, 8, 8), CNNArch((1, 1), 1.0, 3))


def test_config_roundtrip() -> None:
    space = ElasticCNNSpace(stage_channels=[8, 16, 24], depth=[1, 2], kernel_size=[1, 3, 7])
    config = ElasticCNNConfig.from_space(space, in_channels=3, num_classes=5)
    assert config == ElasticCNNConfig(3, 5, (8, 16, 24), max_depth=2, max_kernel_size=7)
    assert ElasticCNNConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(InvalidInputError):
        ElasticCNNConfig(1, 2, (4,), max_depth=1, max_kernel_size=4)


def test_strides_and_residuals() -> None:
    net = ElasticCNN(ElasticCNNConfig(1, 2, (4, 8, 8), max_depth=2, max_kernel_size=3))
    sub = net.extract(CNNArch((2, 2, 2), 1.0, 3))
    strides = [b.conv.stride[0] for b in sub.blocks]
    residuals = [b.residual for b in sub.blocks]
    assert strides == [1, 1, 2, 1, 2, 1]
    assert residuals == [True, True, False, True, False, True]
    assert not sub.stem.residual

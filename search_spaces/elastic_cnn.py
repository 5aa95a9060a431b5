"""The elastic CNN supernet: one set of weights that runs, and extracts, every architecture of an
``ElasticCNNSpace``.

Owns the supernet's config, its dynamic ops (convolution, batch norm and linear layers that slice the largest
weights, Once-for-All style), the supernet itself and the plain standalone sub-network it extracts. Elastic
dimensions: depth (the first ``d`` blocks of each stage run), width (the first ``c`` channels of every weight)
and kernel size (the centre crop of the largest kernel). The architecture is passed to ``forward`` explicitly;
the supernet holds no "active sub-network" state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.elastic_cnn_space import CNNArch, ElasticCNNSpace
from supernas.errors import InvalidInputError

STEM_KERNEL_SIZE = 3


@dataclass(frozen=True)
class ElasticCNNConfig:
    in_channels: int
    num_classes: int
    stage_channels: tuple[int, ...]  # channels of each stage at width 1.0
    max_depth: int  # largest depth choice (blocks per stage)
    max_kernel_size: int  # largest kernel choice (odd)

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.num_classes < 1 or self.max_depth < 1:
            raise InvalidInputError("in_channels, num_classes and max_depth must be positive")
        if not self.stage_channels or any(c < 1 for c in self.stage_channels):
            raise InvalidInputError("stage_channels must be a non-empty tuple of positive ints")
        if self.max_kernel_size < 1 or self.max_kernel_size % 2 == 0:
            raise InvalidInputError(f"max_kernel_size must be odd and positive, got {self.max_kernel_size}")

    @classmethod
    def from_space(cls, space: ElasticCNNSpace, in_channels: int, num_classes: int) -> ElasticCNNConfig:
        return cls(
            in_channels=in_channels,
            num_classes=num_classes,
            stage_channels=tuple(space.stage_channels),
            max_depth=max(space.depth),
            max_kernel_size=max(space.kernel_size),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stage_channels": list(self.stage_channels)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElasticCNNConfig:
        return cls(
            in_channels=int(d["in_channels"]),
            num_classes=int(d["num_classes"]),
            stage_channels=tuple(int(c) for c in d["stage_channels"]),
            max_depth=int(d["max_depth"]),
            max_kernel_size=int(d["max_kernel_size"]),
        )


def count_params(module: nn.Module) -> int:
    """Number of parameters (not buffers) of ``module``."""
    return sum(p.numel() for p in module.parameters())


# --- dynamic ops: slice the largest weights ------------------------------------------------------


class DynamicConv2d(nn.Module):
    """A bias-free conv whose active weight is the first ``out x in`` channels and the centre ``k x k``."""

    def __init__(self, max_in: int, max_out: int, max_kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.max_kernel_size = max_kernel_size
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max_out, max_in, max_kernel_size, max_kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def active_weight(self, in_channels: int, out_channels: int, kernel_size: int) -> Tensor:
        start = (self.max_kernel_size - kernel_size) // 2
        end = start + kernel_size
        return self.weight[:out_channels, :in_channels, start:end, start:end]  # (C_out, C_in, k, k)

    def forward(self, x: Tensor, out_channels: int, kernel_size: int) -> Tensor:
        weight = self.active_weight(x.shape[1], out_channels, kernel_size)
        return F.conv2d(x, weight, stride=self.stride, padding=kernel_size // 2)  # (B, C_out, H', W')

    def extract(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
        w = self.active_weight(in_channels, out_channels, kernel_size)
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, self.stride, kernel_size // 2, bias=False)
        conv = conv.to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
        return conv


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over the first ``C`` channels; training updates only that slice of the running stats."""

    def __init__(self, max_channels: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(max_channels))
        self.bias = nn.Parameter(torch.zeros(max_channels))
        self.register_buffer("running_mean", torch.zeros(max_channels))
        self.register_buffer("running_var", torch.ones(max_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]  # x: (B, C, H, W)
        if self.training:
            self.num_batches_tracked.add_(1)
        # The running-stat slices are views, so batch_norm's in-place update writes into the full buffers.
        return F.batch_norm(
            x,
            self.running_mean[:c],
            self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )  # (B, C, H, W)

    def extract(self, channels: int) -> nn.BatchNorm2d:
        w = self.weight
        bn = nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            bn.weight.copy_(self.weight[:channels])
            bn.bias.copy_(self.bias[:channels])
            bn.running_mean.copy_(self.running_mean[:channels])
            bn.running_var.copy_(self.running_var[:channels])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn


class DynamicLinear(nn.Module):
    """A linear layer reading only the first ``in`` input features."""

    def __init__(self, max_in: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in, out_features)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.linear.weight[:, : x.shape[1]]  # (out, in)
        return F.linear(x, weight, self.linear.bias)  # (B, out)

    def extract(self, in_features: int) -> nn.Linear:
        w = self.linear.weight
        linear = nn.Linear(in_features, w.shape[0]).to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w[:, :in_features])
            linear.bias.copy_(self.linear.bias)
        return linear


# --- blocks ----------------------------------------------------------------------------------------


class ElasticBlock(nn.Module):
    """conv(k x k) + BN + ReLU, plus the input when ``residual`` (stride 1 and equal channels)."""

    def __init__(self, max_in: int, max_out: int, max_kernel_size: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, max_kernel_size, stride)
        self.bn = DynamicBatchNorm2d(max_out)
        self.residual = residual

    def forward(self, x: Tensor, out_channels: int, kernel_size: int) -> Tensor:
        y = F.relu(self.bn(self.conv(x, out_channels, kernel_size)))  # (B, C_out, H', W')
        return x + y if self.residual else y

    def extract(self, in_channels: int, out_channels: int, kernel_size: int) -> SubnetBlock:
        conv = self.conv.extract(in_channels, out_channels, kernel_size)
        return SubnetBlock(conv, self.bn.extract(out_channels), self.residual)


class SubnetBlock(nn.Module):
    """The plain, TorchScript-able form of an ``ElasticBlock``."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, residual: bool) -> None:
        super().__init__()
        self.conv = conv
        self.bn = bn
        self.relu = nn.ReLU()
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn(self.conv(x)))  # (B, C_out, H', W')
        if self.residual:
            y = y + x
        return y


class SubnetCNN(nn.Module):
    """A standalone sub-network extracted from an ``ElasticCNN``: plain torch layers, its own weights."""

    def __init__(self, stem: SubnetBlock, blocks: list[SubnetBlock], head: nn.Linear) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))  # (B, C, H', W')
        x = torch.flatten(self.pool(x), 1)  # (B, C)
        return self.head(x)  # (B, num_classes)


# --- the supernet ----------------------------------------------------------------------------------


class ElasticCNN(nn.Module):
    """Weight-sharing CNN: a stem, stages of elastic blocks (the first of each later stage with stride 2),
    global average pooling and a linear classifier."""

    def __init__(self, config: ElasticCNNConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.stage_channels
        self.stem = ElasticBlock(config.in_channels, channels[0], STEM_KERNEL_SIZE, stride=1, residual=False)
        stages = []
        for s, out_ch in enumerate(channels):
            blocks = []
            for i in range(config.max_depth):
                in_ch = channels[s - 1] if s > 0 and i == 0 else out_ch
                stride = 2 if s > 0 and i == 0 else 1
                residual = stride == 1 and in_ch == out_ch
                blocks.append(ElasticBlock(in_ch, out_ch, config.max_kernel_size, stride, residual))
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.head = DynamicLinear(channels[-1], config.num_classes)

    def active_channels(self, arch: CNNArch) -> list[int]:
        """Channels of each stage under ``arch``'s width multiplier."""
        return [max(1, round(c * arch.width_mult)) for c in self.config.stage_channels]

    def check_arch(self, arch: CNNArch) -> None:
        """Raise ``InvalidInputError`` unless this supernet can run ``arch``."""
        cfg = self.config
        if len(arch.depth) != len(cfg.stage_channels):
            raise InvalidInputError(
                f"arch has {len(arch.depth)} stages, the supernet {len(cfg.stage_channels)}",
                ("arch", "depth"),
            )
        if any(d < 1 or d > cfg.max_depth for d in arch.depth):
            raise InvalidInputError(
                f"depth {list(arch.depth)} must be between 1 and {cfg.max_depth} per stage", ("arch", "depth")
            )
        if not (math.isfinite(arch.width_mult) and 0.0 < arch.width_mult <= 1.0):
            raise InvalidInputError(f"width_mult {arch.width_mult} must be in (0, 1]", ("arch", "width_mult"))
        if arch.block_kernels is not None and [len(k) for k in arch.block_kernels] != list(arch.depth):
            raise InvalidInputError(
                "block_kernels must give one kernel per active block", ("arch", "block_kernels")
            )
        for k in [arch.kernel_size, *arch.kernels()]:
            if k < 1 or k % 2 == 0 or k > cfg.max_kernel_size:
                raise InvalidInputError(
                    f"kernel_size {k} must be odd and at most {cfg.max_kernel_size}", ("arch", "kernel_size")
                )

    def forward(self, x: Tensor, arch: CNNArch) -> Tensor:
        self.check_arch(arch)
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"expected input (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}", ("x",)
            )
        widths = self.active_channels(arch)
        x = self.stem(x, widths[0], STEM_KERNEL_SIZE)  # (B, C_0, H, W)
        for s, (stage, width, depth) in enumerate(zip(self.stages, widths, arch.depth, strict=True)):
            for b, block in enumerate(stage[:depth]):
                x = block(x, width, arch.kernel_at(s, b))  # (B, C_s, H_s, W_s)
        x = x.mean(dim=(2, 3))  # (B, C_last)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: CNNArch) -> SubnetCNN:
        """A standalone copy of ``arch``'s sub-network (cloned weights and BN stats, no link to the supernet).
        In eval mode its outputs equal ``self(x, arch)``; it can be fine-tuned and TorchScript-compiled."""
        self.check_arch(arch)
        widths = self.active_channels(arch)
        stem = self.stem.extract(self.config.in_channels, widths[0], STEM_KERNEL_SIZE)
        blocks = []
        in_ch = widths[0]
        for s, (stage, width, depth) in enumerate(zip(self.stages, widths, arch.depth, strict=True)):
            for b, block in enumerate(stage[:depth]):
                blocks.append(block.extract(in_ch, width, arch.kernel_at(s, b)))
                in_ch = width
        subnet = SubnetCNN(stem, blocks, self.head.extract(widths[-1]))
        return subnet.train(self.training)

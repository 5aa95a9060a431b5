"""The elastic CNN supernet: one set of weights that runs, and extracts, every architecture of an
``ElasticCNNSpace``.

Once-for-All over a MobileNetV3-style network: a 3x3 stem, stages of inverted-bottleneck (MBConv) blocks,
global average pooling and a linear classifier. Owns the supernet's config, its dynamic ops (convolutions,
batch norm, squeeze-excite and linear layers that slice the largest weights), the supernet itself and the
plain standalone sub-network it extracts. Elastic dimensions:

- depth: the first ``d`` blocks of each stage run;
- width: every layer uses the first ``c`` channels of its weights;
- kernel size: the depthwise conv uses the centre ``k x k`` crop of the largest kernel;
- expand ratio: a block's hidden width is its input channels times the ratio (the first hidden channels).

The architecture is passed to ``forward`` explicitly; the supernet holds no "active sub-network" state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.elastic_cnn_space import CNNArch, ElasticCNNSpace
from search_spaces.family import ArchSpace
from search_spaces.supernet import Supernet, count_params
from supernas.errors import InvalidInputError

__all__ = [
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicLinear",
    "DynamicSqueezeExcite",
    "ElasticCNN",
    "ElasticCNNConfig",
    "ElasticConvBN",
    "ElasticMBConv",
    "SubnetBlock",
    "SubnetCNN",
    "SubnetSqueezeExcite",
    "count_params",  # re-exported from search_spaces.supernet for older imports
]

STEM_KERNEL_SIZE = 3
SE_REDUCTION = 4  # squeeze-excite bottleneck: hidden channels // 4


@dataclass(frozen=True)
class ElasticCNNConfig:
    """Shape of the largest network; JSON-able through ``to_dict`` / ``from_dict`` (stored in checkpoints)."""

    in_channels: int
    num_classes: int
    stage_channels: tuple[int, ...]  # channels of each stage at width 1.0
    max_depth: int  # largest depth choice (blocks per stage)
    max_kernel_size: int  # largest depthwise kernel choice (odd)
    max_expand_ratio: int = 1  # largest expand ratio choice
    squeeze_excite: bool = False  # every block has a squeeze-excite module

    def __post_init__(self) -> None:
        if min(self.in_channels, self.num_classes, self.max_depth, self.max_expand_ratio) < 1:
            raise InvalidInputError(
                "in_channels, num_classes, max_depth and max_expand_ratio must be positive"
            )
        if not self.stage_channels or any(c < 1 for c in self.stage_channels):
            raise InvalidInputError("stage_channels must be a non-empty tuple of positive ints")
        if self.max_kernel_size < 1 or self.max_kernel_size % 2 == 0:
            raise InvalidInputError(f"max_kernel_size must be odd and positive, got {self.max_kernel_size}")

    @classmethod
    def from_space(
        cls, space: ElasticCNNSpace, input_shape: Sequence[int], num_classes: int
    ) -> ElasticCNNConfig:
        """The config that runs every architecture of ``space`` on images of ``input_shape`` (C, H, W)."""
        if len(input_shape) != 3 or any(int(n) < 1 for n in input_shape):
            raise InvalidInputError(
                f"the elastic CNN takes images (C, H, W), got input shape {tuple(input_shape)}",
                ("input_shape",),
            )
        return cls(
            in_channels=int(input_shape[0]),
            num_classes=num_classes,
            stage_channels=tuple(space.stage_channels),
            max_depth=max(space.depth),
            max_kernel_size=max(space.kernel_size),
            max_expand_ratio=max(space.expand_ratio),
            squeeze_excite=space.squeeze_excite,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stage_channels": list(self.stage_channels)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElasticCNNConfig:
        try:
            return cls(
                in_channels=int(d["in_channels"]),
                num_classes=int(d["num_classes"]),
                stage_channels=tuple(int(c) for c in d["stage_channels"]),
                max_depth=int(d["max_depth"]),
                max_kernel_size=int(d["max_kernel_size"]),
                max_expand_ratio=int(d["max_expand_ratio"]),
                squeeze_excite=bool(d["squeeze_excite"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not an elastic CNN config: {exc!r}", ("config",)) from exc


# --- dynamic ops: slice the largest weights ------------------------------------------------------


class DynamicConv2d(nn.Module):
    """A bias-free conv whose active weight is the first ``out x in`` channels and the centre ``k x k``.

    With ``depthwise`` it has one filter per channel (``groups`` = channels, ``in`` = ``out``)."""

    def __init__(
        self, max_in: int, max_out: int, max_kernel_size: int, stride: int = 1, depthwise: bool = False
    ) -> None:
        super().__init__()
        if depthwise and max_in != max_out:
            raise ValueError("a depthwise conv has as many output channels as input channels")
        self.max_kernel_size = max_kernel_size
        self.stride = stride
        self.depthwise = depthwise
        k = max_kernel_size
        self.weight = nn.Parameter(torch.empty(max_out, 1 if depthwise else max_in, k, k))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def active_weight(self, in_channels: int, out_channels: int, kernel_size: int) -> Tensor:
        start = (self.max_kernel_size - kernel_size) // 2
        end = start + kernel_size
        in_per_group = 1 if self.depthwise else in_channels
        return self.weight[:out_channels, :in_per_group, start:end, start:end]  # (C_out, C_in/groups, k, k)

    def forward(self, x: Tensor, out_channels: int, kernel_size: int) -> Tensor:
        in_channels = x.shape[1]  # x: (B, C_in, H, W)
        weight = self.active_weight(in_channels, out_channels, kernel_size)
        groups = in_channels if self.depthwise else 1
        return F.conv2d(
            x, weight, stride=self.stride, padding=kernel_size // 2, groups=groups
        )  # (B, C_out, H', W')

    def extract(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
        w = self.active_weight(in_channels, out_channels, kernel_size)
        groups = in_channels if self.depthwise else 1
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, self.stride, kernel_size // 2, groups=groups, bias=False
        )
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


def _se_channels(channels: int) -> int:
    """Bottleneck width of the squeeze-excite module of a ``channels``-wide layer."""
    return max(1, channels // SE_REDUCTION)


class DynamicSqueezeExcite(nn.Module):
    """Squeeze-and-excitation over the first ``C`` channels: ``x * sigmoid(expand(relu(reduce(mean(x)))))``,
    with ``reduce`` to ``C // 4`` channels; both 1x1 convs slice the largest weights."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(max_channels, _se_channels(max_channels), 1)
        self.expand = nn.Conv2d(_se_channels(max_channels), max_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]  # x: (B, C, H, W)
        mid = _se_channels(c)
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        s = F.relu(F.conv2d(s, self.reduce.weight[:mid, :c], self.reduce.bias[:mid]))  # (B, C/4, 1, 1)
        s = torch.sigmoid(F.conv2d(s, self.expand.weight[:c, :mid], self.expand.bias[:c]))  # (B, C, 1, 1)
        return x * s  # (B, C, H, W)

    def extract(self, channels: int) -> SubnetSqueezeExcite:
        mid = _se_channels(channels)
        reduce = _copy_conv(self.reduce, nn.Conv2d(channels, mid, 1), mid, channels)
        expand = _copy_conv(self.expand, nn.Conv2d(mid, channels, 1), channels, mid)
        return SubnetSqueezeExcite(reduce, expand)


def _copy_conv(source: nn.Conv2d, target: nn.Conv2d, out_channels: int, in_channels: int) -> nn.Conv2d:
    """``target`` holding a copy of the first ``out x in`` channels of ``source``'s weight and bias."""
    w = source.weight
    target = target.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        target.weight.copy_(w[:out_channels, :in_channels])
        if source.bias is not None and target.bias is not None:
            target.bias.copy_(source.bias[:out_channels])
    return target


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


class ElasticConvBN(nn.Module):
    """conv + BN (+ ReLU): the stem, and each of an MBConv block's three layers."""

    def __init__(
        self,
        max_in: int,
        max_out: int,
        max_kernel_size: int,
        stride: int = 1,
        depthwise: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, max_kernel_size, stride, depthwise)
        self.bn = DynamicBatchNorm2d(max_out)
        self.relu = relu

    def forward(self, x: Tensor, out_channels: int, kernel_size: int) -> Tensor:
        x = self.bn(self.conv(x, out_channels, kernel_size))  # (B, C_out, H', W')
        return F.relu(x) if self.relu else x

    def extract(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
        layers: list[nn.Module] = [
            self.conv.extract(in_channels, out_channels, kernel_size),
            self.bn.extract(out_channels),
        ]
        if self.relu:
            layers.append(nn.ReLU())
        return nn.Sequential(*layers)


class ElasticMBConv(nn.Module):
    """Inverted bottleneck (MobileNetV2/V3): 1x1 expand -> k x k depthwise -> optional squeeze-excite ->
    1x1 linear project, plus the input when ``residual`` (stride 1 and equal channels).

    The expand conv stays at ratio 1 too (MobileNetV2 drops it there), so every architecture has the
    same block layout and the extracted module's layers match the supernet's one to one."""

    def __init__(
        self,
        max_in: int,
        max_out: int,
        max_kernel_size: int,
        max_expand_ratio: int,
        stride: int,
        squeeze_excite: bool,
    ) -> None:
        super().__init__()
        max_hidden = max_in * max_expand_ratio
        self.expand = ElasticConvBN(max_in, max_hidden, 1)
        self.depthwise = ElasticConvBN(max_hidden, max_hidden, max_kernel_size, stride, depthwise=True)
        self.se = DynamicSqueezeExcite(max_hidden) if squeeze_excite else None
        self.project = ElasticConvBN(max_hidden, max_out, 1, relu=False)
        self.residual = stride == 1 and max_in == max_out

    def forward(self, x: Tensor, out_channels: int, kernel_size: int, expand_ratio: int) -> Tensor:
        hidden = x.shape[1] * expand_ratio  # x: (B, C_in, H, W)
        h = self.expand(x, hidden, 1)  # (B, C_in * e, H, W)
        h = self.depthwise(h, hidden, kernel_size)  # (B, C_in * e, H', W')
        if self.se is not None:
            h = self.se(h)  # (B, C_in * e, H', W')
        y = self.project(h, out_channels, 1)  # (B, C_out, H', W')
        return x + y if self.residual else y

    def extract(
        self, in_channels: int, out_channels: int, kernel_size: int, expand_ratio: int
    ) -> SubnetBlock:
        hidden = in_channels * expand_ratio
        return SubnetBlock(
            self.expand.extract(in_channels, hidden, 1),
            self.depthwise.extract(hidden, hidden, kernel_size),
            self.se.extract(hidden) if self.se is not None else nn.Identity(),
            self.project.extract(hidden, out_channels, 1),
            self.residual,
        )


# --- the standalone sub-network: plain torch layers only -------------------------------------------


class SubnetSqueezeExcite(nn.Module):
    """The plain form of a ``DynamicSqueezeExcite``."""

    def __init__(self, reduce: nn.Conv2d, expand: nn.Conv2d) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = reduce
        self.relu = nn.ReLU()
        self.expand = expand
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.relu(self.reduce(self.pool(x)))  # (B, C/4, 1, 1)
        return x * self.gate(self.expand(s))  # (B, C, H, W)


class SubnetBlock(nn.Module):
    """The plain, TorchScript- and ONNX-exportable form of an ``ElasticMBConv``."""

    def __init__(
        self,
        expand: nn.Sequential,
        depthwise: nn.Sequential,
        se: nn.Module,
        project: nn.Sequential,
        residual: bool,
    ) -> None:
        super().__init__()
        self.expand = expand
        self.depthwise = depthwise
        self.se = se  # nn.Identity without squeeze-excite
        self.project = project
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))  # (B, C_out, H', W')
        if self.residual:
            y = y + x
        return y


class SubnetCNN(nn.Module):
    """A standalone sub-network extracted from an ``ElasticCNN``: plain torch layers, its own weights."""

    def __init__(self, stem: nn.Sequential, blocks: list[SubnetBlock], head: nn.Linear) -> None:
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


class ElasticCNN(Supernet):
    """Weight-sharing CNN: a 3x3 stem, stages of MBConv blocks (the first of each later stage with
    stride 2), global average pooling and a linear classifier."""

    config_class = ElasticCNNConfig

    def __init__(self, config: ElasticCNNConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.stage_channels
        self.stem = ElasticConvBN(config.in_channels, channels[0], STEM_KERNEL_SIZE)
        self.stages = nn.ModuleList(nn.ModuleList(self._stage_blocks(s)) for s in range(len(channels)))
        self.head = DynamicLinear(channels[-1], config.num_classes)

    def _stage_blocks(self, stage: int) -> list[ElasticMBConv]:
        cfg = self.config
        out_ch = cfg.stage_channels[stage]
        blocks = []
        for i in range(cfg.max_depth):
            first_downsampling = stage > 0 and i == 0
            in_ch = cfg.stage_channels[stage - 1] if first_downsampling else out_ch
            stride = 2 if first_downsampling else 1
            blocks.append(
                ElasticMBConv(
                    in_ch, out_ch, cfg.max_kernel_size, cfg.max_expand_ratio, stride, cfg.squeeze_excite
                )
            )
        return blocks

    @classmethod
    def from_space(cls, space: ArchSpace, input_shape: tuple[int, ...], num_classes: int) -> ElasticCNN:
        if not isinstance(space, ElasticCNNSpace):
            raise InvalidInputError(
                f"expected an elastic_cnn space, got {space.family!r}", ("space", "family")
            )
        return cls(ElasticCNNConfig.from_space(space, input_shape, num_classes))

    def active_channels(self, arch: CNNArch) -> list[int]:
        """Channels of each stage under ``arch``'s width multiplier."""
        return [max(1, round(c * arch.width_mult)) for c in self.config.stage_channels]

    # --- validation ------------------------------------------------------------------------------

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
        self._check_block_lengths(arch)
        for k in [arch.kernel_size, *arch.kernels()]:
            if k < 1 or k % 2 == 0 or k > cfg.max_kernel_size:
                raise InvalidInputError(
                    f"kernel_size {k} must be odd and at most {cfg.max_kernel_size}", ("arch", "kernel_size")
                )
        for e in [arch.expand_ratio, *arch.expands()]:
            if e < 1 or e > cfg.max_expand_ratio:
                raise InvalidInputError(
                    f"expand_ratio {e} must be between 1 and {cfg.max_expand_ratio}", ("arch", "expand_ratio")
                )

    @staticmethod
    def _check_block_lengths(arch: CNNArch) -> None:
        for name, blocks in (("block_kernels", arch.block_kernels), ("block_expands", arch.block_expands)):
            if blocks is not None and [len(stage) for stage in blocks] != list(arch.depth):
                raise InvalidInputError(f"{name} must give one value per active block", ("arch", name))

    # --- running and extracting ------------------------------------------------------------------

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
                x = block(x, width, arch.kernel_at(s, b), arch.expand_at(s, b))  # (B, C_s, H_s, W_s)
        x = x.mean(dim=(2, 3))  # (B, C_last)
        return self.head(x)  # (B, num_classes)

    def extract(self, arch: CNNArch) -> SubnetCNN:
        """A standalone copy of ``arch``'s sub-network (cloned weights and BN stats, no link to the supernet).
        In eval mode its outputs equal ``self(x, arch)``; it can be fine-tuned, TorchScript-compiled and
        exported to ONNX."""
        self.check_arch(arch)
        widths = self.active_channels(arch)
        stem = self.stem.extract(self.config.in_channels, widths[0], STEM_KERNEL_SIZE)
        blocks = []
        in_ch = widths[0]
        for s, (stage, width, depth) in enumerate(zip(self.stages, widths, arch.depth, strict=True)):
            for b, block in enumerate(stage[:depth]):
                blocks.append(block.extract(in_ch, width, arch.kernel_at(s, b), arch.expand_at(s, b)))
                in_ch = width
        subnet = SubnetCNN(stem, blocks, self.head.extract(widths[-1]))
        return subnet.train(self.training)

"""The elastic MLP supernet: one set of weights that runs, and extracts, every architecture of an
``ElasticMLPSpace``.

Owns the supernet's config, the dynamic linear layer (the first ``out x in`` block of the largest weight,
Once-for-All style; the elastic Transformer reuses it), the supernet and the plain standalone sub-network it
extracts. Inputs of any shape are flattened. Elastic dimensions: depth (the first ``d`` hidden layers run),
the width of each hidden layer and one activation for all of them. There is no batch norm, so an extracted
sub-network needs no statistics recalibration. The architecture is passed to ``forward`` explicitly; the
supernet holds no "active sub-network" state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.elastic_mlp_space import ACTIVATIONS, ElasticMLPSpace, MLPArch
from search_spaces.family import ArchSpace
from search_spaces.supernet import Supernet
from supernas.errors import InvalidInputError

ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
}
ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


@dataclass(frozen=True)
class ElasticMLPConfig:
    input_shape: tuple[int, ...]  # one example's shape; flattened to prod(input_shape) features
    num_classes: int
    max_depth: int  # largest depth choice (hidden layers)
    max_width: int  # largest width choice

    def __post_init__(self) -> None:
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise InvalidInputError(
                f"input_shape must be a non-empty tuple of positive ints, got {self.input_shape}",
                ("input_shape",),
            )
        if self.num_classes < 1 or self.max_depth < 1 or self.max_width < 1:
            raise InvalidInputError("num_classes, max_depth and max_width must be positive")

    @property
    def in_features(self) -> int:
        return math.prod(self.input_shape)

    @classmethod
    def from_space(
        cls, space: ElasticMLPSpace, input_shape: tuple[int, ...], num_classes: int
    ) -> ElasticMLPConfig:
        return cls(tuple(input_shape), num_classes, max_depth=max(space.depth), max_width=max(space.width))

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "max_depth": self.max_depth,
            "max_width": self.max_width,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ElasticMLPConfig:
        return cls(
            input_shape=tuple(int(s) for s in d["input_shape"]),
            num_classes=int(d["num_classes"]),
            max_depth=int(d["max_depth"]),
            max_width=int(d["max_width"]),
        )


# --- dynamic op: slice the largest weight ----------------------------------------------------------


class DynamicLinear(nn.Module):
    """A linear layer whose active weight is the first ``out x in`` block of the largest one.

    ``in`` is read from the input's last dimension, ``out`` is given; initialised like ``nn.Linear``
    at its largest size.
    """

    def __init__(self, max_in: int, max_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_out, max_in))
        self.bias = nn.Parameter(torch.empty(max_out)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(max_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, out_features: int) -> Tensor:
        weight = self.weight[:out_features, : x.shape[-1]]  # (out, in)
        bias = None if self.bias is None else self.bias[:out_features]  # (out,)
        return F.linear(x, weight, bias)  # (..., out)

    def extract(self, in_features: int, out_features: int) -> nn.Linear:
        w = self.weight
        linear = nn.Linear(in_features, out_features, bias=self.bias is not None)
        linear = linear.to(device=w.device, dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w[:out_features, :in_features])
            if self.bias is not None:
                linear.bias.copy_(self.bias[:out_features])
        return linear


# --- the supernet ----------------------------------------------------------------------------------


class ElasticMLP(Supernet):
    """Weight-sharing MLP: flatten, ``max_depth`` hidden layers (linear + activation), a linear classifier."""

    config_class = ElasticMLPConfig

    def __init__(self, config: ElasticMLPConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            DynamicLinear(config.in_features if i == 0 else config.max_width, config.max_width)
            for i in range(config.max_depth)
        )
        self.head = DynamicLinear(config.max_width, config.num_classes)

    @classmethod
    def from_space(cls, space: ArchSpace, input_shape: tuple[int, ...], num_classes: int) -> ElasticMLP:
        if not isinstance(space, ElasticMLPSpace):
            raise InvalidInputError(
                f"ElasticMLP needs an elastic_mlp space, got {space.family!r}", ("space",)
            )
        return cls(ElasticMLPConfig.from_space(space, input_shape, num_classes))

    def check_arch(self, arch: MLPArch) -> None:
        """Raise ``InvalidInputError`` unless this supernet can run ``arch``."""
        cfg = self.config
        if not isinstance(arch, MLPArch):
            raise InvalidInputError(f"expected an MLPArch, got {type(arch).__name__}", ("arch",))
        if not 1 <= arch.depth <= cfg.max_depth:
            raise InvalidInputError(
                f"depth {arch.depth} must be between 1 and {cfg.max_depth}", ("arch", "depth")
            )
        if len(arch.widths) != arch.depth:
            raise InvalidInputError(
                f"widths {list(arch.widths)} must give one width per layer (depth {arch.depth})",
                ("arch", "widths"),
            )
        if any(not 1 <= w <= cfg.max_width for w in arch.widths):
            raise InvalidInputError(
                f"widths {list(arch.widths)} must be between 1 and {cfg.max_width}", ("arch", "widths")
            )
        if arch.activation not in ACTIVATIONS:
            raise InvalidInputError(
                f"activation {arch.activation!r} is not one of {list(ACTIVATIONS)}", ("arch", "activation")
            )

    def check_input(self, x: Tensor) -> None:
        """Raise ``InvalidInputError`` unless ``x`` is a batch of examples of the configured shape."""
        if tuple(x.shape[1:]) != self.config.input_shape:
            raise InvalidInputError(
                f"expected input (B, {', '.join(map(str, self.config.input_shape))}), got {tuple(x.shape)}",
                ("x",),
            )

    def forward(self, x: Tensor, arch: MLPArch) -> Tensor:
        self.check_arch(arch)
        self.check_input(x)
        act = ACTIVATION_FUNCTIONS[arch.activation]
        x = x.flatten(1)  # (B, F)
        for layer, width in zip(self.layers[: arch.depth], arch.widths, strict=True):
            x = act(layer(x, width))  # (B, W_i)
        return self.head(x, self.config.num_classes)  # (B, num_classes)

    def extract(self, arch: MLPArch) -> SubnetMLP:
        """A standalone copy of ``arch``'s sub-network (cloned weights, no link to the supernet).
        Its outputs equal ``self(x, arch)``; it can be fine-tuned, TorchScript-compiled and ONNX-exported."""
        self.check_arch(arch)
        layers: list[nn.Module] = []
        in_features = self.config.in_features
        for layer, width in zip(self.layers[: arch.depth], arch.widths, strict=True):
            layers += [layer.extract(in_features, width), ACTIVATION_MODULES[arch.activation]()]
            in_features = width
        layers.append(self.head.extract(in_features, self.config.num_classes))
        return SubnetMLP(*layers).train(self.training)


class SubnetMLP(nn.Sequential):
    """A standalone sub-network extracted from an ``ElasticMLP``: flatten, then linear/activation layers."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(nn.Flatten(), *layers)

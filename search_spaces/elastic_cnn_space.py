"""The elastic CNN's search space: its choices, and the flat configs strategies see.

Torch-free on purpose: the service validates specs with it without importing the supernet.
An architecture is a ``CNNArch`` (Once-for-All / MobileNetV3 style: stages of inverted-bottleneck
blocks). As a config of the search it is flat: ``depth_s0, depth_s1, ..., width_mult``, then either
``kernel_size`` or, with ``kernel_per_block``, one ``kernel_s{s}_b{b}`` per block, then either
``expand_ratio`` or, with ``expand_per_block``, one ``expand_s{s}_b{b}`` per block. A per-block
parameter exists only when its stage's depth includes the block (a conditional parameter).
Sampling, validation and ``size`` come from ``ArchSpace``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

from search_spaces.family import ArchSpace
from search_spaces.params import Categorical, Param, depth_condition
from search_spaces.quantization import QuantUnit
from supernas.errors import InvalidInputError

Blocks = tuple[tuple[int, ...], ...]
"""One value per active block: ``blocks[stage][block]``."""

MAX_DEPTH = 8
MAX_EXPAND_RATIO = 8
KERNEL_CHOICES = (1, 3, 5, 7)


@dataclass(frozen=True)
class CNNArch:
    """One sub-network of the elastic CNN.

    ``kernel_size`` / ``expand_ratio`` apply to every block unless ``block_kernels`` /
    ``block_expands`` give one value per active block (the global value is then their maximum).
    """

    depth: tuple[int, ...]
    width_mult: float
    kernel_size: int
    block_kernels: Blocks | None = None
    expand_ratio: int = 1
    block_expands: Blocks | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CNNArch:
        return cls(
            depth=tuple(int(d) for d in config["depth"]),
            width_mult=float(config["width_mult"]),
            kernel_size=int(config["kernel_size"]),
            block_kernels=_blocks_or_none(config.get("block_kernels")),
            expand_ratio=int(config.get("expand_ratio", 1)),
            block_expands=_blocks_or_none(config.get("block_expands")),
        )

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "depth": list(self.depth),
            "width_mult": self.width_mult,
            "kernel_size": self.kernel_size,
            "expand_ratio": self.expand_ratio,
        }
        if self.block_kernels is not None:
            config["block_kernels"] = [list(stage) for stage in self.block_kernels]
        if self.block_expands is not None:
            config["block_expands"] = [list(stage) for stage in self.block_expands]
        return config

    def kernel_at(self, stage: int, block: int) -> int:
        """Kernel size of one block: its own when kernels are per block, else the global one."""
        if self.block_kernels is None:
            return self.kernel_size
        return self.block_kernels[stage][block]

    def expand_at(self, stage: int, block: int) -> int:
        """Expand ratio of one block: its own when ratios are per block, else the global one."""
        if self.block_expands is None:
            return self.expand_ratio
        return self.block_expands[stage][block]

    def kernels(self) -> list[int]:
        return [self.kernel_at(s, b) for s, d in enumerate(self.depth) for b in range(d)]

    def expands(self) -> list[int]:
        return [self.expand_at(s, b) for s, d in enumerate(self.depth) for b in range(d)]


def _blocks_or_none(values: Any) -> Blocks | None:
    return tuple(tuple(int(v) for v in stage) for stage in values) if values else None


def _unique_sorted(values: list[Any], field: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{field} choices must be unique, got {values}")
    return sorted(values)


class ElasticCNNSpace(ArchSpace):
    """Choices of the elastic CNN: depth per stage, a width multiplier, kernel sizes and expand ratios."""

    family: Literal["elastic_cnn"] = "elastic_cnn"
    stage_channels: list[PositiveInt] = Field(
        default=[16, 32], min_length=1, max_length=5, description="Channels of each stage at width 1.0."
    )
    depth: list[int] = Field(default=[1, 2, 3], min_length=1, description="Choices of blocks per stage.")
    width_mult: list[float] = Field(default=[0.5, 0.75, 1.0], min_length=1)
    kernel_size: list[int] = Field(
        default=[3, 5], min_length=1, description="Choices of the depthwise kernel (1, 3, 5 or 7)."
    )
    kernel_per_block: bool = Field(
        default=False, description="Choose a kernel per block (conditional on depth) instead of one for all."
    )
    expand_ratio: list[int] = Field(
        default=[2, 4], min_length=1, description="Choices of the inverted bottleneck's expansion (1 to 8)."
    )
    expand_per_block: bool = Field(
        default=False, description="Choose an expand ratio per block (conditional on depth) instead of one."
    )
    squeeze_excite: bool = Field(
        default=False, description="Give every block a squeeze-and-excitation module (not searched)."
    )

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, values: list[int]) -> list[int]:
        if any(d < 1 or d > MAX_DEPTH for d in values):
            raise ValueError(f"each depth choice must be between 1 and {MAX_DEPTH}")
        return _unique_sorted(values, "depth")

    @field_validator("width_mult")
    @classmethod
    def _check_width(cls, values: list[float]) -> list[float]:
        if any(not (0.0 < w <= 1.0) or not math.isfinite(w) for w in values):
            raise ValueError("each width_mult choice must be in (0, 1]")
        return _unique_sorted(values, "width_mult")

    @field_validator("kernel_size")
    @classmethod
    def _check_kernel(cls, values: list[int]) -> list[int]:
        if any(k not in KERNEL_CHOICES for k in values):
            raise ValueError(f"each kernel_size choice must be one of {', '.join(map(str, KERNEL_CHOICES))}")
        return _unique_sorted(values, "kernel_size")

    @field_validator("expand_ratio")
    @classmethod
    def _check_expand(cls, values: list[int]) -> list[int]:
        if any(e < 1 or e > MAX_EXPAND_RATIO for e in values):
            raise ValueError(f"each expand_ratio choice must be between 1 and {MAX_EXPAND_RATIO}")
        return _unique_sorted(values, "expand_ratio")

    # --- the space as parameters ---------------------------------------------------------------

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    def params(self) -> list[Param]:
        """The family's parameters; per-block ones are conditioned on their stage's depth."""
        params: list[Param] = [
            Categorical(f"depth_s{s}", tuple(self.depth), ordered=True) for s in range(self.num_stages)
        ]
        params.append(Categorical("width_mult", tuple(self.width_mult), ordered=True))
        if self.kernel_per_block:
            params += self._per_block_params("kernel", self.kernel_size)
        else:
            params.append(Categorical("kernel_size", tuple(self.kernel_size), ordered=True))
        if self.expand_per_block:
            params += self._per_block_params("expand", self.expand_ratio)
        else:
            params.append(Categorical("expand_ratio", tuple(self.expand_ratio), ordered=True))
        return params

    def _per_block_params(self, prefix: str, choices: list[int]) -> list[Param]:
        """``{prefix}_s{s}_b{b}`` for every block any depth choice includes; active only when it runs."""
        params: list[Param] = []
        for s in range(self.num_stages):
            for b in range(max(self.depth)):
                condition = depth_condition(f"depth_s{s}", self.depth, b)
                params.append(Categorical(f"{prefix}_s{s}_b{b}", tuple(choices), True, condition))
        return params

    def quant_units(self) -> list[QuantUnit]:
        """The stem, every block (conditioned like its per-block genes) and the classifier."""
        units = [QuantUnit("stem")]
        for s in range(self.num_stages):
            for b in range(max(self.depth)):
                units.append(QuantUnit(f"s{s}_b{b}", depth_condition(f"depth_s{s}", self.depth, b)))
        return [*units, QuantUnit("head")]

    def quant_unit_scopes(self, arch: CNNArch) -> dict[str, str]:
        """``s{s}_b{b}`` is ``blocks.{i}`` of ``SubnetCNN``, counting the active blocks in order."""
        scopes = {"stem": "stem"}
        index = 0
        for s, depth in enumerate(arch.depth):
            for b in range(depth):
                scopes[f"s{s}_b{b}"] = f"blocks.{index}"
                index += 1
        return {**scopes, "head": "head"}

    # --- architectures -------------------------------------------------------------------------

    def arch_from_config(self, config: dict[str, Any]) -> CNNArch:
        """The architecture of a flat config (extra keys, e.g. hyperparameters, are ignored)."""
        try:
            depth = tuple(int(config[f"depth_s{s}"]) for s in range(self.num_stages))
            width = float(config["width_mult"])
            kernel, kernels = _read_choice(config, "kernel_size", "kernel", depth, self.kernel_per_block)
            expand, expands = _read_choice(config, "expand_ratio", "expand", depth, self.expand_per_block)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed architecture config {config!r}: {exc}", ("config",)) from exc
        return CNNArch(depth, width, kernel, kernels, expand, expands)

    def config_from_arch(self, arch: CNNArch) -> dict[str, Any]:
        config: dict[str, Any] = {f"depth_s{s}": d for s, d in enumerate(arch.depth)}
        config["width_mult"] = arch.width_mult
        if self.kernel_per_block:
            config |= _per_block_config("kernel", arch.depth, arch.kernel_at)
        else:
            config["kernel_size"] = arch.kernel_size
        if self.expand_per_block:
            config |= _per_block_config("expand", arch.depth, arch.expand_at)
        else:
            config["expand_ratio"] = arch.expand_ratio
        return config

    def _uniform(self, depth: int, width: float, kernel: int, expand: int) -> CNNArch:
        depths = (depth,) * self.num_stages
        kernels = tuple((kernel,) * depth for _ in depths) if self.kernel_per_block else None
        expands = tuple((expand,) * depth for _ in depths) if self.expand_per_block else None
        return CNNArch(depths, width, kernel, kernels, expand, expands)

    def largest(self) -> CNNArch:
        return self._uniform(
            max(self.depth), max(self.width_mult), max(self.kernel_size), max(self.expand_ratio)
        )

    def smallest(self) -> CNNArch:
        return self._uniform(
            min(self.depth), min(self.width_mult), min(self.kernel_size), min(self.expand_ratio)
        )


def _read_choice(
    config: dict[str, Any], name: str, prefix: str, depth: tuple[int, ...], per_block: bool
) -> tuple[int, Blocks | None]:
    """A global choice (``name``), or per-block choices (``{prefix}_s{s}_b{b}``) and their maximum."""
    if not per_block:
        return int(config[name]), None
    blocks = tuple(tuple(int(config[f"{prefix}_s{s}_b{b}"]) for b in range(d)) for s, d in enumerate(depth))
    return max(v for stage in blocks for v in stage), blocks


def _per_block_config(
    prefix: str, depth: tuple[int, ...], value_at: Callable[[int, int], int]
) -> dict[str, int]:
    return {f"{prefix}_s{s}_b{b}": value_at(s, b) for s, d in enumerate(depth) for b in range(d)}

"""The elastic CNN's search space: its choices, sampling, validation and vector encoding.

Torch-free on purpose: the service validates specs with it without importing the supernet.
An architecture is a ``CNNArch``; as a config of the search it is flat: ``depth_s0, depth_s1, ...,
width_mult`` and either ``kernel_size`` or, with ``kernel_per_block``, one ``kernel_s{s}_b{b}`` per
block that exists only when the stage's depth includes the block (a conditional parameter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from search_spaces.params import Categorical, Condition, Param, ParamSpace
from supernas.errors import InvalidInputError


@dataclass(frozen=True)
class CNNArch:
    """One sub-network of the elastic CNN."""

    depth: tuple[int, ...]
    width_mult: float
    kernel_size: int
    block_kernels: tuple[tuple[int, ...], ...] | None = None  # per stage, per active block

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CNNArch:
        kernels = config.get("block_kernels")
        return cls(
            depth=tuple(int(d) for d in config["depth"]),
            width_mult=float(config["width_mult"]),
            kernel_size=int(config["kernel_size"]),
            block_kernels=tuple(tuple(int(k) for k in stage) for stage in kernels) if kernels else None,
        )

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "depth": list(self.depth),
            "width_mult": self.width_mult,
            "kernel_size": self.kernel_size,
        }
        if self.block_kernels is not None:
            config["block_kernels"] = [list(stage) for stage in self.block_kernels]
        return config

    def kernel_at(self, stage: int, block: int) -> int:
        """Kernel size of one block: its own when kernels are per block, else the global one."""
        if self.block_kernels is None:
            return self.kernel_size
        return self.block_kernels[stage][block]

    def kernels(self) -> list[int]:
        return [self.kernel_at(s, b) for s, d in enumerate(self.depth) for b in range(d)]


def _unique_sorted(values: list[Any], field: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{field} choices must be unique, got {values}")
    return sorted(values)


class ElasticCNNSpace(BaseModel):
    """Choices of the elastic CNN: depth per stage, a width multiplier and a kernel size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["elastic_cnn"] = "elastic_cnn"
    stage_channels: list[PositiveInt] = Field(
        default=[16, 32], min_length=1, max_length=5, description="Channels of each stage at width 1.0."
    )
    depth: list[int] = Field(default=[1, 2, 3], min_length=1, description="Choices of blocks per stage.")
    width_mult: list[float] = Field(default=[0.5, 0.75, 1.0], min_length=1)
    kernel_size: list[int] = Field(default=[3, 5], min_length=1)
    kernel_per_block: bool = Field(
        default=False, description="Choose a kernel per block (conditional on depth) instead of one for all."
    )

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, values: list[int]) -> list[int]:
        if any(d < 1 or d > 8 for d in values):
            raise ValueError("each depth choice must be between 1 and 8")
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
        if any(k not in (1, 3, 5, 7) for k in values):
            raise ValueError("each kernel_size choice must be one of 1, 3, 5, 7")
        return _unique_sorted(values, "kernel_size")

    # --- the space as parameters and architectures ---------------------------------------------

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    def params(self) -> list[Param]:
        """The family's parameters; per-block kernels are conditioned on their stage's depth."""
        params: list[Param] = [
            Categorical(f"depth_s{s}", tuple(self.depth), ordered=True) for s in range(self.num_stages)
        ]
        params.append(Categorical("width_mult", tuple(self.width_mult), ordered=True))
        if not self.kernel_per_block:
            params.append(Categorical("kernel_size", tuple(self.kernel_size), ordered=True))
            return params
        for s in range(self.num_stages):
            for b in range(max(self.depth)):
                needs = tuple(d for d in self.depth if d > b)
                condition = None if len(needs) == len(self.depth) else Condition(f"depth_s{s}", needs)
                params.append(Categorical(f"kernel_s{s}_b{b}", tuple(self.kernel_size), True, condition))
        return params

    @property
    def size(self) -> int:
        """Number of distinct architectures in the space."""
        size = ParamSpace(self.params()).size
        assert size is not None  # every parameter of the family is categorical
        return size

    def arch_from_config(self, config: dict[str, Any]) -> CNNArch:
        """The architecture of a flat config (extra keys, e.g. hyperparameters, are ignored)."""
        try:
            depth = tuple(int(config[f"depth_s{s}"]) for s in range(self.num_stages))
            width = float(config["width_mult"])
            if not self.kernel_per_block:
                return CNNArch(depth, width, int(config["kernel_size"]))
            kernels = tuple(
                tuple(int(config[f"kernel_s{s}_b{b}"]) for b in range(d)) for s, d in enumerate(depth)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed architecture config {config!r}: {exc}", ("config",)) from exc
        return CNNArch(depth, width, max(k for stage in kernels for k in stage), kernels)

    def config_from_arch(self, arch: CNNArch) -> dict[str, Any]:
        config: dict[str, Any] = {f"depth_s{s}": d for s, d in enumerate(arch.depth)}
        config["width_mult"] = arch.width_mult
        if not self.kernel_per_block:
            config["kernel_size"] = arch.kernel_size
        else:
            for s, d in enumerate(arch.depth):
                for b in range(d):
                    config[f"kernel_s{s}_b{b}"] = arch.kernel_at(s, b)
        return config

    def _uniform(self, depth: int, width: float, kernel: int) -> CNNArch:
        depths = (depth,) * self.num_stages
        if not self.kernel_per_block:
            return CNNArch(depths, width, kernel)
        return CNNArch(depths, width, kernel, tuple((kernel,) * depth for _ in depths))

    def largest(self) -> CNNArch:
        return self._uniform(max(self.depth), max(self.width_mult), max(self.kernel_size))

    def smallest(self) -> CNNArch:
        return self._uniform(min(self.depth), min(self.width_mult), min(self.kernel_size))

    def sample(self, rng: np.random.Generator) -> CNNArch:
        return self.arch_from_config(ParamSpace(self.params()).sample(rng))

    def validate_arch(self, config: dict[str, Any]) -> CNNArch:
        """Parse a flat config, raising ``InvalidInputError`` if its architecture is not in this space."""
        family_names = {p.name for p in self.params()}
        ParamSpace(self.params()).validate({k: v for k, v in config.items() if k in family_names})
        return self.arch_from_config(config)

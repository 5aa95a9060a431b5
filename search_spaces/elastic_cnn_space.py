"""The elastic CNN's search space: its choices, sampling, validation and vector encoding.

Torch-free on purpose: the service validates specs with it without importing the supernet.
An architecture is a plain JSON dict ``{"depth": [d per stage], "width_mult": w, "kernel_size": k}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from supernas.errors import InvalidInputError


@dataclass(frozen=True)
class CNNArch:
    """One sub-network of the elastic CNN."""

    depth: tuple[int, ...]
    width_mult: float
    kernel_size: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CNNArch:
        return cls(
            depth=tuple(int(d) for d in config["depth"]),
            width_mult=float(config["width_mult"]),
            kernel_size=int(config["kernel_size"]),
        )

    def to_config(self) -> dict[str, Any]:
        return {"depth": list(self.depth), "width_mult": self.width_mult, "kernel_size": self.kernel_size}


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

    # --- the space as a set of architectures -------------------------------------------------

    @property
    def num_stages(self) -> int:
        return len(self.stage_channels)

    @property
    def size(self) -> int:
        """Number of distinct architectures in the space."""
        return len(self.depth) ** self.num_stages * len(self.width_mult) * len(self.kernel_size)

    def largest(self) -> CNNArch:
        return CNNArch((max(self.depth),) * self.num_stages, max(self.width_mult), max(self.kernel_size))

    def smallest(self) -> CNNArch:
        return CNNArch((min(self.depth),) * self.num_stages, min(self.width_mult), min(self.kernel_size))

    def sample(self, rng: np.random.Generator) -> CNNArch:
        depth = tuple(int(rng.choice(self.depth)) for _ in range(self.num_stages))
        return CNNArch(depth, float(rng.choice(self.width_mult)), int(rng.choice(self.kernel_size)))

    def validate_arch(self, config: dict[str, Any]) -> CNNArch:
        """Parse an architecture dict, raising ``InvalidInputError`` if it is not in this space."""
        try:
            arch = CNNArch.from_config(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed architecture {config!r}: {exc}", ("arch",)) from exc
        if len(arch.depth) != self.num_stages or any(d not in self.depth for d in arch.depth):
            raise InvalidInputError(f"depth {list(arch.depth)} is not in this space", ("arch", "depth"))
        if arch.width_mult not in self.width_mult:
            raise InvalidInputError(
                f"width_mult {arch.width_mult} is not in this space", ("arch", "width_mult")
            )
        if arch.kernel_size not in self.kernel_size:
            raise InvalidInputError(
                f"kernel_size {arch.kernel_size} is not in this space", ("arch", "kernel_size")
            )
        return arch

    def encode(self, arch: CNNArch) -> np.ndarray:
        """Encode an architecture as a vector in [0, 1]^d (ordinal choices scaled by index)."""

        def scaled(value: Any, choices: list[Any]) -> float:
            return choices.index(value) / (len(choices) - 1) if len(choices) > 1 else 0.0

        parts = [scaled(d, self.depth) for d in arch.depth]
        parts += [scaled(arch.width_mult, self.width_mult), scaled(arch.kernel_size, self.kernel_size)]
        return np.asarray(parts, dtype=np.float64)

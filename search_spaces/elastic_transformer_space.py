"""The elastic Transformer's search space: its choices and the architectures they name.

Torch-free on purpose: the service validates specs with it without importing the supernet.
An architecture is a ``TransformerArch``; as a config of the search it is flat: ``num_layers,
embed_dim`` and either one ``num_heads`` and ``mlp_ratio`` for all layers or, with ``per_layer``,
one ``num_heads_l{i}`` and ``mlp_ratio_l{i}`` per layer, each existing only when ``num_layers``
includes layer ``i`` (a conditional parameter).

Heads have a fixed width ``head_dim`` (HAT-style): the attention width of a layer is
``heads * head_dim`` whatever the embedding dim, so any (embed_dim, heads) pair is valid and the
head count is an independent elastic dimension. The MLP hidden width of a layer is
``max(1, round(mlp_ratio * embed_dim))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

from search_spaces.family import ArchSpace
from search_spaces.params import Categorical, Param, depth_condition
from search_spaces.quantization import QuantUnit
from supernas.errors import InvalidInputError

MAX_LAYERS = 24
MAX_HEADS = 64
MAX_EMBED_DIM = 4096
MAX_HEAD_DIM = 256
MAX_MLP_RATIO = 16.0


def mlp_hidden_dim(mlp_ratio: float, embed_dim: int) -> int:
    """Hidden width of a layer's MLP: ``mlp_ratio * embed_dim`` rounded, at least 1."""
    return max(1, round(mlp_ratio * embed_dim))


@dataclass(frozen=True)
class TransformerArch:
    """One sub-network of the elastic Transformer: per-layer heads and MLP ratios of the first layers."""

    num_layers: int
    embed_dim: int
    heads: tuple[int, ...]  # one per active layer
    mlp_ratios: tuple[float, ...]  # one per active layer

    @classmethod
    def uniform(cls, num_layers: int, embed_dim: int, heads: int, mlp_ratio: float) -> TransformerArch:
        """The architecture whose layers all have the same heads and MLP ratio."""
        return cls(num_layers, embed_dim, (heads,) * num_layers, (float(mlp_ratio),) * num_layers)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TransformerArch:
        return cls(
            num_layers=int(config["num_layers"]),
            embed_dim=int(config["embed_dim"]),
            heads=tuple(int(h) for h in config["heads"]),
            mlp_ratios=tuple(float(r) for r in config["mlp_ratios"]),
        )

    def to_config(self) -> dict[str, Any]:
        return {
            "num_layers": self.num_layers,
            "embed_dim": self.embed_dim,
            "heads": list(self.heads),
            "mlp_ratios": list(self.mlp_ratios),
        }

    def hidden_dims(self) -> list[int]:
        """MLP hidden width of each active layer."""
        return [mlp_hidden_dim(r, self.embed_dim) for r in self.mlp_ratios]


def _unique_sorted(values: list[Any], field: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{field} choices must be unique, got {values}")
    return sorted(values)


def _check_range(values: list[int], field: str, high: int) -> list[int]:
    if any(v < 1 or v > high for v in values):
        raise ValueError(f"each {field} choice must be between 1 and {high}, got {values}")
    return _unique_sorted(values, field)


class ElasticTransformerSpace(ArchSpace):
    """Choices of the elastic Transformer encoder: layers, embedding dim, heads and MLP ratio."""

    family: Literal["elastic_transformer"] = "elastic_transformer"
    num_layers: list[int] = Field(default=[1, 2, 3], min_length=1, description="Choices of encoder layers.")
    num_heads: list[int] = Field(default=[1, 2, 4], min_length=1, description="Choices of attention heads.")
    embed_dim: list[int] = Field(default=[32, 48, 64], min_length=1, description="Choices of model width.")
    mlp_ratio: list[float] = Field(
        default=[1.0, 2.0, 4.0], min_length=1, description="Choices of MLP hidden width / embed_dim."
    )
    head_dim: PositiveInt = Field(
        default=16, le=MAX_HEAD_DIM, description="Width of one attention head (fixed; heads are elastic)."
    )
    per_layer: bool = Field(
        default=False, description="Choose heads and MLP ratio per layer (conditional on num_layers)."
    )

    @field_validator("num_layers")
    @classmethod
    def _check_layers(cls, values: list[int]) -> list[int]:
        return _check_range(values, "num_layers", MAX_LAYERS)

    @field_validator("num_heads")
    @classmethod
    def _check_heads(cls, values: list[int]) -> list[int]:
        return _check_range(values, "num_heads", MAX_HEADS)

    @field_validator("embed_dim")
    @classmethod
    def _check_embed_dim(cls, values: list[int]) -> list[int]:
        return _check_range(values, "embed_dim", MAX_EMBED_DIM)

    @field_validator("mlp_ratio")
    @classmethod
    def _check_mlp_ratio(cls, values: list[float]) -> list[float]:
        if any(not math.isfinite(r) or not 0.0 < r <= MAX_MLP_RATIO for r in values):
            raise ValueError(f"each mlp_ratio choice must be in (0, {MAX_MLP_RATIO:g}], got {values}")
        return _unique_sorted(values, "mlp_ratio")

    # --- the space as parameters and architectures ---------------------------------------------

    def params(self) -> list[Param]:
        """The family's parameters; per-layer heads and ratios are conditioned on ``num_layers``."""
        params: list[Param] = [
            Categorical("num_layers", tuple(self.num_layers), ordered=True),
            Categorical("embed_dim", tuple(self.embed_dim), ordered=True),
        ]
        if not self.per_layer:
            params.append(Categorical("num_heads", tuple(self.num_heads), ordered=True))
            params.append(Categorical("mlp_ratio", tuple(self.mlp_ratio), ordered=True))
            return params
        for i in range(max(self.num_layers)):
            condition = depth_condition("num_layers", self.num_layers, i)
            params.append(Categorical(f"num_heads_l{i}", tuple(self.num_heads), True, condition))
            params.append(Categorical(f"mlp_ratio_l{i}", tuple(self.mlp_ratio), True, condition))
        return params

    def arch_from_config(self, config: dict[str, Any]) -> TransformerArch:
        """The architecture of a flat config (extra keys, e.g. hyperparameters, are ignored)."""
        try:
            num_layers = int(config["num_layers"])
            embed_dim = int(config["embed_dim"])
            if not self.per_layer:
                return TransformerArch.uniform(
                    num_layers, embed_dim, int(config["num_heads"]), float(config["mlp_ratio"])
                )
            heads = tuple(int(config[f"num_heads_l{i}"]) for i in range(num_layers))
            ratios = tuple(float(config[f"mlp_ratio_l{i}"]) for i in range(num_layers))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed architecture config {config!r}: {exc}", ("config",)) from exc
        return TransformerArch(num_layers, embed_dim, heads, ratios)

    def config_from_arch(self, arch: TransformerArch) -> dict[str, Any]:
        if not len(arch.heads) == len(arch.mlp_ratios) == arch.num_layers >= 1:
            raise InvalidInputError("heads and mlp_ratios must give one value per layer", ("arch",))
        config: dict[str, Any] = {"num_layers": arch.num_layers, "embed_dim": arch.embed_dim}
        if self.per_layer:
            for i, (heads, ratio) in enumerate(zip(arch.heads, arch.mlp_ratios, strict=True)):
                config[f"num_heads_l{i}"] = heads
                config[f"mlp_ratio_l{i}"] = ratio
            return config
        if len(set(arch.heads)) > 1 or len(set(arch.mlp_ratios)) > 1:
            raise InvalidInputError(
                "this space has one num_heads and mlp_ratio for all layers (per_layer is false)", ("arch",)
            )
        config["num_heads"] = arch.heads[0]
        config["mlp_ratio"] = arch.mlp_ratios[0]
        return config

    def quant_units(self) -> list[QuantUnit]:
        """The input embedding, every encoder layer (conditioned on ``num_layers``) and the classifier."""
        units = [QuantUnit("embed")]
        for i in range(max(self.num_layers)):
            units.append(QuantUnit(f"l{i}", depth_condition("num_layers", self.num_layers, i)))
        return [*units, QuantUnit("head")]

    def quant_unit_scopes(self, arch: TransformerArch) -> dict[str, str]:
        layers = {f"l{i}": f"layers.{i}" for i in range(arch.num_layers)}
        return {"embed": "embed", **layers, "head": "head"}

    def largest(self) -> TransformerArch:
        return TransformerArch.uniform(
            max(self.num_layers), max(self.embed_dim), max(self.num_heads), max(self.mlp_ratio)
        )

    def smallest(self) -> TransformerArch:
        return TransformerArch.uniform(
            min(self.num_layers), min(self.embed_dim), min(self.num_heads), min(self.mlp_ratio)
        )

"""The elastic MLP's search space: its choices and the architectures they name.

Torch-free on purpose: the service validates specs with it without importing the supernet.
An architecture is an ``MLPArch``; as a config of the search it is flat: ``depth``, one ``width_l{i}``
per hidden layer, existing only when ``depth`` includes layer ``i`` (a conditional parameter), and
one ``activation`` for all layers (an unordered choice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from search_spaces.family import ArchSpace
from search_spaces.params import Categorical, Param, depth_condition
from search_spaces.quantization import QuantUnit
from supernas.errors import InvalidInputError

Activation = Literal["relu", "gelu", "silu", "tanh"]
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "silu", "tanh")
MAX_DEPTH = 16
MAX_WIDTH = 8192


@dataclass(frozen=True)
class MLPArch:
    """One sub-network of the elastic MLP: the widths of its first ``depth`` hidden layers."""

    depth: int
    widths: tuple[int, ...]  # one per hidden layer
    activation: str

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MLPArch:
        return cls(
            depth=int(config["depth"]),
            widths=tuple(int(w) for w in config["widths"]),
            activation=str(config["activation"]),
        )

    def to_config(self) -> dict[str, Any]:
        return {"depth": self.depth, "widths": list(self.widths), "activation": self.activation}


def _check_range(values: list[int], field: str, high: int) -> list[int]:
    if any(v < 1 or v > high for v in values):
        raise ValueError(f"each {field} choice must be between 1 and {high}, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"{field} choices must be unique, got {values}")
    return sorted(values)


class ElasticMLPSpace(ArchSpace):
    """Choices of the elastic MLP: depth, the width of each hidden layer and one activation.

    ``largest`` and ``smallest`` differ in depth and widths; both use the first activation choice.
    """

    family: Literal["elastic_mlp"] = "elastic_mlp"
    depth: list[int] = Field(default=[1, 2, 3], min_length=1, description="Choices of hidden layers.")
    width: list[int] = Field(
        default=[32, 64, 128], min_length=1, description="Choices of each layer's width."
    )
    activation: list[Activation] = Field(
        default=["relu", "gelu"], min_length=1, description="Choices of the activation of all layers."
    )

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, values: list[int]) -> list[int]:
        return _check_range(values, "depth", MAX_DEPTH)

    @field_validator("width")
    @classmethod
    def _check_width(cls, values: list[int]) -> list[int]:
        return _check_range(values, "width", MAX_WIDTH)

    @field_validator("activation")
    @classmethod
    def _check_activation(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"activation choices must be unique, got {values}")
        return values

    # --- the space as parameters and architectures ---------------------------------------------

    def params(self) -> list[Param]:
        """The family's parameters; each layer's width is conditioned on ``depth`` including it."""
        params: list[Param] = [Categorical("depth", tuple(self.depth), ordered=True)]
        for i in range(max(self.depth)):
            condition = depth_condition("depth", self.depth, i)
            params.append(Categorical(f"width_l{i}", tuple(self.width), True, condition))
        params.append(Categorical("activation", tuple(self.activation), ordered=False))
        return params

    def arch_from_config(self, config: dict[str, Any]) -> MLPArch:
        """The architecture of a flat config (extra keys, e.g. hyperparameters, are ignored)."""
        try:
            depth = int(config["depth"])
            widths = tuple(int(config[f"width_l{i}"]) for i in range(depth))
            activation = config["activation"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed architecture config {config!r}: {exc}", ("config",)) from exc
        if not isinstance(activation, str):
            raise InvalidInputError(
                f"activation must be a string, got {activation!r}", ("config", "activation")
            )
        return MLPArch(depth, widths, activation)

    def config_from_arch(self, arch: MLPArch) -> dict[str, Any]:
        if len(arch.widths) != arch.depth:
            raise InvalidInputError("widths must give one width per layer", ("arch", "widths"))
        config: dict[str, Any] = {"depth": arch.depth}
        config.update({f"width_l{i}": w for i, w in enumerate(arch.widths)})
        config["activation"] = arch.activation
        return config

    def quant_units(self) -> list[QuantUnit]:
        """Every hidden layer (conditioned on ``depth``) and the classifier."""
        units = []
        for i in range(max(self.depth)):
            units.append(QuantUnit(f"l{i}", depth_condition("depth", self.depth, i)))
        return [*units, QuantUnit("head")]

    def quant_unit_scopes(self, arch: MLPArch) -> dict[str, str]:
        """``SubnetMLP`` is a Sequential: flatten, then (linear, activation) per layer, then the head."""
        layers = {f"l{i}": str(1 + 2 * i) for i in range(arch.depth)}
        return {**layers, "head": str(1 + 2 * arch.depth)}

    def largest(self) -> MLPArch:
        depth = max(self.depth)
        return MLPArch(depth, (max(self.width),) * depth, self.activation[0])

    def smallest(self) -> MLPArch:
        depth = min(self.depth)
        return MLPArch(depth, (min(self.width),) * depth, self.activation[0])

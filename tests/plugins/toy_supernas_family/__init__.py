"""A third-party supernet family, as a plug-in package would write it: one hidden layer of elastic width.

Registered through the ``supernas.families`` entry point by the plug-in test; not part of supernas.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from search_spaces.family import ArchSpace, SupernetFamily
from search_spaces.params import Categorical, Param
from search_spaces.supernet import Supernet


@dataclass(frozen=True)
class ToyArch:
    hidden: int

    def to_config(self) -> dict[str, Any]:
        return {"hidden": self.hidden}


class ToySpace(ArchSpace):
    family: Literal["toy_width"] = "toy_width"
    hidden: list[int] = Field(default=[4, 8, 16], min_length=1)

    def params(self) -> list[Param]:
        return [Categorical("toy_hidden", tuple(sorted(self.hidden)), ordered=True)]

    def arch_from_config(self, config: dict[str, Any]) -> ToyArch:
        return ToyArch(int(config["toy_hidden"]))

    def config_from_arch(self, arch: ToyArch) -> dict[str, Any]:
        return {"toy_hidden": arch.hidden}

    def largest(self) -> ToyArch:
        return ToyArch(max(self.hidden))

    def smallest(self) -> ToyArch:
        return ToyArch(min(self.hidden))


@dataclass(frozen=True)
class ToyConfig:
    in_features: int
    max_hidden: int
    num_classes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToyConfig:
        return cls(int(d["in_features"]), int(d["max_hidden"]), int(d["num_classes"]))


class ToySupernet(Supernet):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.config = config
        self.hidden = nn.Linear(config.in_features, config.max_hidden)
        self.head = nn.Linear(config.max_hidden, config.num_classes)

    @classmethod
    def from_space(cls, space: ArchSpace, input_shape: tuple[int, ...], num_classes: int) -> ToySupernet:
        assert isinstance(space, ToySpace)
        return cls(ToyConfig(math.prod(input_shape), max(space.hidden), num_classes))

    def forward(self, x: Tensor, arch: ToyArch) -> Tensor:
        h = F.relu(F.linear(x.flatten(1), self.hidden.weight[: arch.hidden], self.hidden.bias[: arch.hidden]))
        return F.linear(h, self.head.weight[:, : arch.hidden], self.head.bias)  # (B, K)

    def extract(self, arch: ToyArch) -> nn.Module:
        hidden = nn.Linear(self.config.in_features, arch.hidden)
        head = nn.Linear(arch.hidden, self.config.num_classes)
        with torch.no_grad():
            hidden.weight.copy_(self.hidden.weight[: arch.hidden])
            hidden.bias.copy_(self.hidden.bias[: arch.hidden])
            head.weight.copy_(self.head.weight[:, : arch.hidden])
            head.bias.copy_(self.head.bias)
        return nn.Sequential(nn.Flatten(), hidden, nn.ReLU(), head)


FAMILY = SupernetFamily(
    name="toy_width",
    space=ToySpace,
    input_kinds=frozenset({"tabular"}),
    supernet="toy_supernas_family:ToySupernet",
    description="One hidden layer of elastic width (a plug-in example).",
)

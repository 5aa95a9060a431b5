"""The torch side of the supernet-family plug-in point: what every weight-sharing supernet provides.

A supernet runs any architecture of its space with shared weights (``forward(x, arch)``) and extracts
any of them as a plain standalone ``nn.Module`` whose eval-mode outputs equal the supernet's.
Its configuration is a frozen dataclass with a JSON form, so a trained supernet reloads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from search_spaces.family import ArchSpace


class SupernetConfig(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Supernet(nn.Module, ABC):
    """Base class of every family's supernet."""

    config_class: ClassVar[Any]  # a dataclass type with ``from_dict``
    config: Any

    @classmethod
    @abstractmethod
    def from_space(cls, space: ArchSpace, input_shape: tuple[int, ...], num_classes: int) -> Supernet:
        """The supernet that can run every architecture of ``space`` on inputs of ``input_shape``."""

    @classmethod
    def from_config_dict(cls, config: dict[str, Any]) -> Supernet:
        return cls(cls.config_class.from_dict(config))

    @abstractmethod
    def forward(self, x: Tensor, arch: Any) -> Tensor:
        """Logits (B, num_classes) of ``arch``'s sub-network with the shared weights."""

    @abstractmethod
    def extract(self, arch: Any) -> nn.Module:
        """A standalone copy of ``arch``'s sub-network: plain torch layers, cloned weights."""


def count_params(module: nn.Module) -> int:
    """Number of parameters (not buffers) of ``module``."""
    return sum(p.numel() for p in module.parameters())

"""The supernet-family plug-in point, torch-free: an architecture space and the family that owns it.

A family is one ``SupernetFamily`` value: its name, its ``ArchSpace`` (a pydantic model users write in
a spec's ``space``), the kinds of task input it accepts and the import path of its torch supernet
(imported only by workers, so the service validates specs without torch). Built-in families and
plug-ins registered under the ``supernas.families`` entry-point group are listed by
``search_spaces.families``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from search_spaces.params import Param, ParamSpace
from search_spaces.quantization import QuantUnit

if TYPE_CHECKING:
    from search_spaces.supernet import Supernet

InputKind = Literal["image", "sequence", "tabular"]
"""Shape of one example: image (C, H, W), sequence (L, F), tabular (F,)."""


class Arch(Protocol):
    """One sub-network of a family: a frozen value with a JSON form."""

    def to_config(self) -> dict[str, Any]: ...


class ArchSpace(BaseModel, ABC):
    """Choices of one family. Subclasses set ``family`` to a ``Literal`` of their name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str

    @abstractmethod
    def params(self) -> list[Param]:
        """The family's parameters as a strategy sees them (flat names, conditions allowed)."""

    @abstractmethod
    def arch_from_config(self, config: dict[str, Any]) -> Any:
        """The architecture of a flat config (keys that are not the family's are ignored)."""

    @abstractmethod
    def config_from_arch(self, arch: Any) -> dict[str, Any]:
        """The flat config of an architecture."""

    @abstractmethod
    def largest(self) -> Any: ...

    @abstractmethod
    def smallest(self) -> Any: ...

    def quant_units(self) -> list[QuantUnit]:
        """The units (blocks or layers) whose precision a search may choose; none by default."""
        return []

    def quant_unit_scopes(self, arch: Any) -> dict[str, str]:
        """Each active unit of ``arch`` -> the module path of its layers in the extracted sub-network."""
        return {}

    @property
    def size(self) -> int | None:
        """Number of distinct architectures, or None when a parameter is continuous."""
        return ParamSpace(self.params()).size

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly sampled architecture."""
        return self.arch_from_config(ParamSpace(self.params()).sample(rng))

    def validate_arch(self, config: dict[str, Any]) -> Any:
        """Parse a flat config, raising ``InvalidInputError`` if its architecture is not in this space."""
        names = {p.name for p in self.params()}
        ParamSpace(self.params()).validate({k: v for k, v in config.items() if k in names})
        return self.arch_from_config(config)


@dataclass(frozen=True)
class SupernetFamily:
    """What the registry knows of a family. ``supernet`` is ``"module:Class"`` of a ``Supernet``."""

    name: str
    space: type[ArchSpace]
    input_kinds: frozenset[str]
    supernet: str
    description: str = ""

    def supernet_class(self) -> type[Supernet]:
        module_name, _, class_name = self.supernet.partition(":")
        return getattr(importlib.import_module(module_name), class_name)

    def accepts(self, input_kind: str) -> bool:
        return input_kind in self.input_kinds

"""Registry of supernet families: the built-in ones and plug-ins from the ``supernas.families`` entry points.

A plug-in package declares, in its ``pyproject.toml``::

    [project.entry-points."supernas.families"]
    my_family = "my_package.family:FAMILY"

where ``FAMILY`` is a ``search_spaces.family.SupernetFamily``. Its space then works in a spec's
``space: {family: my_family, ...}`` and its supernet trains, extracts and exports like the built-ins.
A plug-in must pass the shared contract suite in ``search_spaces.family_contract``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.elastic_mlp_space import ElasticMLPSpace
from search_spaces.elastic_transformer_space import ElasticTransformerSpace
from search_spaces.family import ArchSpace, SupernetFamily
from supernas.errors import InvalidInputError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "supernas.families"
DEFAULT_FAMILY = "elastic_cnn"

BUILTIN_FAMILIES: tuple[SupernetFamily, ...] = (
    SupernetFamily(
        name="elastic_cnn",
        space=ElasticCNNSpace,
        input_kinds=frozenset({"image"}),
        supernet="search_spaces.elastic_cnn:ElasticCNN",
        description="Once-for-All style CNN: depth per stage, width, expand ratio, kernel size, SE.",
    ),
    SupernetFamily(
        name="elastic_transformer",
        space=ElasticTransformerSpace,
        input_kinds=frozenset({"sequence"}),
        supernet="search_spaces.elastic_transformer:ElasticTransformer",
        description="Transformer encoder for sequences: layers, heads, embedding dim, MLP ratio.",
    ),
    SupernetFamily(
        name="elastic_mlp",
        space=ElasticMLPSpace,
        input_kinds=frozenset({"tabular", "image", "sequence"}),
        supernet="search_spaces.elastic_mlp:ElasticMLP",
        description="MLP for tabular data (other inputs are flattened): depth, width per layer, activation.",
    ),
)


def _plugin_families() -> list[SupernetFamily]:
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            family = entry.load()
        except Exception:  # a broken plug-in must not take the service down
            log.exception("could not load supernet family plug-in %r (%s)", entry.name, entry.value)
            continue
        if not isinstance(family, SupernetFamily):
            log.error("entry point %r (%s) is not a SupernetFamily; ignored", entry.name, entry.value)
            continue
        found.append(family)
    return found


@lru_cache(maxsize=1)
def families() -> dict[str, SupernetFamily]:
    """Every known family by name; a plug-in cannot replace a built-in family."""
    registry = {f.name: f for f in BUILTIN_FAMILIES}
    for family in _plugin_families():
        if family.name in registry:
            log.error("supernet family plug-in %r clashes with a known family; ignored", family.name)
            continue
        registry[family.name] = family
    return registry


def get_family(name: str) -> SupernetFamily:
    try:
        return families()[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown supernet family {name!r}; known families: {sorted(families())}", ("space", "family")
        ) from None


class _FamilyChoice(BaseModel):
    """Only the ``family`` of a space, checked first so an unknown name is reported at its field."""

    model_config = ConfigDict(extra="allow")

    family: str = DEFAULT_FAMILY

    @field_validator("family")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in families():
            raise ValueError(f"unknown supernet family {name!r}; known families: {sorted(families())}")
        return name


def parse_space(value: Any) -> ArchSpace:
    """A spec's ``space`` as its family's model; ``family`` defaults to the elastic CNN."""
    if isinstance(value, ArchSpace):
        return value
    if not isinstance(value, dict):
        raise ValueError("space must be an object with a 'family' field")
    name = _FamilyChoice.model_validate(value).family
    return families()[name].space.model_validate({**value, "family": name})

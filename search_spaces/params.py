"""Mixed search spaces: categorical, integer and float parameters, log scales, and conditions.

A config is a flat JSON dict ``{name: value}`` holding only the *active* parameters: a parameter
with a condition is active only when its parent's value is one of the listed values (e.g. the
kernel of block 3 exists only when the stage's depth is at least 3). Strategies see configs,
and vectors from ``encode``; a family maps a config to its architecture.

Encoding to [0, 1]^dim: an ordered categorical or a number takes one coordinate (its index or
value scaled, in log space for log parameters); an unordered categorical takes one coordinate
per choice (one-hot). An inactive parameter encodes as zeros; ``decode`` maps any point of the
unit cube back to the nearest valid config.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from supernas.errors import InvalidInputError

Value = int | float | str | bool


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[Value, ...]


def depth_condition(parent: str, depths: Sequence[int], index: int) -> Condition | None:
    """The condition of the ``index``-th block or layer under a depth parameter ``parent`` with choices
    ``depths``: active for the depths that include it; None when every depth does."""
    needs = tuple(d for d in depths if d > index)
    return None if len(needs) == len(depths) else Condition(parent, needs)


def strictly_ascending(sizes: list[int], field: str) -> list[int]:
    """``sizes`` unchanged, or ``ValueError`` naming ``field`` when a size does not exceed the one before."""
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ValueError(f"{field} must be strictly ascending")
    return sizes


@dataclass(frozen=True)
class Categorical:
    name: str
    choices: tuple[Value, ...]
    ordered: bool = False
    condition: Condition | None = None

    @property
    def width(self) -> int:
        return 1 if self.ordered or len(self.choices) == 1 else len(self.choices)


@dataclass(frozen=True)
class Integer:
    name: str
    low: int
    high: int
    log: bool = False
    condition: Condition | None = None
    width: int = field(default=1, init=False)


@dataclass(frozen=True)
class Float:
    name: str
    low: float
    high: float
    log: bool = False
    condition: Condition | None = None
    width: int = field(default=1, init=False)


Param = Categorical | Integer | Float


def _to_unit(param: Integer | Float, value: float) -> float:
    if param.high == param.low:
        return 0.0
    if param.log:
        return (math.log(value) - math.log(param.low)) / (math.log(param.high) - math.log(param.low))
    return (value - param.low) / (param.high - param.low)


def _from_unit(param: Integer | Float, u: float) -> int | float:
    u = min(max(float(u), 0.0), 1.0)
    if param.log:
        value = math.exp(math.log(param.low) + u * (math.log(param.high) - math.log(param.low)))
    else:
        value = param.low + u * (param.high - param.low)
    if isinstance(param, Integer):
        return int(min(max(round(value), param.low), param.high))
    return float(min(max(value, param.low), param.high))


class ParamSpace:
    """An ordered tuple of parameters; a parent always comes before the parameters it conditions."""

    def __init__(self, params: Sequence[Param]) -> None:
        names: set[str] = set()
        for p in params:
            if p.name in names:
                raise ValueError(f"duplicate parameter {p.name!r}")
            if p.condition is not None and p.condition.parent not in names:
                raise ValueError(
                    f"parameter {p.name!r} is conditioned on {p.condition.parent!r}, defined after it"
                )
            if isinstance(p, (Integer, Float)) and (p.low > p.high or (p.log and p.low <= 0)):
                raise ValueError(f"parameter {p.name!r} has an invalid range [{p.low}, {p.high}]")
            if isinstance(p, Categorical) and not p.choices:
                raise ValueError(f"parameter {p.name!r} has no choices")
            names.add(p.name)
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name = {p.name: p for p in self.params}
        offsets, offset = {}, 0
        for p in self.params:
            offsets[p.name] = offset
            offset += p.width
        self._offsets = offsets
        self.dim = offset

    def __getitem__(self, name: str) -> Param:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @cached_property
    def size(self) -> int | None:
        """Number of distinct configs; None when a float makes it infinite or it exceeds a million."""
        if any(isinstance(p, Float) for p in self.params):
            return None
        try:
            return len(self.enumerate())
        except ValueError:
            return None

    def is_active(self, param: Param, config: dict[str, Any]) -> bool:
        cond = param.condition
        return cond is None or (cond.parent in config and config[cond.parent] in cond.values)

    # --- sampling, validation ----------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> dict[str, Value]:
        config: dict[str, Value] = {}
        for p in self.params:
            if not self.is_active(p, config):
                continue
            if isinstance(p, Categorical):
                config[p.name] = p.choices[int(rng.integers(len(p.choices)))]
            else:
                config[p.name] = _from_unit(p, float(rng.random()))
        return config

    def validate(self, config: dict[str, Any]) -> dict[str, Value]:
        """Return the config if it is a valid, complete config of this space; else InvalidInputError."""
        clean: dict[str, Value] = {}
        for p in self.params:
            active = self.is_active(p, clean)
            if not active:
                if p.name in config:
                    raise InvalidInputError(f"{p.name} is inactive in this config", ("config", p.name))
                continue
            if p.name not in config:
                raise InvalidInputError(f"{p.name} is missing", ("config", p.name))
            value = config[p.name]
            if isinstance(p, Categorical):
                if value not in p.choices:
                    raise InvalidInputError(
                        f"{p.name}={value!r} is not one of {list(p.choices)}", ("config", p.name)
                    )
            elif (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not p.low <= value <= p.high
            ):
                raise InvalidInputError(
                    f"{p.name}={value!r} is outside [{p.low}, {p.high}]", ("config", p.name)
                )
            elif isinstance(p, Integer) and int(value) != value:
                raise InvalidInputError(f"{p.name}={value!r} is not an integer", ("config", p.name))
            clean[p.name] = value
        unknown = set(config) - set(self._by_name)
        if unknown:
            raise InvalidInputError(f"unknown parameters {sorted(unknown)}", ("config",))
        return clean

    def enumerate(self, limit: int = 1_000_000) -> list[dict[str, Value]]:
        """Every config of a space without floats (for small spaces and exact fronts)."""
        configs: list[dict[str, Value]] = [{}]
        for p in self.params:
            if isinstance(p, Float):
                raise ValueError("a space with a float parameter cannot be enumerated")
            values = p.choices if isinstance(p, Categorical) else tuple(range(p.low, p.high + 1))
            grown = []
            for c in configs:
                if self.is_active(p, c):
                    grown.extend({**c, p.name: v} for v in values)
                else:
                    grown.append(c)
            configs = grown
            if len(configs) > limit:
                raise ValueError(f"the space has more than {limit} configs")
        return configs

    # --- vectors -----------------------------------------------------------------------------

    def encode(self, config: dict[str, Any]) -> np.ndarray:
        """A config as a point of [0, 1]^dim (inactive parameters are zeros)."""
        x = np.zeros(self.dim)  # (dim,)
        for p in self.params:
            if p.name not in config:
                continue
            i, value = self._offsets[p.name], config[p.name]
            if isinstance(p, Categorical):
                index = p.choices.index(value)
                if p.width == 1:
                    x[i] = index / (len(p.choices) - 1) if len(p.choices) > 1 else 0.0
                else:
                    x[i + index] = 1.0
            else:
                x[i] = _to_unit(p, float(value))
        return x

    def decode(self, x: np.ndarray) -> dict[str, Value]:
        """The valid config nearest to a point of the unit cube (argmax for one-hot groups)."""
        x = np.asarray(x, dtype=np.float64)
        config: dict[str, Value] = {}
        for p in self.params:
            if not self.is_active(p, config):
                continue
            i = self._offsets[p.name]
            if isinstance(p, Categorical):
                if p.width == 1:
                    index = round(min(max(float(x[i]), 0.0), 1.0) * (len(p.choices) - 1))
                else:
                    index = int(np.argmax(x[i : i + p.width]))
                config[p.name] = p.choices[index]
            else:
                config[p.name] = _from_unit(p, float(x[i]))
        return config

    def active_mask(self, config: dict[str, Any]) -> np.ndarray:
        """Boolean mask of the coordinates that belong to parameters active in ``config``."""
        mask = np.zeros(self.dim, dtype=bool)  # (dim,)
        for p in self.params:
            if p.name in config:
                mask[self._offsets[p.name] : self._offsets[p.name] + p.width] = True
        return mask

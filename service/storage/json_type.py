"""A JSON column type that keeps NaN and +/-inf (PostgreSQL's ``json`` rejects bare ``NaN``).

Non-finite floats anywhere inside a value are written as ``{"__supernas_float__": "NaN"}`` (or
``"Infinity"`` / ``"-Infinity"``) and turned back into floats on read. Written by hand: SQLAlchemy's
JSON type has no option for this.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

MARKER = "__supernas_float__"
_TO_FLOAT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_non_finite(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by its marker object."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return {MARKER: "NaN"}
        return {MARKER: "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, dict):
        return {key: encode_non_finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_non_finite(item) for item in value]
    return value


def decode_non_finite(value: Any) -> Any:
    """Inverse of :func:`encode_non_finite`."""
    if isinstance(value, dict):
        if len(value) == 1 and MARKER in value and value[MARKER] in _TO_FLOAT:
            return _TO_FLOAT[value[MARKER]]
        return {key: decode_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_non_finite(item) for item in value]
    return value


class JSONWithNonFinite(TypeDecorator[Any]):
    """``sqlalchemy.JSON`` that round-trips NaN, inf and -inf."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return encode_non_finite(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return decode_non_finite(value)

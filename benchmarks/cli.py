"""Command-line plumbing shared by the benchmark programs."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any


def fill_defaults(args: argparse.Namespace, defaults: Mapping[str, Any], quick: Mapping[str, Any]) -> None:
    """Set every option in ``defaults`` left unset (None) to its ``--quick`` or full-run default."""
    for key, default in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick[key] if args.quick else default)

"""Every search spec in ``examples/`` is a valid spec (users copy them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from search_spaces.spec import SearchSpec

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.*"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_a_valid_search_spec(path: Path) -> None:
    text = path.read_text()
    spec = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    SearchSpec.model_validate(spec)


def test_there_is_an_example_per_scheduler() -> None:
    schedulers = {yaml.safe_load(p.read_text()).get("scheduler", {}).get("type") for p in EXAMPLES}
    assert {"asha", "hyperband", "mobster", "freeze_thaw"} <= schedulers

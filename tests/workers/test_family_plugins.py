"""A third-party package registers a supernet family through the ``supernas.families`` entry point,
and the shared contract suite runs on it as on the built-in families."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from toy_supernas_family import FAMILY

from workers.family_contract import SupernetFamilyContract

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


class TestToyPluginFamily(SupernetFamilyContract):
    family = FAMILY
    space_json = {"family": "toy_width", "hidden": [4, 8]}
    input_shape = (5,)


def _install_entry_point(site: Path, entry: str) -> None:
    """What ``pip install`` of a package declaring the entry point leaves in site-packages."""
    dist = site / "toy_supernas_family-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-supernas-family\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[supernas.families]\ntoy_width = {entry}\n")


def _run_with_plugin(site: Path, code: str) -> dict:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS), str(root)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_installed_plugin_family_is_usable_in_a_search_spec(tmp_path: Path) -> None:
    _install_entry_point(tmp_path, "toy_supernas_family:FAMILY")
    code = """
import json
from search_spaces.families import families
from search_spaces.spec import SearchSpec
spec = SearchSpec.model_validate({
    "task": "wine", "space": {"family": "toy_width", "hidden": [4, 8]},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}]})
print(json.dumps({"families": sorted(families()), "params": [p.name for p in spec.param_space().params]}))
"""
    result = _run_with_plugin(tmp_path, code)
    assert "toy_width" in result["families"] and "elastic_cnn" in result["families"]
    assert result["params"] == ["toy_hidden"]


def test_a_broken_plugin_is_skipped_and_the_builtin_families_remain(tmp_path: Path) -> None:
    _install_entry_point(tmp_path, "toy_supernas_family:NO_SUCH_NAME")
    code = "import json; from search_spaces.families import families; print(json.dumps(sorted(families())))"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PLUGINS), str(root)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "elastic_cnn",
        "elastic_mlp",
        "elastic_transformer",
    ]
    assert "could not load supernet family plug-in 'toy_width'" in out.stderr

"""The strategies benchmark's quick path: curves, exact NAS-Bench-201 hypervolume, JSON and PNG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hypervolume import hypervolume, regret_curve
from benchmarks.problems import get_problem
from benchmarks.strategies import main

PROBLEMS = ("nb201-latency", "branin-currin")
CONTENDERS = ("random", "optuna-random")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--problems", ",".join(PROBLEMS), "--strategies", "random", "--peers", "optuna-random"]
    doc = main([*argv, "--out", str(out)])
    return doc, out


def test_writes_json_and_png(quick_run: tuple[dict, Path]) -> None:
    _, out = quick_run
    assert (out / "strategies.png").stat().st_size > 0
    on_disk = json.loads((out / "strategies.json").read_text())
    assert on_disk["settings"]["evals"] == 8 and on_disk["settings"]["seeds"] == [0, 1]
    assert set(on_disk["summary"]["problems"]) == set(PROBLEMS)
    assert set(on_disk["summary"]["average_rank"]) == set(CONTENDERS)
    assert "random" in on_disk["timing"] and not on_disk["errors"]["nb201-latency"]


def test_regrets_are_non_negative_and_non_increasing(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    for problem in PROBLEMS:
        for name in CONTENDERS:
            run = doc["runs"][problem][name]
            assert run["seeds"] == [0, 1] and not run["errors"]
            for curve in run["regret"]:
                regret = np.array(curve)
                assert regret.shape == (8,)
                assert np.all(regret >= -1e-12)
                assert np.all(np.diff(regret) <= 1e-12)


def test_exact_nb201_max_hypervolume_bounds_every_front(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    summary = doc["problems"]["nb201-latency"]
    assert summary["max_hv_exact"] and summary["space_size"] == 15625
    for name in CONTENDERS:
        assert all(hv <= summary["max_hv"] + 1e-12 for hv in doc["runs"]["nb201-latency"][name]["final_hv"])
    # and the bound is attained: the whole space's hypervolume is the exact maximum
    bp = get_problem("nb201-latency", 8)
    everything = [bp.evaluate(c) for c in bp.problem.space.enumerate()]
    assert hypervolume(bp.normalise(everything)) == pytest.approx(bp.max_hv)


def test_two_dimensional_hypervolume_by_hand() -> None:
    # two points in the unit reference box (union of two rectangles), one dominated, one outside
    costs = np.array([[0.5, 0.2], [0.2, 0.5], [0.9, 0.9], [1.5, 0.1]])
    expected = (1 - 0.2) * (1 - 0.5) + (1 - 0.5) * (0.5 - 0.2)
    assert hypervolume(costs) == pytest.approx(expected)
    assert regret_curve(costs, 1.0).tolist() == pytest.approx([0.6, 1 - expected, 1 - expected, 1 - expected])


def test_merge_replaces_only_the_contenders_run_again(quick_run: tuple[dict, Path], tmp_path: Path) -> None:
    doc, out = quick_run
    shutil.copy(out / "strategies.json", tmp_path / "strategies.json")
    argv = ["--quick", "--problems", ",".join(PROBLEMS), "--peers", "none", "--timing-sizes", "none"]
    merged = main([*argv, "--strategies", "sobol", "--merge", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "strategies.json").read_text())
    assert on_disk == json.loads(json.dumps(merged))
    for problem in PROBLEMS:
        runs = on_disk["runs"][problem]
        assert set(runs) == {*CONTENDERS, "sobol"}
        assert runs["random"]["regret"] == doc["runs"][problem]["random"]["regret"]
        assert on_disk["summary"]["problems"][problem]["best_peer"] == "optuna-random"
    assert set(on_disk["summary"]["average_rank"]) == {*CONTENDERS, "sobol"}
    assert on_disk["merged_runs"][-1]["contenders"] == ["sobol"]
    assert on_disk["settings"]["batch"]["sobol"] == 1 and "random" in on_disk["timing"]
    with pytest.raises(SystemExit, match="evals differ"):
        main([*argv, "--evals", "9", "--strategies", "sobol", "--merge", "--out", str(tmp_path)])

"""The PFN-vs-GP benchmark's quick path, and the learning-curve generator behind its real curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import learning_curves
from benchmarks.pfn import DATASETS, main
from benchmarks.pfn_quality import MODELS
from benchmarks.pfn_tasks import curve_split, observed_lengths

QUICK_SIZES = ("10", "50")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("pfn_bench")
    return main(["--quick", "--out", str(out)]), out


def test_writes_json_and_png(quick_run: tuple[dict, Path]) -> None:
    doc, out = quick_run
    assert (out / "pfn.png").stat().st_size > 0
    on_disk = json.loads((out / "pfn.json").read_text())
    assert on_disk["settings"]["quick"] and on_disk["settings"]["sizes"] == [10, 50]
    assert on_disk["settings"]["machine"]["cpu_count"] >= 1
    assert set(on_disk["quality"]["results"]) == set(DATASETS)
    assert on_disk["goal"] == doc["goal"]


def test_every_cell_has_finite_metrics(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    results = doc["quality"]["results"]
    for dataset in DATASETS:
        assert tuple(results[dataset]) == QUICK_SIZES, dataset
        for size in QUICK_SIZES:
            for model in MODELS:
                cell = results[dataset][size][model]
                assert cell["tasks"] >= 2 and not cell["errors"], (dataset, size, model, cell["errors"])
                assert math.isfinite(cell["ll"]) and math.isfinite(cell["ll_se"])
                assert math.isfinite(cell["rmse"]) and cell["rmse"] >= 0
                assert -1.0 <= cell["tau"] <= 1.0
                assert all(-1.0 <= t <= 1.0 for t in cell["per_task"]["tau"])
                assert cell["seconds"] > 0


def test_pfn_and_gp_both_ran_on_prior_functions(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    for size in QUICK_SIZES:
        cell = doc["quality"]["results"]["prior-functions"][size]
        assert cell["pfn"]["tasks"] == 3 and cell["gp"]["tasks"] == 3
        assert np.all(np.isfinite(cell["pfn"]["per_task"]["ll"]))
        assert np.all(np.isfinite(cell["gp"]["per_task"]["ll"]))
        assert cell["pfn"]["per_task"]["ll"] != cell["gp"]["per_task"]["ll"]  # two different models


def test_timings_are_positive(quick_run: tuple[dict, Path]) -> None:
    doc, _ = quick_run
    prediction = doc["timing"]["prediction"]
    assert set(prediction) == {"10", "50", "500"}
    for t in prediction.values():
        assert t["pfn_s"] > 0 and t["gp_s"] > 0 and t["ratio"] == pytest.approx(t["gp_s"] / t["pfn_s"])
    for name in ("pfn", "botorch"):
        assert doc["timing"]["ask"][name]["50"]["seconds"] > 0
    goal = doc["goal"]
    assert goal["speedup_at_500"] == pytest.approx(prediction["500"]["ratio"])
    assert isinstance(goal["met"], bool) and math.isfinite(goal["ll_gap"])


def test_curve_split_observes_prefixes_and_queries_final_epochs() -> None:
    rng = np.random.default_rng(0)
    configs = rng.random((30, 3))  # (C, d)
    curves = np.cumsum(rng.random((30, 8)), axis=1)  # (C, E), increasing
    task = curve_split(configs, curves, 40, rng)
    assert task.curves is not None
    assert len(task.y_ctx) == 40 == sum(len(p) for p in task.curves.prefixes)
    assert all(1 <= len(p) <= 7 for p in task.curves.prefixes)  # every curve partially observed
    assert task.x_ctx.shape == (40, 4) and np.all(task.x_qry[:, -1] == 1.0)
    assert task.curves.queries == [(i, 8) for i in range(len(task.y_qry))]
    assert set(task.y_qry) <= set(curves[:, -1])
    with pytest.raises(ValueError):
        observed_lengths(50, 5, 7, rng)  # 5 curves of at most 7 observed epochs hold 35


def test_learning_curves_generates_a_tiny_set(tmp_path: Path) -> None:
    data = learning_curves.generate(n_configs=3, epochs=3, seeds=1, seed=0, log=False)
    path = learning_curves.save(data, tmp_path / "lc.npz")
    loaded = learning_curves.load(path)
    assert loaded.x.shape == (3, len(learning_curves.SPACE))
    assert np.all((loaded.x >= 0) & (loaded.x <= 1))
    for name in ("val_accuracy", "val_loss", "train_loss", "epoch_seconds"):
        values = getattr(loaded, name)
        assert values.shape == (3, 1, 3), name
        assert np.all(np.isfinite(values[~loaded.diverged])), name
    assert np.all((loaded.val_accuracy >= 0) & (loaded.val_accuracy <= 1))
    assert np.all(loaded.epoch_seconds > 0)
    assert set(loaded.params) >= {"lr", "weight_decay", "width", "depth", "dropout", "batch_size"}
    assert loaded.settings["n_configs"] == 3 and loaded.settings["epochs"] == 3
    assert json.loads(path.with_suffix(".json").read_text())["task"] == "mnist1d"

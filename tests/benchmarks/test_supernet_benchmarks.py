"""The supernet benchmarks' quick paths: ranking (inherited vs stand-alone accuracy) and step throughput."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import supernet_epochs, supernet_ranking, supernet_throughput
from search_spaces.families import get_family
from search_spaces.spec import SearchSpec


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def ranking(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("ranking")
    doc = supernet_ranking.main(["--quick", "--out", str(out)])
    return doc, json.loads((out / supernet_ranking.RESULT_FILE).read_text())


@pytest.fixture(scope="module")
def throughput(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("throughput")
    argv = ["--quick", "--cases", "mlp,transformer", "--out", str(out)]
    doc = supernet_throughput.main(argv)
    return doc, json.loads((out / supernet_throughput.RESULT_FILE).read_text())


def test_ranking_writes_the_requested_subnets(ranking: tuple[dict, dict]) -> None:
    doc, on_disk = ranking
    assert on_disk == json.loads(json.dumps(doc))
    assert on_disk["settings"]["subnets"] == 4 and on_disk["settings"]["quick"]
    assert on_disk["machine"]["torch_threads"] == 1 and on_disk["machine"]["cpu_count"] >= 1
    assert list(on_disk["cases"]) == ["mlp"]
    case = on_disk["cases"]["mlp"]
    assert case["family"] == "elastic_mlp" and case["task"].startswith("ds_")  # the synthetic table
    assert len(case["subnets"]) == 4
    assert len({json.dumps(r["arch"], sort_keys=True) for r in case["subnets"]}) == 4
    assert len(case["standalone_seeds"]) == 2


def test_ranking_numbers_are_finite_and_in_range(ranking: tuple[dict, dict]) -> None:
    case = ranking[1]["cases"]["mlp"]
    for row in case["subnets"]:
        for key in ("inherited_accuracy", "standalone_accuracy"):
            assert _finite(row[key]) and 0.0 <= row[key] <= 1.0
        for key in ("inherited_seconds", "standalone_train_seconds", "standalone_eval_seconds"):
            assert _finite(row[key]) and row[key] > 0
        assert len(row["standalone_accuracies"]) == 2 and row["params"] > 0
    for key in ("kendall_tau", "spearman_rho"):
        assert _finite(case[key]) and -1.0 <= case[key] <= 1.0
    assert _finite(case["cost_ratio"]) and case["cost_ratio"] > 0
    assert _finite(case["supernet"]["seconds"]) and case["supernet"]["seconds"] > 0
    assert case["mean_standalone_seconds"] == pytest.approx(
        case["mean_standalone_train_seconds"] + case["mean_standalone_eval_seconds"]
    )


def test_ranking_samples_distinct_archs_reproducibly() -> None:
    case = supernet_ranking.CASES["cnn"]
    space = get_family("elastic_cnn").space.model_validate(case.space)
    first = supernet_ranking.sample_distinct(space, 20, seed=3)
    assert first == supernet_ranking.sample_distinct(space, 20, seed=3)
    assert len({json.dumps(a.to_config(), sort_keys=True) for a in first}) == 20


def test_throughput_reports_every_mode(throughput: tuple[dict, dict]) -> None:
    doc, on_disk = throughput
    assert on_disk == json.loads(json.dumps(doc))
    assert set(on_disk["cases"]) == {"mlp", "transformer"}
    for case in on_disk["cases"].values():
        assert set(case["modes"]) == set(supernet_throughput.MODES)
        for mode in case["modes"].values():
            assert _finite(mode["samples_per_second"]) and mode["samples_per_second"] > 0
            assert len(mode["runs_samples_per_second"]) == 2
        assert case["modes"]["sandwich"]["subnets_per_step"] == 4
        for ratio in case["ratio"].values():
            assert _finite(ratio) and ratio > 0


def test_ranking_in_worker_processes_gives_the_same_numbers(
    ranking: tuple[dict, dict], tmp_path: Path
) -> None:
    _, inline = ranking
    doc = supernet_ranking.main(["--quick", "--workers", "2", "--out", str(tmp_path)])
    fields = ("arch", "inherited_accuracy", "standalone_accuracies")
    rows = [{k: r[k] for k in fields} for r in doc["cases"]["mlp"]["subnets"]]
    assert rows == [{k: r[k] for k in fields} for r in inline["cases"]["mlp"]["subnets"]]
    assert doc["cases"]["mlp"]["workers"] == 2


def test_supernet_epochs_benchmark_compares_the_spec_with_and_without_early_epochs() -> None:
    spec = yaml.safe_load(supernet_epochs.DEFAULT_SPEC.read_text())
    early = supernet_epochs.variant_spec(spec, "early epochs", seed=4)
    first = supernet_epochs.variant_spec(spec, "trained first", seed=4)
    assert early["fidelity"] == spec["fidelity"] and early["seed"] == first["seed"] == 4
    assert "supernet_epochs" not in first["fidelity"]
    assert {k: v for k, v in first.items() if k not in ("name", "fidelity", "seed")} == {
        k: v for k, v in spec.items() if k not in ("name", "fidelity", "seed")
    }
    SearchSpec.model_validate(early)
    SearchSpec.model_validate(first)
    with pytest.raises(SystemExit, match=r"no fidelity\.supernet_epochs"):
        supernet_epochs.variant_spec(first, "early epochs", seed=0)

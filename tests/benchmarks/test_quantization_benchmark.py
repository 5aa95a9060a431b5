"""The quantization benchmark's quick path: tiny supernets, A / B / C searched, real models measured,
hypervolumes, matched-accuracy ratios and the fake-quant gap in the JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import quantization

PROBLEMS = ("cnn", "transformer")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out: Path = tmp_path_factory.mktemp("quantization")
    doc = quantization.main(["--quick", "--problems", ",".join(PROBLEMS), "--out", str(out)])
    return doc, json.loads((out / quantization.RESULT_FILE).read_text())


def test_writes_every_problem_and_method(quick_run: tuple[dict, dict]) -> None:
    doc, on_disk = quick_run
    assert on_disk == json.loads(json.dumps(doc))
    settings = on_disk["settings"]
    assert settings["quick"] and settings["evaluations"] == quantization.QUICK["evaluations"]
    assert on_disk["machine"]["torch_threads"] == 1
    assert list(on_disk["problems"]) == list(PROBLEMS) and not on_disk["not_run"]
    for result in on_disk["problems"].values():
        assert set(result["methods"]) == {"A", "B", "C"}
        for method in result["methods"].values():
            assert len(method["evaluations"]) == settings["evaluations"]
        for name in quantization.REPORTED:
            assert result["finals"][name], f"{name} has no final models"


def test_policies_follow_each_method(quick_run: tuple[dict, dict]) -> None:
    for result in quick_run[1]["problems"].values():
        units = set(result["units"])
        finals = result["finals"]
        for name, weights in (("A", {"int8"}), ("B", {"int8"}), ("A_float", {"float"})):
            for model in finals[name]:
                assert {p["weights"] for p in model["policy"].values()} == weights
                assert set(model["policy"]) <= units
        for model in finals["A"] + finals["B"]:
            assert model["quantized"] and {p["activations"] for p in model["policy"].values()} == {"int8"}
        for record in result["methods"]["B"]["evaluations"]:
            assert all(p == {"weights": "int8", "activations": "int8"} for p in record["policy"].values())
        for record in result["methods"]["A"]["evaluations"]:
            assert not record["quantized"]


def test_real_measurements_are_sane(quick_run: tuple[dict, dict]) -> None:
    for result in quick_run[1]["problems"].values():
        for models in result["finals"].values():
            for m in models:
                assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["estimate"] <= 1.0
                assert _finite(m["latency_ms"]) and m["latency_ms"] > 0
                assert _finite(m["latency_ms_b32"]) and m["latency_ms_b32"] > 0
                assert isinstance(m["model_bytes"], (int, float)) and m["model_bytes"] > 0


def test_hypervolumes_ratios_and_gap(quick_run: tuple[dict, dict]) -> None:
    for result in quick_run[1]["problems"].values():
        for name in quantization.REPORTED:
            hv = result["hypervolume"][name]
            assert _finite(hv) and 0.0 < hv <= quantization.REFERENCE**3
        match = result["matched"]
        assert match["threshold"] == pytest.approx(match["best_float_accuracy"] - 0.005)
        assert match["methods"]["A_float"]["models"] >= 1  # the best float model itself
        for value in match["ratios"].values():
            assert value is None or (_finite(value) and value > 0)
        assert result["gap"]["models"] >= len(result["finals"]["A"]) + len(result["finals"]["B"])
        assert _finite(result["gap"]["mean_points"]) and result["gap"]["mean_points"] >= 0
        assert result["gap"]["max_points"] >= result["gap"]["mean_points"]
        scale = result["normalisation"]
        assert scale["reference_point"] == [quantization.REFERENCE] * 3
        assert all(low <= high for low, high in (scale[k] for k in ("accuracy", "latency_ms", "model_bytes")))


def test_table_is_printed(quick_run: tuple[dict, dict]) -> None:
    doc = quick_run[0]
    args = quantization.parse_args(["--quick"])
    text = quantization.format_problem("transformer", doc["problems"]["transformer"], args)
    assert "C/A: latency" in text and "C/B: latency" in text and "fake-quant vs real gap" in text

"""The latency-noise benchmark measures both estimators alone and under load, and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import latency_noise


def test_writes_both_estimators_for_both_loads(tmp_path: Path) -> None:
    out = tmp_path / "latency_noise.json"
    doc = latency_noise.main(["--measurements", "3", "--busy", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == doc
    assert set(doc["results"]) == {"alone", "1 processes training"}
    for networks in doc["results"].values():
        assert set(networks) == {"digits cnn, smallest", "digits cnn, largest"}
        for estimators in networks.values():
            assert set(estimators) == set(latency_noise.ESTIMATORS)
            for spread in estimators.values():
                assert spread["mean_ms"] > 0 and spread["cv"] >= 0 and spread["max_over_min"] >= 1
        smallest, largest = networks["digits cnn, smallest"], networks["digits cnn, largest"]
        fastest = "fastest of 200 (now)"
        assert smallest[fastest]["mean_ms"] < largest[fastest]["mean_ms"]

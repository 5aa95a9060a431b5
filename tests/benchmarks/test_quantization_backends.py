"""The backend comparison runs and times every runtime on a real converted model."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks.quantization_backends import main


def test_quick_run_times_float_and_int8_in_both_runtimes(tmp_path: Path) -> None:
    out = tmp_path / "backends.json"
    result = main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(result["rows"]))
    (row,) = result["rows"]
    for kind in ("torch_float", "torch_int8", "onnxruntime_float", "onnxruntime_int8"):
        assert set(row[kind]) == {"b1_ms", "b32_ms"}, row[kind]
        assert all(math.isfinite(v) and v > 0 for v in row[kind].values())

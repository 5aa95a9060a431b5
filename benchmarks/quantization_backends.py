"""Which runtime gives real speed to quantized sub-networks on this CPU: PyTorch's x86 backend or
ONNX Runtime?

Run from the repository root::

    python -m benchmarks.quantization_backends          # -> benchmarks/results/quantization_backends.json
    python -m benchmarks.quantization_backends --quick    # smoke test

The same sub-networks are timed four ways, at batch 1 and 32 on one thread (the fastest of timed
runs after warm-up, ``workers.latency``; results stored before that change took the median): float
in PyTorch (eager), INT8 in PyTorch (FX graph mode, ``get_default_qconfig_mapping("x86")``, static,
calibrated), float in ONNX Runtime, and INT8 in ONNX Runtime (``workers.onnx_quant``, the
converter searches use, every unit ``int8`` weights and activations). The networks are the largest
sub-networks of an elastic CNN (28x28 images, three widths) and of an elastic Transformer (mnist1d
sequences), randomly initialised: latency does not depend on the weights' values. The report prints
each time and the ratios; supernas measures and delivers quantized models in the runtime that is
fastest here.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.elastic_cnn import ElasticCNN
from search_spaces.elastic_cnn_space import ElasticCNNSpace
from search_spaces.elastic_transformer import ElasticTransformer
from search_spaces.elastic_transformer_space import ElasticTransformerSpace
from search_spaces.family import ArchSpace
from search_spaces.quantization import uniform_policy
from workers.export import export_onnx
from workers.latency import measure_latency_ms
from workers.onnx_quant import onnx_latency_ms, quantize_model

RESULTS = Path(__file__).parent / "results" / "quantization_backends.json"
CALIBRATION = 64


def _cnn(channels: list[int]) -> tuple[str, ArchSpace, nn.Module, tuple[int, ...]]:
    space = ElasticCNNSpace(
        stage_channels=channels, depth=[3], width_mult=[1.0], kernel_size=[3], expand_ratio=[4]
    )
    model = ElasticCNN.from_space(space, (1, 28, 28), 10).extract(space.largest()).eval()
    return f"cnn {channels}", space, model, (1, 28, 28)


def _transformer(embed: int) -> tuple[str, ArchSpace, nn.Module, tuple[int, ...]]:
    space = ElasticTransformerSpace(num_layers=[4], embed_dim=[embed], num_heads=[4], mlp_ratio=[4.0])
    model = ElasticTransformer.from_space(space, (40, 1), 10).extract(space.largest()).eval()
    return f"transformer {embed}", space, model, (40, 1)


def _torch_int8(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(model, get_default_qconfig_mapping("x86"), (calibration[:2],))
        with torch.no_grad():
            prepared(calibration)
        return convert_fx(prepared)


def _time_all(timer: Callable[[int], float]) -> dict[str, float]:
    return {"b1_ms": timer(1), "b32_ms": timer(32)}


def measure(case: tuple[str, ArchSpace, nn.Module, tuple[int, ...]], repeats: int) -> dict[str, Any]:
    name, space, model, shape = case
    calibration = torch.randn((CALIBRATION, *shape), generator=torch.Generator().manual_seed(0))
    result: dict[str, Any] = {"case": name}
    result["torch_float"] = _time_all(
        lambda b: measure_latency_ms(model, shape, repeats=repeats, batch_size=b)
    )
    try:
        quantized = _torch_int8(model, calibration)
        result["torch_int8"] = _time_all(
            lambda b: measure_latency_ms(quantized, shape, repeats=repeats, batch_size=b)
        )
    except Exception as exc:  # FX tracing can fail on a module; report it rather than hide the case
        result["torch_int8"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    arch = space.largest()
    scopes = space.quant_unit_scopes(arch)
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        export_onnx(model, shape, float_path)
        quantize_model(
            float_path, int8_path, uniform_policy(list(scopes), "int8", "int8"), scopes, calibration.numpy()
        )
        for key, path in (("onnxruntime_float", float_path), ("onnxruntime_int8", int8_path)):
            result[key] = _time_all(
                lambda b, p=path: onnx_latency_ms(p, shape, batch_size=b, repeats=repeats)
            )
    return result


def _ratio(a: dict[str, float], b: dict[str, float], key: str) -> float | None:
    return a[key] / b[key] if key in a and key in b else None


def format_table(rows: list[dict[str, Any]]) -> str:
    kinds = ("torch_float", "torch_int8", "onnxruntime_float", "onnxruntime_int8")
    lines = [f"{'case':<18}" + "".join(f"{k + ' b1/b32 ms':>30}" for k in kinds)]
    for row in rows:
        cells = []
        for kind in kinds:
            t = row[kind]
            cells.append(f"{t['b1_ms']:>14.3f} /{t['b32_ms']:>13.2f}" if "b1_ms" in t else f"{'error':>30}")
        lines.append(f"{row['case']:<18}" + "".join(f"{c:>30}" for c in cells))
    lines.append("")
    lines.append("ratios at batch 1 (< 1: the first is faster)")
    for row in rows:
        ort = _ratio(row["onnxruntime_int8"], row["torch_int8"], "b1_ms")
        ort_f = _ratio(row["onnxruntime_float"], row["torch_float"], "b1_ms")
        q = _ratio(row["onnxruntime_int8"], row["onnxruntime_float"], "b1_ms")
        text = [f"ORT int8 / torch int8 {ort:.2f}" if ort else "ORT int8 / torch int8 n/a"]
        text += [f"ORT float / torch float {ort_f:.2f}", f"ORT int8 / ORT float {q:.2f}"]
        lines.append(f"  {row['case']:<18}" + ", ".join(text))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small case, few repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cases = [_cnn([16, 32])] if args.quick else [_cnn([16, 32]), _cnn([16, 32, 64]), _cnn([32, 64, 128])]
    cases += [] if args.quick else [_transformer(64), _transformer(128)]
    rows = [measure(case, repeats=5 if args.quick else 50) for case in cases]
    print(format_table(rows))
    result = {
        "benchmark": "quantization_backends",
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "processor": platform.processor(),
        },
        "threads": 1,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

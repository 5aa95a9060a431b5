"""Real quantized models: an exported float ONNX sub-network converted under a quantization policy.

The toolchain is ONNX Runtime's (``onnxruntime.quantization``), chosen over PyTorch's x86 backend
because it is the faster runtime on these CPUs for float and quantized models alike (see the README's
quantization results). The conversion:

1. ``quant_pre_process``: shape inference and graph optimisation (BatchNorm folded into the convs);
2. units with INT8 activations: ``quantize_static`` in QDQ format on the nodes of those units only
   (the other nodes stay float), per-channel symmetric weights, ``uint8`` activations calibrated
   (min/max) on the calibration examples. INT8 weights use ``reduce_range`` (7 bits): without it the
   fused u8 x s8 kernels saturate on x86 CPUs without VNNI and the model loses accuracy (a CNN on
   digits fell from 93% to 84%). INT4 weights come through per-channel overrides of their scale;
3. units with quantized weights and float activations (weight-only): ONNX Runtime's quantizers do
   weight-only QDQ for MatMul alone, so each Conv / Gemm / MatMul weight of such a unit is replaced
   here by an INT8 or INT4 initializer and a ``DequantizeLinear``.

Every weight grid is the one ``workers.fake_quant`` estimates with (per output channel, symmetric,
``scale = max|w| / qmax``), so estimate and model round the same weights to the same integers.
4. opset 21 when INT4 appears (``DequantizeLinear`` of INT4), then a check that ONNX Runtime loads it.

Nodes belong to a unit by the module scope the exporter writes into their names
(``/blocks/blocks.3/expand/expand.0/Conv`` is in ``blocks.3``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import onnx
from onnx import helper, numpy_helper

from search_spaces.quantization import Policy, is_all_float
from supernas.errors import SupernasError
from workers.fake_quant import WEIGHT_QMAX, weight_qmax
from workers.latency import LARGE_BATCH, REPEATS, WARMUP, fastest_ms, large_batch_repeats

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
INT4_OPSET = 21
CALIBRATION_BATCH = 64


class QuantizationError(SupernasError):
    """A sub-network could not be converted under its quantization policy."""

    title = "Quantization failed"


def scope_prefix(module_path: str) -> str:
    """The node-name prefix the exporter gives a module: ``a.b`` -> ``/a/a.b/``."""
    parts = module_path.split(".")
    return "/" + "/".join(".".join(parts[: i + 1]) for i in range(len(parts))) + "/"


def nodes_by_unit(model: onnx.ModelProto, scopes: dict[str, str]) -> dict[str, list[onnx.NodeProto]]:
    prefixes = {unit: scope_prefix(scope) for unit, scope in scopes.items()}
    found: dict[str, list[onnx.NodeProto]] = {unit: [] for unit in scopes}
    for node in model.graph.node:
        for unit, prefix in prefixes.items():
            if node.name.startswith(prefix):
                found[unit].append(node)
    return found


def _weight_input(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> int | None:
    """Index of the node's weight input when it is an initializer of a conv / matmul (else None)."""
    if node.op_type not in WEIGHT_OPS or len(node.input) < 2 or node.input[1] not in initializers:
        return None
    return 1


def _weight_axis(node: onnx.NodeProto) -> int:
    """The output-channel axis of the node's weight: Conv (out, in, k...) 0; Gemm (out, in) 0 with
    transB else 1; MatMul (in, out) 1."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return 1


def _runs_quantized(
    node: onnx.NodeProto, weight: int | None, initializers: dict[str, onnx.TensorProto]
) -> bool:
    """Whether a node of an INT8-activation unit gets QDQ: its weight layers, and the ReLUs, residual
    additions and pooling between them (so that ONNX Runtime fuses whole int8 chains); attention's
    activation-by-activation products, softmax and normalisation stay float."""
    if weight is not None:
        return True
    if node.op_type == "Add":
        return not any(name in initializers for name in node.input)
    return node.op_type in ("Relu", "GlobalAveragePool")


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader`` over the calibration examples."""

    def __init__(self, input_name: str, examples: np.ndarray) -> None:
        self._batches = iter(
            [
                {input_name: examples[i : i + CALIBRATION_BATCH]}
                for i in range(0, len(examples), CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - only called by calibrators we do not use
        raise NotImplementedError


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs advice through the root logger at WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_model(
    float_path: Path, out_path: Path, policy: Policy, scopes: dict[str, str], calibration: np.ndarray
) -> dict[str, Any]:
    """Write ``out_path``: the float ONNX model at ``float_path`` under ``policy``. Returns a summary
    (nodes per precision, opset) for the manifest."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if is_all_float(policy):
        raise QuantizationError("the policy keeps every layer float: there is nothing to quantize")
    if len(calibration) == 0:
        raise QuantizationError("the calibration set is empty")
    with tempfile.TemporaryDirectory(prefix="supernas-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        with _quiet_quantizer():
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        initializers = {t.name: t for t in model.graph.initializer}
        units = nodes_by_unit(model, scopes)
        static_nodes: list[str] = []  # nodes of INT8-activation units that get QDQ
        overrides: dict[str, list[dict[str, Any]]] = {}  # INT4 weights' per-channel scales
        weight_only: dict[str, str] = {}  # node -> weight precision, for float-activation units
        for unit, unit_policy in policy.items():
            if unit_policy.is_float or unit not in units:
                continue
            if not any(_weight_input(node, initializers) is not None for node in units[unit]):
                raise QuantizationError(
                    f"unit {unit!r} ({scopes[unit]}) matches no convolution or linear node of the exported "
                    f"model (nodes are matched by the name prefix {scope_prefix(scopes[unit])!r})"
                )
            for node in units[unit]:
                weight = _weight_input(node, initializers)
                if unit_policy.activations == "int8" and _runs_quantized(node, weight, initializers):
                    static_nodes.append(node.name)
                    if weight is not None and unit_policy.weights == "int4":
                        array = numpy_helper.to_array(initializers[node.input[weight]])
                        overrides[node.input[weight]] = _int4_overrides(
                            array, _weight_axis(node), QuantType.QInt4, weight_qmax(unit_policy)
                        )
                elif weight is not None:
                    weight_only[node.name] = unit_policy.weights
        staged = Path(tmp) / "static.onnx"
        if static_nodes:
            with _quiet_quantizer():
                quantize_static(
                    str(prepared),
                    str(staged),
                    _Calibration(model.graph.input[0].name, np.ascontiguousarray(calibration, np.float32)),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=True,  # INT8 weights in 7 bits: see the module docstring
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_quantize=static_nodes,
                    extra_options={
                        "TensorQuantOverrides": overrides,
                        "WeightSymmetric": True,
                        # a linear layer's output (logits, attention inputs) stays float
                        "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
                    },
                )
        else:
            shutil.copyfile(prepared, staged)
        quantized = onnx.load(str(staged))
        _quantize_weights_only(quantized, weight_only)
        uses_int4 = any(p.weights == "int4" for u, p in policy.items() if units.get(u))
        if uses_int4:
            _raise_opset(quantized, INT4_OPSET)
        onnx.checker.check_model(quantized)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(quantized, str(out_path))
    _check_loads(out_path)
    return {
        "format": "QDQ",
        "static_nodes": len(static_nodes),
        "weight_only_nodes": len(weight_only),
        "opset": _opset(quantized),
    }


def _channel_scales(weight: np.ndarray, axis: int, qmax: int) -> np.ndarray:
    """Per-output-channel ``max|w| / qmax`` (1 for an all-zero channel), float32."""
    moved = np.moveaxis(weight, axis, 0)
    absmax = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    return np.where(absmax > 0, absmax / qmax, 1.0).astype(np.float32)


def _int4_overrides(weight: np.ndarray, axis: int, quant_type: Any, qmax: int) -> list[dict[str, Any]]:
    """ONNX Runtime's per-channel overrides giving each channel of an INT4 weight our scale."""
    scales = _channel_scales(weight, axis, qmax)
    overrides: list[dict[str, Any]] = [
        {"quant_type": quant_type, "scale": np.float32(s), "zero_point": np.int8(0)} for s in scales
    ]
    overrides[0]["axis"] = axis
    return overrides


def _quantize_weights_only(model: onnx.ModelProto, precision_of: dict[str, str]) -> None:
    """Replace each named node's weight by a quantized initializer and a DequantizeLinear."""
    initializers = {t.name: t for t in model.graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        precision = precision_of.get(node.name)
        weight = None if precision is None else _weight_input(node, initializers)
        if precision is not None and weight is not None:
            name = node.input[weight]
            axis = _weight_axis(node)
            tensors = _quantized_weight(numpy_helper.to_array(initializers[name]), precision, axis)
            base = f"{node.name}_w{precision}"
            for suffix, tensor in zip(("_q", "_scale", "_zero"), tensors, strict=True):
                tensor.name = base + suffix
                model.graph.initializer.append(tensor)
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [base + "_q", base + "_scale", base + "_zero"],
                    [base],
                    name=base + "_DequantizeLinear",
                    axis=axis,
                )
            )
            node.input[weight] = base
        new_nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)  # each DequantizeLinear right before its consumer: still sorted
    used = {i for n in model.graph.node for i in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def _quantized_weight(weight: np.ndarray, precision: str, axis: int) -> tuple[onnx.TensorProto, ...]:
    """(quantized, scale, zero point) of ``weight`` on the per-channel symmetric grid of ``precision``."""
    qmax = WEIGHT_QMAX[precision]
    scale = _channel_scales(weight, axis, qmax)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
    zero = np.zeros(scale.shape, np.int8)
    if precision == "int4":  # packed two to a byte
        q, zero = q.astype(ml_dtypes.int4), zero.astype(ml_dtypes.int4)
    return numpy_helper.from_array(q), numpy_helper.from_array(scale), numpy_helper.from_array(zero)


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _raise_opset(model: onnx.ModelProto, version: int) -> None:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version < version:
            entry.version = version


def _check_loads(path: Path) -> None:
    try:
        session(path)
    except Exception as exc:
        raise QuantizationError(f"ONNX Runtime cannot load the quantized model: {exc}") from exc


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# --- measuring the real model ----------------------------------------------------------------------


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the graph's initializers as stored (INT4 packed two to a byte): the model's weights,
    scales, zero points and biases, without the graph's structure and names (which, for small
    networks, outweigh the bytes quantization saves)."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.raw_data:
            total += len(tensor.raw_data)
        elif tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
            total += (int(np.prod(tensor.dims)) + 1) // 2
        else:
            total += numpy_helper.to_array(tensor).nbytes
    return total


@dataclass(frozen=True)
class RuntimeCosts:
    """Costs of an ONNX model measured in ONNX Runtime (CPU provider) on this machine."""

    latency_ms: float
    latency_ms_b32: float
    model_bytes: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "latency_ms": self.latency_ms,
            "latency_ms_b32": self.latency_ms_b32,
            "model_bytes": self.model_bytes,
        }


def onnx_latency_ms(
    path: Path,
    input_shape: tuple[int, ...],
    batch_size: int = 1,
    warmup: int = WARMUP,
    repeats: int = REPEATS,
    threads: int = 1,
) -> float:
    """Milliseconds of the fastest of ``repeats`` ONNX Runtime runs on a zeros input (``threads``
    intra-op threads), as ``workers.latency`` times PyTorch."""
    runner = session(path, threads)
    feed = {runner.get_inputs()[0].name: np.zeros((batch_size, *input_shape), np.float32)}
    return fastest_ms(lambda: runner.run(None, feed), warmup, repeats)


def runtime_costs(path: Path, input_shape: tuple[int, ...], repeats: int = REPEATS) -> RuntimeCosts:
    """Batch-1 and batch-32 latency (one thread) and the weight bytes of an ONNX model."""
    return RuntimeCosts(
        latency_ms=onnx_latency_ms(path, input_shape, repeats=repeats),
        latency_ms_b32=onnx_latency_ms(
            path, input_shape, batch_size=LARGE_BATCH, repeats=large_batch_repeats(repeats)
        ),
        model_bytes=weight_bytes(onnx.load(str(path))),
    )

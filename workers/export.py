"""Export of a sub-network as standalone TorchScript and ONNX files, verified, plus a JSON manifest.

``export_subnet`` always writes TorchScript (``torch.jit.script``; ``torch.jit.trace`` on an example
batch when scripting fails and an input shape is known). Given an input shape it also writes ONNX
with a dynamic batch dimension and then checks both files against the PyTorch module on the same
inputs: the ONNX file in ONNX Runtime (CPU provider) and the TorchScript file reloaded with
``torch.jit.load``. Files are written under temporary names and only renamed into place once
verification passed; the manifest is the last thing written, atomically, so a manifest always
describes files that exist, match its sha256 and passed verification.

ONNX exporter: torch 2.13 still ships the TorchScript-based exporter (``dynamo=False``); it is
used first because it needs no ``torch.export`` tracing and takes milliseconds to a few hundred
milliseconds for the small networks of supernas. Should it fail (or be removed in a later torch),
the ``torch.export``-based exporter (``dynamo=True``, onnxscript) is used, which takes seconds.
Both target opset ``ONNX_OPSET`` (18: native LayerNormalization, supported by both exporters and by
every ONNX Runtime since 1.14); the manifest records the exporter and opset actually used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernas.errors import SupernasError

TORCHSCRIPT_FILE = "model.torchscript.pt"
ONNX_FILE = "model.onnx"
QUANTIZED_ONNX_FILE = "model.quantized.onnx"  # written by workers.trial_quantization
MANIFEST_FILE = "manifest.json"
ONNX_OPSET = 18
ONNX_INPUT_NAME = "input"
DEFAULT_VERIFY_SAMPLES = 8
EXAMPLE_BATCH = 2  # not 1, so that tracing cannot fold the batch size into a broadcast
TIE_MARGIN = 1e-6  # rows whose two best PyTorch outputs are closer than this have no meaningful argmax
ABSOLUTE_TOLERANCE = 1e-4
# of the largest |output| of the module on the verification inputs: float32 rounding grows with the
# outputs' scale. A digits trial fine-tuned with Adam at lr 0.23 has logits up to 78, and ONNX
# Runtime's kernels differ from PyTorch's there by 1.07e-4 (1.4e-6 of the scale), which failed a
# purely absolute 1e-4
RELATIVE_TOLERANCE = 1e-4


class ExportError(SupernasError):
    """The module could not be exported (scripting/tracing or every ONNX exporter failed)."""

    title = "Export failed"


class ExportVerificationError(ExportError):
    """An exported file does not reproduce the PyTorch module's outputs; nothing was published."""

    title = "Export verification failed"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- TorchScript ---------------------------------------------------------------------------------


def _torchscript(module: nn.Module, example: torch.Tensor | None) -> tuple[torch.jit.ScriptModule, str]:
    """Scripted module (keeps control flow), or traced on ``example`` when scripting fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.jit.script(module), "script"
        except Exception as exc:
            if example is None:
                raise ExportError(f"TorchScript scripting failed: {exc}") from exc
            try:
                with torch.no_grad():
                    return torch.jit.trace(module, example, check_trace=False), "trace"
            except Exception as trace_exc:
                raise ExportError(f"TorchScript scripting and tracing failed: {trace_exc}") from trace_exc


# --- ONNX ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' deprecation/tracer warnings and torch.onnx's logging."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _output_names(module: nn.Module, example: torch.Tensor) -> list[str]:
    with torch.no_grad():
        outputs = _flatten_outputs(module(example))
    return ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]


def _export_torchscript_based(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    outputs = _output_names(module, example)
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        opset_version=ONNX_OPSET,
        input_names=[ONNX_INPUT_NAME],
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in [ONNX_INPUT_NAME, *outputs]},
    )


def _export_dynamo(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=True,
        opset_version=ONNX_OPSET,
        input_names=[ONNX_INPUT_NAME],
        output_names=_output_names(module, example),
        dynamic_shapes=({0: batch},),
        external_data=False,
        verbose=False,
    )


_EXPORTERS = (("torchscript", _export_torchscript_based), ("dynamo", _export_dynamo))


def _export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> str:
    """Write ``path`` with the first exporter that works; returns the exporter's name."""
    failures: list[str] = []
    for name, exporter in _EXPORTERS:
        path.unlink(missing_ok=True)
        try:
            with _quiet_exporters():
                exporter(module, example, path)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        return name
    raise ExportError("ONNX export failed with every exporter; " + " | ".join(failures))


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: Path) -> str:
    """Write ``module`` (eval mode) as ONNX with a dynamic batch dimension, unverified; returns the
    exporter used. For measuring a model in ONNX Runtime; downloads go through ``export_subnet``."""
    was_training = module.training
    module.eval()
    try:
        example = torch.randn((EXAMPLE_BATCH, *input_shape), generator=torch.Generator().manual_seed(1))
        return _export_onnx(module, example, path)
    finally:
        module.train(was_training)


def _onnx_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_outputs(session: Any, x: np.ndarray) -> list[np.ndarray]:
    return session.run(None, {session.get_inputs()[0].name: x})


def onnx_accuracy(path: Path | str, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of an ONNX classifier (first output = logits) on ``x``, ``y`` with ONNX Runtime."""
    if len(x) == 0 or len(x) != len(y) or batch_size < 1:
        raise ValueError("x and y must be non-empty with the same length, batch_size >= 1")
    session = _onnx_session(Path(path))
    x = np.asarray(x, dtype=np.float32)
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = _onnx_outputs(session, x[start : start + batch_size])[0]
        correct += int((logits.argmax(axis=-1) == np.asarray(y[start : start + batch_size])).sum())
    return correct / len(x)


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """The largest difference an exported file's outputs may have from the module's: ``absolute``
    plus ``relative`` times the largest |output| of the module."""

    absolute: float = ABSOLUTE_TOLERANCE
    relative: float = RELATIVE_TOLERANCE

    def allowed(self, scale: float) -> float:
        return self.absolute + self.relative * scale


@dataclass(frozen=True)
class Comparison:
    """How far one exported file's outputs are from the PyTorch module's."""

    max_abs_diff: float
    argmax_match: bool
    tolerance: Tolerance
    reference_max_abs: float  # the largest |output| of the module: the scale of the relative part

    @property
    def allowed_diff(self) -> float:
        return self.tolerance.allowed(self.reference_max_abs)

    @property
    def passed(self) -> bool:
        return (
            bool(np.isfinite(self.max_abs_diff))
            and self.max_abs_diff <= self.allowed_diff
            and self.argmax_match
        )

    def as_dict(self) -> dict[str, Any]:
        diff = self.max_abs_diff if np.isfinite(self.max_abs_diff) else None
        return {
            "max_abs_diff": diff,
            "argmax_match": self.argmax_match,
            "tolerance": self.tolerance.absolute,
            "relative_tolerance": self.tolerance.relative,
            "reference_max_abs": self.reference_max_abs,
            "allowed_diff": self.allowed_diff,
            "passed": self.passed,
        }


def _flatten_outputs(outputs: Any) -> list[np.ndarray]:
    if isinstance(outputs, torch.Tensor):
        return [outputs.detach().cpu().numpy()]
    if isinstance(outputs, np.ndarray):
        return [outputs]
    if isinstance(outputs, Sequence):
        return [array for item in outputs for array in _flatten_outputs(item)]
    raise ExportError(f"unsupported model output type {type(outputs).__name__}")


def _argmax_match(reference: np.ndarray, candidate: np.ndarray) -> bool:
    """Same argmax over the last axis on every row whose reference top-2 margin exceeds TIE_MARGIN."""
    if reference.ndim < 2 or reference.shape[-1] < 2:
        return True
    ref = reference.reshape(-1, reference.shape[-1])
    cand = candidate.reshape(-1, candidate.shape[-1])
    top2 = np.sort(ref, axis=-1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > TIE_MARGIN
    return bool(np.all(ref.argmax(-1)[decisive] == cand.argmax(-1)[decisive]))


def compare_outputs(
    reference: list[np.ndarray], candidate: list[np.ndarray], tolerance: Tolerance
) -> Comparison:
    """Max abs difference over all outputs (inf on a shape mismatch, NaN if NaNs appear) and argmax check."""
    scale = max(
        (float(np.nanmax(np.abs(r))) for r in reference if r.size and not np.isnan(r).all()), default=0.0
    )
    if len(reference) != len(candidate) or any(
        r.shape != c.shape for r, c in zip(reference, candidate, strict=True)
    ):
        return Comparison(float("inf"), False, tolerance, scale)
    pairs = list(zip(reference, candidate, strict=True))
    diffs = [np.abs(r.astype(np.float64) - c.astype(np.float64)) for r, c in pairs]
    diff = max((float(np.nanmax(d)) if d.size and not np.isnan(d).all() else 0.0) for d in diffs)
    if any(np.isnan(c).any() and not np.isnan(r).any() for r, c in pairs):
        diff = float("nan")
    argmax = all(_argmax_match(r, c) for r, c in pairs)
    return Comparison(diff, argmax, tolerance, scale)


def _verification_inputs(input_shape: tuple[int, ...], verify_inputs: np.ndarray | None) -> np.ndarray:
    if verify_inputs is not None:
        inputs = np.ascontiguousarray(verify_inputs, dtype=np.float32)
        if tuple(inputs.shape[1:]) != tuple(input_shape) or len(inputs) == 0:
            raise ExportError(f"verify_inputs have shape {inputs.shape}, expected (N, *{tuple(input_shape)})")
        return inputs
    generator = torch.Generator().manual_seed(0)
    return torch.randn((DEFAULT_VERIFY_SAMPLES, *input_shape), generator=generator).numpy()


def _verify(
    module: nn.Module, onnx_path: Path, torchscript_path: Path, inputs: np.ndarray, tolerance: Tolerance
) -> dict[str, Any]:
    import onnxruntime

    with torch.no_grad():
        reference = _flatten_outputs(module(torch.from_numpy(inputs)))
        reloaded = torch.jit.load(str(torchscript_path), map_location="cpu")
        torchscript = compare_outputs(
            reference, _flatten_outputs(reloaded(torch.from_numpy(inputs))), tolerance
        )
    onnx = compare_outputs(reference, _onnx_outputs(_onnx_session(onnx_path), inputs), tolerance)
    return {
        "onnx": {
            **onnx.as_dict(),
            "onnxruntime_version": onnxruntime.__version__,
            "opset": ONNX_OPSET,
            "inputs": len(inputs),
            "input_shape": list(inputs.shape[1:]),
        },
        "torchscript": torchscript.as_dict(),
    }


# --- export_subnet -------------------------------------------------------------------------------


def _staging_path(out_dir: Path, name: str) -> Path:
    return out_dir / f".{name}.staging"


def export_subnet(
    module: nn.Module,
    out_dir: Path,
    manifest: dict[str, Any],
    *,
    input_shape: tuple[int, ...] | None = None,
    verify_inputs: np.ndarray | None = None,
    tolerance: float = ABSOLUTE_TOLERANCE,
    relative_tolerance: float = RELATIVE_TOLERANCE,
) -> Path:
    """Write TorchScript (and, given ``input_shape``, verified ONNX) and the manifest to ``out_dir``.

    ``input_shape`` excludes the batch dimension (taken from ``verify_inputs`` when only they are
    given); ``verify_inputs`` (N, *input_shape) default to 8 seeded standard-normal samples.
    Raises ``ExportVerificationError`` when an exported file differs from the module by more than
    ``tolerance + relative_tolerance * max|module output|`` (max abs diff) or in argmax; then no
    file under ``out_dir`` is replaced and no manifest is written. Returns ``out_dir``.
    """
    if input_shape is None and verify_inputs is not None:
        input_shape = tuple(np.shape(verify_inputs)[1:])
    input_shape = tuple(input_shape) if input_shape is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = module.training
    module.eval()
    staged = {name: _staging_path(out_dir, name) for name in (TORCHSCRIPT_FILE, ONNX_FILE)}
    try:
        allowed = Tolerance(tolerance, relative_tolerance)
        files, verification = _write_and_verify(module, staged, input_shape, verify_inputs, allowed)
        for entry in files.values():
            os.replace(staged[entry["file"]], out_dir / entry["file"])
    finally:
        module.train(was_training)
        for path in staged.values():
            path.unlink(missing_ok=True)
    for entry in files.values():
        entry["sha256"] = sha256_of(out_dir / entry["file"])
    payload = {**manifest, "files": files}
    if verification is not None:
        payload["verification"] = verification
    write_json_atomic(out_dir / MANIFEST_FILE, payload)
    return out_dir


def _write_and_verify(
    module: nn.Module,
    staged: dict[str, Path],
    input_shape: tuple[int, ...] | None,
    verify_inputs: np.ndarray | None,
    tolerance: Tolerance,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Write the staged files; returns {kind: manifest entry} and the verification section (or None)."""
    example = None
    if input_shape is not None:
        generator = torch.Generator().manual_seed(1)
        example = torch.randn((EXAMPLE_BATCH, *input_shape), generator=generator)
    scripted, method = _torchscript(module, example)
    scripted.save(str(staged[TORCHSCRIPT_FILE]))
    files: dict[str, dict[str, Any]] = {"torchscript": {"file": TORCHSCRIPT_FILE, "method": method}}
    if input_shape is None or example is None:
        return files, None
    exporter = _export_onnx(module, example, staged[ONNX_FILE])
    files["onnx"] = {
        "file": ONNX_FILE,
        "opset": ONNX_OPSET,
        "exporter": exporter,
        "input_name": ONNX_INPUT_NAME,
        "input_shape": ["batch", *input_shape],
    }
    inputs = _verification_inputs(input_shape, verify_inputs)
    verification = _verify(module, staged[ONNX_FILE], staged[TORCHSCRIPT_FILE], inputs, tolerance)
    failed = [kind for kind, result in verification.items() if not result["passed"]]
    if failed:
        details = "; ".join(f"{kind}: {verification[kind]}" for kind in failed)
        raise ExportVerificationError(
            f"exported {' and '.join(failed)} do not reproduce the module: {details}"
        )
    return files, verification

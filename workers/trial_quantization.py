"""A trial's quantization policy at work: its costs, its accuracy estimate and its real model.

For a search with ``quantization``, every model is measured where it will run, in ONNX Runtime:

- costs (first report): the inherited sub-network is exported to ONNX and, unless its policy keeps
  every layer float, converted under the policy; ``latency_ms``, ``latency_ms_b32`` and
  ``model_bytes`` (the bytes of its initializers: weights, scales, biases) are those of that model.
  Parameters, MACs and peak memory stay those of the PyTorch module;
- accuracy at each fidelity step: the fake-quantized estimate (``workers.fake_quant``) calibrated on
  the step's calibration set (``FidelitySteps.calibration_size``);
- the last step: the exported float ONNX file is converted with the largest calibration set into
  ``model.quantized.onnx``; its real validation accuracy becomes the trial's ``accuracy`` and the
  estimate is kept as ``fake_quant_accuracy``, so the gap between them is on record.

The calibration set is the first n examples of one fixed shuffle of the training split, the same for
every trial of a search.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from search_spaces.quantization import BACKEND, Policy, is_all_float, policy_to_json
from search_spaces.spec import SearchSpec
from workers.export import (
    MANIFEST_FILE,
    ONNX_FILE,
    QUANTIZED_ONNX_FILE,
    export_onnx,
    onnx_accuracy,
    sha256_of,
    write_json_atomic,
)
from workers.fake_quant import fake_quant_accuracy
from workers.onnx_quant import quantize_model, runtime_costs
from workers.tasks import TaskData


@dataclass
class PolicyEvaluation:
    """One trial's policy with what it needs: the unit scopes of its architecture and the task."""

    spec: SearchSpec
    policy: Policy
    scopes: dict[str, str]
    task: TaskData

    @classmethod
    def of(
        cls, spec: SearchSpec, config: dict[str, Any], arch: Any, task: TaskData
    ) -> PolicyEvaluation | None:
        policy = spec.policy_of(config)
        if policy is None:
            return None
        return cls(spec, policy, spec.arch_space.quant_unit_scopes(arch), task)

    @cached_property
    def _calibration_order(self) -> np.ndarray:
        """One fixed shuffle of the training split (the search's seed), drawn once per trial."""
        return np.random.default_rng(self.spec.seed).permutation(len(self.task.x_train))

    def calibration(self, size: int) -> np.ndarray:
        return np.ascontiguousarray(self.task.x_train[self._calibration_order[:size]])

    @property
    def quantizes(self) -> bool:
        return not is_all_float(self.policy)

    def costs(self, model: nn.Module) -> dict[str, Any]:
        """Batch-1 and batch-32 latency (one thread) and weight bytes of the model under its policy."""
        with tempfile.TemporaryDirectory(prefix="supernas-costs-") as tmp:
            path = Path(tmp) / ONNX_FILE
            export_onnx(model, self.task.input_shape, path)
            if self.quantizes:
                quantized = Path(tmp) / QUANTIZED_ONNX_FILE
                calibration = self.calibration(self.spec.steps.calibration_examples[0])
                quantize_model(path, quantized, self.policy, self.scopes, calibration)
                path = quantized
            return runtime_costs(path, self.task.input_shape).as_dict()

    def estimate(self, model: nn.Module, step: int, x: np.ndarray, y: np.ndarray) -> float:
        """The fake-quantized accuracy at fidelity ``step`` (its calibration set)."""
        size = self.spec.steps.calibration_size(step) or 1
        return fake_quant_accuracy(model, self.policy, self.scopes, self.calibration(size), x, y)

    def finish(self, out_dir: Path, estimate: float) -> dict[str, Any]:
        """Convert the exported model, measure it, and add it to the manifest; returns the metrics to
        report: the delivered model's real ``accuracy``, latencies and bytes, and ``fake_quant_accuracy``."""
        size = self.spec.steps.calibration_examples[-1]
        section: dict[str, Any] = {
            "backend": BACKEND,
            "policy": policy_to_json(self.policy),
            "calibration_examples": size,
            "fake_quant_accuracy": estimate,
        }
        model_path = out_dir / ONNX_FILE
        if self.quantizes:
            model_path = out_dir / QUANTIZED_ONNX_FILE
            section |= quantize_model(
                out_dir / ONNX_FILE, model_path, self.policy, self.scopes, self.calibration(size)
            )
            section["file"] = QUANTIZED_ONNX_FILE
        real_accuracy = onnx_accuracy(model_path, self.task.x_val, self.task.y_val)
        costs = runtime_costs(model_path, self.task.input_shape).as_dict()
        section["real"] = {
            "accuracy": real_accuracy,
            "test_accuracy": onnx_accuracy(model_path, self.task.x_test, self.task.y_test),
            **costs,
        }
        section["gap"] = estimate - real_accuracy
        metrics = {"accuracy": real_accuracy, "fake_quant_accuracy": estimate, **costs}
        _add_to_manifest(out_dir, section, model_path if self.quantizes else None, metrics)
        return metrics


def _add_to_manifest(
    out_dir: Path, section: dict[str, Any], quantized: Path | None, metrics: dict[str, Any]
) -> None:
    """The quantization section, the quantized file and the delivered model's metrics."""
    manifest = json.loads((out_dir / MANIFEST_FILE).read_text())
    manifest["quantization"] = section
    manifest["metrics"] |= metrics
    if quantized is not None:
        manifest["files"]["onnx-quantized"] = {
            "file": quantized.name,
            "format": section.get("format", "QDQ"),
            "opset": section.get("opset"),
            "input_name": manifest["files"]["onnx"]["input_name"],
            "input_shape": manifest["files"]["onnx"]["input_shape"],
            "sha256": sha256_of(quantized),
        }
    write_json_atomic(out_dir / MANIFEST_FILE, manifest)

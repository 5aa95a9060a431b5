"""Fake-quantized evaluation of a sub-network: the cheap accuracy estimate of a quantization policy.

No retraining and no conversion: a copy of the (inherited or fine-tuned) sub-network has the weights of
every convolution and linear layer of a quantized unit rounded to the unit's grid, and, where the unit's
activations are INT8, the inputs of those layers rounded to a per-tensor grid calibrated on the
calibration examples. The grids are those ONNX Runtime's static quantizer computes, so the estimate
tracks the real model (``workers.onnx_quant``):

- weights: per output channel, symmetric, zero point 0, ``scale = max|w| / qmax`` on ``[-qmax, qmax]``.
  ``qmax`` is 127 (INT8) or 7 (INT4), except for INT8 weights feeding INT8 activations: those run in
  ONNX Runtime's fused u8 x s8 kernels, which saturate on x86 CPUs without VNNI (AVX2 sums pairs of
  products in int16), so they use 7 bits (``qmax = 64``, ONNX Runtime's ``reduce_range``). Per-channel
  symmetric rounding commutes with folding BatchNorm into the convolution, which the exported graph does;
- activations: per tensor, asymmetric ``uint8``, the calibrated range widened to include 0.

What it does not model: ONNX Runtime also quantizes the outputs of quantized ops and the residual
additions between them; the recorded gap between estimate and real model measures what that costs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn

from search_spaces.quantization import Policy, UnitPolicy
from workers.training import accuracy

WEIGHT_QMAX = {"int8": 127, "int4": 7}
FUSED_INT8_QMAX = 64  # INT8 weights of INT8-activation layers: 7 bits, so u8 x s8 pairs fit int16
ACTIVATION_RANGE = (0, 255)  # uint8
QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


def quantized_layers(
    model: nn.Module, policy: Policy, scopes: dict[str, str]
) -> Iterator[tuple[str, nn.Module, UnitPolicy]]:
    """(module path, layer, policy) of every conv / linear layer of a unit whose weights are quantized."""
    for unit, unit_policy in policy.items():
        scope = scopes.get(unit)
        if unit_policy.is_float or scope is None:
            continue
        for name, module in model.named_modules():
            if isinstance(module, QUANTIZABLE) and (name == scope or name.startswith(scope + ".")):
                yield name, module, unit_policy


def weight_qmax(policy: UnitPolicy) -> int:
    """The largest integer of a unit's symmetric weight grid (see the module docstring)."""
    if policy.weights == "int8" and policy.activations == "int8":
        return FUSED_INT8_QMAX
    return WEIGHT_QMAX[policy.weights]


def fake_quantize_weight(weight: Tensor, qmax: int) -> Tensor:
    """Per-output-channel symmetric rounding of ``weight`` (out, ...) to the grid ``[-qmax, qmax]``."""
    absmax = weight.detach().abs().flatten(1).amax(dim=1)  # (out,)
    scale = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
    zero = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -qmax, qmax)


def activation_grid(low: float, high: float) -> tuple[float, int]:
    """(scale, zero point) of a uint8 grid covering [low, high] and 0, as ONNX Runtime computes it."""
    low, high = min(low, 0.0), max(high, 0.0)
    qmin, qmax = ACTIVATION_RANGE
    if high == low:
        return 1.0, 0
    scale = (high - low) / (qmax - qmin)
    zero = round(qmin - low / scale)
    return scale, min(max(zero, qmin), qmax)


def calibrate_inputs(
    model: nn.Module, layers: list[tuple[str, nn.Module]], calibration: np.ndarray, batch_size: int = 256
) -> dict[str, tuple[float, float]]:
    """The min and max of each layer's input over the calibration examples (float model, eval mode)."""
    if len(calibration) == 0:
        raise ValueError("the calibration set is empty")
    ranges: dict[str, tuple[float, float]] = {}

    def recorder(name: str):
        def hook(_: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            x = inputs[0]
            low, high = float(x.min()), float(x.max())
            old = ranges.get(name, (low, high))
            ranges[name] = (min(old[0], low), max(old[1], high))

        return hook

    handles = [module.register_forward_pre_hook(recorder(name)) for name, module in layers]
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(calibration), batch_size):
                model(torch.from_numpy(calibration[start : start + batch_size]))
    finally:
        for handle in handles:
            handle.remove()
    return ranges


def fake_quantized(
    model: nn.Module, policy: Policy, scopes: dict[str, str], calibration: np.ndarray
) -> nn.Module:
    """A fake-quantized copy of ``model`` (eval mode) under ``policy``; ``model`` is left untouched."""
    layers = list(quantized_layers(model, policy, scopes))
    with_activations = [(name, module) for name, module, p in layers if p.activations == "int8"]
    ranges = calibrate_inputs(model, with_activations, calibration) if with_activations else {}
    quantized = copy.deepcopy(model).eval()
    modules = dict(quantized.named_modules())
    with torch.no_grad():
        for name, _, unit_policy in layers:
            layer = modules[name]
            layer.weight.copy_(fake_quantize_weight(layer.weight, weight_qmax(unit_policy)))
            if unit_policy.activations == "int8":
                scale, zero = activation_grid(*ranges[name])
                layer.register_forward_pre_hook(_input_rounding(scale, zero))
    return quantized


def _input_rounding(scale: float, zero: int):
    qmin, qmax = ACTIVATION_RANGE

    def hook(_: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        x = torch.fake_quantize_per_tensor_affine(inputs[0], scale, zero, qmin, qmax)
        return (x, *inputs[1:])

    return hook


def fake_quant_accuracy(
    model: nn.Module,
    policy: Policy,
    scopes: dict[str, str],
    calibration: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> float:
    """Top-1 accuracy on (x, y) of ``model`` fake-quantized under ``policy`` (plain accuracy if all float)."""
    if all(p.is_float for p in policy.values()):
        return accuracy(model.eval(), x, y)
    return accuracy(fake_quantized(model, policy, scopes, calibration), x, y)

"""The quantization policy as a search dimension: which precision each quantizable unit runs in.

Torch-free: the service validates a spec's ``quantization`` with it. A family names its quantizable
units (``ArchSpace.quant_units``: a block or layer each, e.g. ``stem``, ``s1_b0``, ``head``); a unit
that the chosen depth switches off carries the same condition as the block, so its genes are masked
out of the encoding. Per unit the search chooses

- ``qw_{unit}``: weights ``int8`` or ``int4`` (per-channel symmetric) or ``float``;
- ``qa_{unit}``: activations ``int8`` (per-tensor, calibrated) or ``float``, a gene that exists only
  when the unit's weights are quantized (float weights keep float activations).

The backend is ONNX Runtime's CPU execution provider: it runs INT8 and INT4 weights (QDQ
``DequantizeLinear``) and INT8 activations (fused ``QLinearConv`` / ``QLinearMatMul`` kernels), and
nothing narrower, so other bit widths are rejected here with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from search_spaces.params import Categorical, Condition, Param, strictly_ascending

WEIGHT_PRECISIONS = ("int4", "int8", "float")  # ordered by bits: the encoding is ordinal
ACTIVATION_PRECISIONS = ("int8", "float")
QUANTIZED = ("int4", "int8")
BACKEND = "onnxruntime"
DEFAULT_CALIBRATION_EXAMPLES = 256


@dataclass(frozen=True)
class QuantUnit:
    """A block or layer whose precision is chosen as one; ``condition`` is its depth condition."""

    name: str
    condition: Condition | None = None


@dataclass(frozen=True)
class UnitPolicy:
    """The precision of one unit's weights and of the activations entering its layers."""

    weights: str
    activations: str

    @property
    def is_float(self) -> bool:
        return self.weights == "float"

    def to_dict(self) -> dict[str, str]:
        return {"weights": self.weights, "activations": self.activations}


Policy = dict[str, UnitPolicy]
"""Precision of every active unit of one sub-network, by unit name."""


def _check_precisions(values: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(
            f"{what} precision {bad[0]!r} cannot run on the {BACKEND} backend (CPU); "
            f"it runs {', '.join(allowed)}"
        )
    if len(set(values)) != len(values):
        raise ValueError(f"{what} precisions must be unique, got {values}")
    return [p for p in allowed if p in values]  # canonical order


class UnitChoices(BaseModel):
    """Precisions one unit may take; overrides the search-wide choices for that unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: list[str] | None = Field(default=None, min_length=1)
    activations: list[str] | None = Field(default=None, min_length=1)

    @field_validator("weights")
    @classmethod
    def _weights(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_precisions(values, WEIGHT_PRECISIONS, "weight")

    @field_validator("activations")
    @classmethod
    def _activations(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _check_precisions(values, ACTIVATION_PRECISIONS, "activation")


class Quantization(BaseModel):
    """A search's quantization policy space (``SearchSpec.quantization``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["onnxruntime"] = Field(
        default=BACKEND, description="The runtime the quantized models are built for and measured on."
    )
    weights: list[str] = Field(
        default=["int4", "int8", "float"], min_length=1, description="Weight precisions: int4, int8, float."
    )
    activations: list[str] = Field(
        default=["int8", "float"],
        min_length=1,
        description="Activation precisions of units with quantized weights: int8, float.",
    )
    layers: dict[str, UnitChoices] = Field(
        default_factory=dict,
        description="Per-unit overrides of the choices, by unit name (e.g. keep 'head' float). Units: "
        "elastic_cnn stem, s{stage}_b{block}, head; elastic_transformer embed, l{layer}, head; "
        "elastic_mlp l{layer}, head.",
    )
    calibration_examples: list[PositiveInt] = Field(
        default=[DEFAULT_CALIBRATION_EXAMPLES],
        max_length=8,
        description="Ascending calibration set sizes (the first n examples of a fixed shuffle of the "
        "training split): fidelity steps of the inherited weights use them in turn, so a scheduler "
        "can raise the calibration set of promising trials; the real model uses the last.",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, values: list[str]) -> list[str]:
        return _check_precisions(values, WEIGHT_PRECISIONS, "weight")

    @field_validator("activations")
    @classmethod
    def _activations(cls, values: list[str]) -> list[str]:
        return _check_precisions(values, ACTIVATION_PRECISIONS, "activation")

    @field_validator("calibration_examples")
    @classmethod
    def _calibration(cls, sizes: list[int]) -> list[int]:
        if not sizes:
            raise ValueError("the calibration set cannot be empty: give at least one size")
        return strictly_ascending(sizes, "calibration_examples")

    def check_units(self, units: list[QuantUnit], family: str) -> None:
        """Raise ``ValueError`` naming a layer override that is not one of the family's units."""
        if not units:
            raise ValueError(f"the {family} family has no quantizable layers")
        names = [u.name for u in units]
        unknown = sorted(set(self.layers) - set(names))
        if unknown:
            raise ValueError(
                f"quantization.layers names {unknown[0]!r}, which is not a quantizable layer of the "
                f"{family} family; its layers: {', '.join(names)}"
            )

    def choices_of(self, unit: str) -> tuple[list[str], list[str]]:
        override = self.layers.get(unit)
        weights = override.weights if override and override.weights else self.weights
        activations = override.activations if override and override.activations else self.activations
        return weights, activations

    def params(self, units: list[QuantUnit]) -> list[Param]:
        """Two genes per unit; the activation gene is conditioned on quantized weights."""
        params: list[Param] = []
        for unit in units:
            weights, activations = self.choices_of(unit.name)
            params.append(Categorical(f"qw_{unit.name}", tuple(weights), True, unit.condition))
            quantized = tuple(w for w in weights if w in QUANTIZED)
            if quantized:
                condition = Condition(f"qw_{unit.name}", quantized)
                params.append(Categorical(f"qa_{unit.name}", tuple(activations), True, condition))
        return params


def policy_from_config(config: dict[str, Any]) -> Policy:
    """The policy of a flat config: one entry per unit whose weight gene is active."""
    policy: Policy = {}
    for key, weights in config.items():
        if key.startswith("qw_"):
            unit = key[3:]
            activations = config.get(f"qa_{unit}", "float") if weights in QUANTIZED else "float"
            policy[unit] = UnitPolicy(str(weights), str(activations))
    return policy


def policy_to_json(policy: Policy) -> dict[str, dict[str, str]]:
    return {unit: p.to_dict() for unit, p in policy.items()}


def is_all_float(policy: Policy) -> bool:
    return all(p.is_float for p in policy.values())


def uniform_policy(units: list[str], weights: str, activations: str) -> Policy:
    """Every unit in the same precision (e.g. fully INT8)."""
    activations = activations if weights in QUANTIZED else "float"
    return {u: UnitPolicy(weights, activations) for u in units}

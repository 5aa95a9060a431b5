"""The search spec: what a user submits (task, space, objectives, budget, strategy, fidelities, seed),
and the supernet spec (task, space, training, seed) of a supernet trained on its own.

Structural validation lives here (pydantic); names that depend on registries of higher layers
(task, strategy, data sets, supernets) are checked by the service before anything is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search_spaces.families import parse_space
from search_spaces.family import ArchSpace
from search_spaces.params import Categorical, Float, Integer, Param, ParamSpace, strictly_ascending
from search_spaces.quantization import Policy, Quantization, policy_from_config
from supernas.objectives import Direction, Metric, is_finite_number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    metric: Metric
    direction: Direction


class Constraint(_Strict):
    """A hard limit on a metric, e.g. ``{metric: latency_ms, op: "<=", value: 5}``."""

    metric: Metric
    op: Literal["<=", ">="]
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("a constraint's value must be a finite number")
        return value

    def violation(self, metrics: dict[str, Any]) -> str | None:
        """Why ``metrics`` violate this constraint, or None when they satisfy it (or lack the metric).

        A NaN or infinite value of a constrained metric is a violation.
        """
        if self.metric.value not in metrics:
            return None
        value = metrics[self.metric.value]
        if not is_finite_number(value):
            return f"{self.metric.value} is {value}, not a finite number"
        ok = value <= self.value if self.op == "<=" else value >= self.value
        return None if ok else f"{self.metric.value} = {value:.6g} violates {self.op} {self.value:g}"

    def slack(self, metrics: dict[str, Any]) -> float:
        """Signed distance to the limit: <= 0 when satisfied (BoTorch's convention)."""
        value = float(metrics[self.metric.value])
        return value - self.value if self.op == "<=" else self.value - value


class FloatRange(_Strict):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False


class IntRange(_Strict):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False


class Choice(_Strict):
    type: Literal["categorical"]
    choices: list[str | int | float] = Field(min_length=1)


Hyperparameter = Annotated[FloatRange | IntRange | Choice, Field(discriminator="type")]

# Fine-tuning settings a search may tune per trial, and the kinds of range each accepts.
TUNABLE_HYPERPARAMETERS: dict[str, tuple[type, ...]] = {
    "finetune_lr": (FloatRange,),
    "finetune_batch_size": (IntRange, Choice),
    "finetune_optimizer": (Choice,),
}
OPTIMIZERS = ("sgd", "adam")
_KIND_NAMES = {FloatRange: "float", IntRange: "int", Choice: "categorical"}


def _hyperparameter_param(name: str, spec: FloatRange | IntRange | Choice) -> Param:
    if isinstance(spec, Choice):
        return Categorical(name, tuple(spec.choices), ordered=False)
    if isinstance(spec, IntRange):
        return Integer(name, spec.low, spec.high, spec.log)
    return Float(name, spec.low, spec.high, spec.log)


MAX_PARALLEL_LIMIT = 1024


class Budget(_Strict):
    """Limits of a search; each can be changed while the search runs (PATCH .../budget)."""

    max_trials: PositiveInt = Field(default=20, le=100_000)
    max_parallel: PositiveInt = Field(default=1, le=MAX_PARALLEL_LIMIT)
    max_failed: PositiveInt | None = Field(
        default=None, description="The search fails once this many trials failed; null for no limit."
    )
    max_duration_s: float | None = Field(
        default=3600.0, gt=0, description="Wall-clock budget; null for none."
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a trial after it failed or its worker was lost, each from its latest "
        "checkpoint; only a trial that still fails counts towards max_failed.",
    )


class SupernetTraining(_Strict):
    """Weight-sharing training of the supernet: the sandwich rule (BigNAS) or single-path (SPOS)."""

    method: Literal["sandwich", "spos"] = Field(
        default="sandwich",
        description="sandwich: largest + smallest + random sub-networks per step (BigNAS); "
        "spos: one uniformly sampled sub-network per step (single-path one-shot).",
    )
    distillation: bool = Field(
        default=True,
        description="In-place distillation (sandwich only): sub-networks other than the largest learn "
        "from the largest's soft predictions instead of the labels.",
    )
    epochs: PositiveInt = Field(default=10, le=1000)
    batch_size: PositiveInt = Field(default=64, le=8192)
    lr: float = Field(default=0.05, gt=0, le=10)
    weight_decay: float = Field(default=5e-4, ge=0, le=1)
    random_subnets_per_step: int = Field(default=2, ge=0, le=16)
    max_train_examples: PositiveInt | None = Field(
        default=None, description="Train on a fixed random subset of this many examples (null: all)."
    )


class SupernetSpec(_Strict):
    """A supernet trained on its own (``POST /api/v1/supernets``), later named by searches."""

    name: str = Field(default="supernet", min_length=1, max_length=200)
    task: str = Field(min_length=1, max_length=200, description="A built-in task or an uploaded data set id.")
    space: SerializeAsAny[ArchSpace]
    training: SupernetTraining = SupernetTraining()
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("space", mode="before")
    @classmethod
    def _parse_space(cls, value: Any) -> ArchSpace:
        return parse_space(value)


class Fidelity(_Strict):
    """A trial's fidelity steps: its inherited weights evaluated on growing validation subsets
    (``validation_examples``; with quantization, growing calibration sets too) and from the supernet
    after growing numbers of training epochs (``supernet_epochs``), then on the whole validation split
    with the trained supernet's weights, then after each fine-tuning epoch. ``SearchSpec.steps`` counts
    them."""

    finetune_epochs: int = Field(default=2, ge=0, le=1000)
    finetune_lr: float = Field(default=0.01, gt=0, le=10)
    max_train_examples: PositiveInt | None = Field(
        default=None, description="Fine-tune on a fixed random subset of this many examples (null: all)."
    )
    validation_examples: list[PositiveInt] = Field(
        default_factory=list,
        max_length=8,
        description="Ascending validation subset sizes, one fidelity step each before the step on the "
        "whole split: the inherited weights are evaluated on the first n examples of a fixed shuffle "
        "of the validation split (the same for every trial), so a scheduler can stop a poor "
        "sub-network after evaluating it on few examples. Empty: no such steps.",
    )

    supernet_epochs: list[PositiveInt] = Field(
        default_factory=list,
        max_length=8,
        description="Ascending supernet training epochs, each below supernet.epochs, one fidelity step "
        "each: the sub-network inherits the supernet's weights as they were after that epoch. A search "
        "that trains its supernet starts trials as soon as the first of these epochs is trained, while "
        "training goes on; a step waits for its epoch. Empty: every step uses the trained supernet.",
    )

    @field_validator("validation_examples", "supernet_epochs")
    @classmethod
    def _ascending(cls, values: list[int], info: ValidationInfo) -> list[int]:
        return strictly_ascending(values, str(info.field_name))


@dataclass(frozen=True)
class FidelitySteps:
    """A trial's fidelity steps, counted from 0. The inherited weights take the first steps: the
    validation subsets, calibration sets and supernet epochs grow together (the calibration list's
    last size is kept once it runs out; after the validation subsets comes the whole split, after the
    supernet epochs the trained supernet); then one step per fine-tuning epoch."""

    validation_examples: tuple[int, ...]
    calibration_examples: tuple[int, ...]
    finetune_epochs: int
    supernet_epochs: tuple[int, ...] = ()

    @property
    def inherited(self) -> int:
        """Steps of the inherited weights (before any fine-tuning)."""
        return max(
            len(self.validation_examples) + 1, len(self.calibration_examples), len(self.supernet_epochs) + 1
        )

    @property
    def last(self) -> int:
        return self.inherited - 1 + self.finetune_epochs

    def validation_subset(self, step: int) -> int | None:
        """The validation examples of ``step`` (None: the whole split)."""
        return self.validation_examples[step] if step < len(self.validation_examples) else None

    def calibration_size(self, step: int) -> int | None:
        """The calibration examples of ``step`` (None when the search does not quantize)."""
        if not self.calibration_examples:
            return None
        return self.calibration_examples[min(step, len(self.calibration_examples) - 1)]

    def supernet_epoch(self, step: int) -> int | None:
        """The supernet training epoch whose weights ``step`` inherits (None: the trained supernet)."""
        return self.supernet_epochs[step] if step < len(self.supernet_epochs) else None

    def finetune_epoch(self, step: int) -> int:
        """Fine-tuning epochs done at ``step``."""
        return max(step - (self.inherited - 1), 0)


class Scheduler(_Strict):
    """How fidelity steps (a trial's reports: inherited weights, then each fine-tuning epoch) are spent."""

    type: Literal["fifo", "asha", "hyperband", "mobster", "freeze_thaw"] = Field(
        default="asha",
        description="fifo: every trial runs to the end; asha: asynchronous successive halving; hyperband: "
        "ASHA over several brackets; mobster: ASHA's rungs with new configs from a GP over (config, "
        "fidelity); freeze_thaw: trials are paused after each step and the shipped PFN chooses which "
        "to resume or whether to start a new one. Several objectives: promotion by Pareto rank.",
    )
    grace_period: PositiveInt = Field(default=1, description="Steps before the first rung.")
    reduction_factor: float = Field(
        default=2.0, gt=1, le=100, description="Keep 1/reduction_factor per rung."
    )
    brackets: int = Field(default=3, ge=1, le=8, description="hyperband: the number of brackets.")
    step: PositiveInt = Field(
        default=1, le=1000, description="freeze_thaw: steps a trial runs each time before it is paused."
    )
    candidates: int = Field(
        default=512, ge=1, le=4096, description="mobster, freeze_thaw: random configs scored per proposal."
    )
    max_steps: PositiveInt | None = Field(
        default=None,
        le=10_000_000,
        description="Reports all trials may make together; once made, paused trials stop and none "
        "resumes. Default: half of max_trials full trials for freeze_thaw, no limit for the others.",
    )

    def step_budget(self, max_trials: int, steps_per_trial: int) -> int | None:
        """The step budget in effect (``max_steps``, or freeze_thaw's default)."""
        if self.max_steps is not None or self.type != "freeze_thaw":
            return self.max_steps
        return max(steps_per_trial, max_trials * steps_per_trial // 2)


class SearchSpec(_Strict):
    name: str = Field(default="search", min_length=1, max_length=200)
    task: str = Field(
        min_length=1,
        max_length=200,
        description="A built-in task, e.g. 'digits', or an uploaded data set id.",
    )
    space: SerializeAsAny[ArchSpace] | None = Field(
        default=None,
        description="The family and its choices; taken from the supernet when supernet_id is set.",
    )
    supernet_id: str | None = Field(
        default=None, max_length=64, description="Reuse this trained supernet instead of training one."
    )
    objectives: list[Objective] = Field(min_length=1, max_length=8)
    budget: Budget = Budget()
    strategy: str = "random"
    scheduler: Scheduler = Scheduler()
    supernet: SupernetTraining = SupernetTraining()
    fidelity: Fidelity = Fidelity()
    hyperparameters: dict[str, Hyperparameter] = Field(
        default_factory=dict, description=f"Tuned per trial; names: {sorted(TUNABLE_HYPERPARAMETERS)}."
    )
    constraints: list[Constraint] = Field(default_factory=list, max_length=16)
    quantization: Quantization | None = Field(
        default=None,
        description="Search the quantization policy jointly with the architecture (null: float models).",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("space", mode="before")
    @classmethod
    def _parse_space(cls, value: Any) -> ArchSpace | None:
        return None if value is None else parse_space(value)

    @field_validator("quantization")
    @classmethod
    def _quantizable_layers(
        cls, quantization: Quantization | None, info: ValidationInfo
    ) -> Quantization | None:
        space = info.data.get("space")  # validated before (a field defined earlier)
        if quantization is not None and space is not None:
            quantization.check_units(space.quant_units(), space.family)
        return quantization

    @model_validator(mode="after")
    def _supernet_epochs_below_training(self) -> SearchSpec:
        """Checked against the named supernet's training once the service has filled it in, not
        against the default training settings of a spec that names a supernet and omits them."""
        if self.supernet_id is not None and "supernet" not in self.model_fields_set:
            return self
        late = [e for e in self.fidelity.supernet_epochs if e >= self.supernet.epochs]
        if late:
            raise ValueError(
                f"supernet_epochs: {late[0]} is not below supernet.epochs ({self.supernet.epochs}); the "
                "trained supernet is always the last inherited step"
            )
        return self

    @model_validator(mode="after")
    def _space_or_supernet(self) -> SearchSpec:
        if self.space is None and self.supernet_id is None:
            raise ValueError("give the search space ('space') or a trained supernet ('supernet_id')")
        return self

    @property
    def arch_space(self) -> ArchSpace:
        """The space (set once the service has filled it in from a named supernet)."""
        if self.space is None:
            raise ValueError("the spec's space has not been resolved from its supernet")
        return self.space

    def supernet_spec(self) -> SupernetSpec:
        """The supernet this search trains (or reuses)."""
        return SupernetSpec(
            name=f"{self.name} supernet",
            task=self.task,
            space=self.arch_space,
            training=self.supernet,
            seed=self.seed,
        )

    @field_validator("hyperparameters")
    @classmethod
    def _check_hyperparameters(cls, hps: dict[str, Any]) -> dict[str, Any]:
        for name, spec in hps.items():
            kinds = TUNABLE_HYPERPARAMETERS.get(name)
            if kinds is None:
                raise ValueError(
                    f"unknown hyperparameter {name!r}; tunable: {sorted(TUNABLE_HYPERPARAMETERS)}"
                )
            if not isinstance(spec, kinds):
                allowed = " or ".join(_KIND_NAMES[k] for k in kinds)
                raise ValueError(f"{name} takes a range of type {allowed}")
            if isinstance(spec, (FloatRange, IntRange)):
                if not spec.low < spec.high or (spec.log and spec.low <= 0):
                    raise ValueError(f"{name}: need low < high (and low > 0 on a log scale)")
                if name == "finetune_lr" and (spec.low <= 0 or spec.high > 10):
                    raise ValueError("finetune_lr must lie in (0, 10]")
                if name == "finetune_batch_size" and (spec.low < 1 or spec.high > 8192):
                    raise ValueError("finetune_batch_size must lie in [1, 8192]")
            if name == "finetune_optimizer" and not set(spec.choices) <= set(OPTIMIZERS):
                raise ValueError(f"finetune_optimizer choices must be among {list(OPTIMIZERS)}")
            batch_choices = spec.choices if name == "finetune_batch_size" and isinstance(spec, Choice) else []
            if not all(isinstance(c, int) and 1 <= c <= 8192 for c in batch_choices):
                raise ValueError("finetune_batch_size choices must be integers in [1, 8192]")
        return hps

    @model_validator(mode="after")
    def _unique_hyperparameter_choices(self) -> SearchSpec:
        for name, spec in self.hyperparameters.items():
            if isinstance(spec, Choice) and len(set(map(str, spec.choices))) != len(spec.choices):
                raise ValueError(f"hyperparameters.{name}: choices must be unique")
        return self

    def param_space(self) -> ParamSpace:
        """Every parameter a strategy chooses: the family's architecture, then the hyperparameters."""
        params = self.arch_space.params()
        if self.quantization is not None:
            params += self.quantization.params(self.arch_space.quant_units())
        params += [_hyperparameter_param(n, spec) for n, spec in sorted(self.hyperparameters.items())]
        return ParamSpace(params)

    def arch_of(self, config: dict[str, Any]) -> Any:
        return self.arch_space.arch_from_config(config)

    def policy_of(self, config: dict[str, Any]) -> Policy | None:
        """The quantization policy of a trial's config (None when the search does not quantize)."""
        return None if self.quantization is None else policy_from_config(config)

    def finetune_settings(self, config: dict[str, Any]) -> dict[str, Any]:
        """Fine-tuning settings of a trial: the spec's, overridden by the tuned hyperparameters."""
        settings = {
            "finetune_lr": self.fidelity.finetune_lr,
            "finetune_batch_size": self.supernet.batch_size,
            "finetune_optimizer": "sgd",
        }
        settings.update({k: config[k] for k in self.hyperparameters if k in config})
        return settings

    @field_validator("objectives")
    @classmethod
    def _unique_metrics(cls, objectives: list[Objective]) -> list[Objective]:
        metrics = [o.metric for o in objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"each metric may appear once among the objectives, got {metrics}")
        return objectives

    @property
    def steps(self) -> FidelitySteps:
        """A trial's fidelity steps (see ``FidelitySteps``)."""
        calibration = self.quantization.calibration_examples if self.quantization is not None else []
        return FidelitySteps(
            tuple(self.fidelity.validation_examples),
            tuple(calibration),
            self.fidelity.finetune_epochs,
            tuple(self.fidelity.supernet_epochs),
        )

    def beyond_task(
        self, train_examples: int, validation_examples: int
    ) -> tuple[tuple[str, ...], str] | None:
        """The first subset this spec asks for that the task's splits cannot give (the path of its
        field, and why), or None: each validation subset must be smaller than the validation split
        (the whole split is the last step), and a calibration set no larger than the training split."""
        too_many = [n for n in self.fidelity.validation_examples if n >= validation_examples]
        if too_many:
            return ("fidelity", "validation_examples"), (
                f"{too_many[0]} is not below the {validation_examples} validation examples "
                f"of task {self.task!r}"
            )
        calibration = self.steps.calibration_examples
        if calibration and calibration[-1] > train_examples:
            return ("quantization", "calibration_examples"), (
                f"{calibration[-1]} is more than the {train_examples} training examples of task {self.task!r}"
            )
        return None

    @property
    def max_fidelity(self) -> int:
        """The last fidelity step of a trial that runs to the end (steps count from 0)."""
        return self.steps.last

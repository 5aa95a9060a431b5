"""The search spec: what a user submits (task, space, objectives, budget, strategy, fidelities, seed).

Structural validation lives here (pydantic); names that depend on registries of higher layers
(task, strategy) are checked by the service before anything is stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from search_spaces.elastic_cnn_space import ElasticCNNSpace
from supernas.objectives import Direction, Metric


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    metric: Metric
    direction: Direction


class Budget(_Strict):
    max_trials: PositiveInt = Field(default=20, le=100_000)
    max_parallel: PositiveInt = Field(default=1, le=1024)
    max_duration_s: float | None = Field(
        default=3600.0, gt=0, description="Wall-clock budget; null for none."
    )


class SupernetTraining(_Strict):
    """Weight-sharing training of the supernet with the sandwich rule."""

    epochs: PositiveInt = Field(default=10, le=1000)
    batch_size: PositiveInt = Field(default=64, le=8192)
    lr: float = Field(default=0.05, gt=0, le=10)
    weight_decay: float = Field(default=5e-4, ge=0, le=1)
    random_subnets_per_step: int = Field(default=2, ge=0, le=16)


class Fidelity(_Strict):
    """Fine-tuning epochs of a sub-network from its inherited weights; each epoch is one rung."""

    finetune_epochs: int = Field(default=2, ge=0, le=1000)
    finetune_lr: float = Field(default=0.01, gt=0, le=10)


class Scheduler(_Strict):
    type: Literal["asha", "fifo"] = "asha"
    grace_period: PositiveInt = 1
    reduction_factor: float = Field(default=2.0, gt=1)


class SearchSpec(_Strict):
    name: str = Field(default="search", min_length=1, max_length=200)
    task: str = Field(min_length=1, max_length=200, description="A built-in data set, e.g. 'digits'.")
    space: ElasticCNNSpace
    objectives: list[Objective] = Field(min_length=1, max_length=8)
    budget: Budget = Budget()
    strategy: str = "random"
    scheduler: Scheduler = Scheduler()
    supernet: SupernetTraining = SupernetTraining()
    fidelity: Fidelity = Fidelity()
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @field_validator("objectives")
    @classmethod
    def _unique_metrics(cls, objectives: list[Objective]) -> list[Objective]:
        metrics = [o.metric for o in objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"each metric may appear once among the objectives, got {metrics}")
        return objectives

    @property
    def max_fidelity(self) -> int:
        """The last rung: fine-tuning epochs completed by a trial that ran to the end."""
        return self.fidelity.finetune_epochs

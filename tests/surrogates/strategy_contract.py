"""The contract every strategy passes (as Optuna ships ``BasicSamplerTestCase``).

``tests/surrogates/test_strategy_contract.py`` runs it for every registered strategy; a plug-in
strategy can import ``CONTRACT_PROBLEMS`` and ``check_contract`` to run the same checks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from search_spaces.params import Categorical, Condition, Float, Integer, ParamSpace
from search_spaces.quantization import policy_from_config
from search_spaces.spec import Constraint, Objective, SearchSpec
from supernas.records import Observation
from supernas.states import TrialState
from surrogates.observations import config_key
from surrogates.strategy import SearchProblem, Strategy

MIXED_SPACE = ParamSpace(
    [
        Categorical("depth", (1, 2, 3), ordered=True),
        Categorical("k_b1", (3, 5), ordered=True, condition=Condition("depth", (2, 3))),
        Categorical("k_b2", (3, 5), ordered=True, condition=Condition("depth", (3,))),
        Integer("batch", 8, 256, log=True),
        Float("lr", 1e-4, 1e-1, log=True),
        Float("dropout", 0.0, 0.5),
        Categorical("optimizer", ("sgd", "adam", "rmsprop")),
    ]
)
ACC = Objective(metric="accuracy", direction="maximize")
LAT = Objective(metric="latency_ms", direction="minimize")
PARAMS = Objective(metric="params", direction="minimize")

# The joint encoding a quantization search gives strategies: the CNN's architecture (per-block kernels,
# conditioned on depth), a weight and an activation gene per unit (masked with its block), and a
# fine-tuning hyperparameter.
JOINT_SPACE = SearchSpec(
    task="digits",
    space={"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2, 3], "kernel_per_block": True},
    objectives=[ACC],
    quantization={},
    hyperparameters={"finetune_lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}},
).param_space()
BITS = {"float": 32, "int8": 8, "int4": 4}

CONTRACT_PROBLEMS = {
    "single": SearchProblem(MIXED_SPACE, (ACC,)),
    "two_objectives": SearchProblem(MIXED_SPACE, (ACC, LAT)),
    "three_objectives_constrained": SearchProblem(
        MIXED_SPACE, (ACC, LAT, PARAMS), (Constraint(metric="latency_ms", op="<=", value=3.0),)
    ),
    "joint_architecture_quantization": SearchProblem(JOINT_SPACE, (ACC, LAT, PARAMS)),
}


def toy_metrics(config: dict[str, Any]) -> dict[str, float]:
    """A deterministic stand-in for training: deeper and well-tuned is more accurate and slower."""
    if "depth_s0" in config:
        return _joint_toy_metrics(config)
    depth = config["depth"]
    lr_term = -abs(math.log10(config["lr"]) + 2.0) * 0.1
    kernels = sum(config.get(k, 0) for k in ("k_b1", "k_b2"))
    accuracy = 0.5 + 0.1 * depth + lr_term - 0.2 * config["dropout"] ** 2 + 0.01 * kernels
    accuracy += 0.02 * (config["optimizer"] == "adam")
    latency = 0.8 * depth + 0.05 * kernels + 200.0 / config["batch"]
    return {"accuracy": accuracy, "latency_ms": latency, "params": 1000.0 * depth + 10 * kernels}


def _joint_toy_metrics(config: dict[str, Any]) -> dict[str, float]:
    """Deeper and wider-bit models are more accurate, slower and larger."""
    depth = config["depth_s0"] + config["depth_s1"]
    bits = [
        BITS[p.weights] + (BITS[p.activations] if p.activations != "float" else 0)
        for p in policy_from_config(config).values()
    ]
    accuracy = (
        0.6 + 0.05 * depth + 0.002 * sum(bits) / len(bits) - 0.1 * abs(math.log10(config["finetune_lr"]) + 2)
    )
    return {"accuracy": accuracy, "latency_ms": 0.5 * depth + 0.02 * sum(bits), "params": 100.0 * sum(bits)}


def toy_history(problem: SearchProblem, n: int, seed: int = 0) -> list[Observation]:
    """n observations of random configs, with a few failed, pruned, NaN and infeasible ones mixed in."""
    rng = np.random.default_rng(seed)
    history = []
    for number in range(n):
        config = problem.space.sample(rng)
        metrics: dict[str, float] = toy_metrics(config)
        state = TrialState.SUCCEEDED
        if number % 7 == 3:
            state, metrics = TrialState.FAILED, {}
        elif number % 7 == 5:
            state = TrialState.PRUNED
        elif number % 11 == 6:
            metrics = {**metrics, "accuracy": float("nan")}
        if state == TrialState.SUCCEEDED and any(c.violation(metrics) for c in problem.constraints):
            state = TrialState.INFEASIBLE
        history.append(Observation(number, config, state, metrics, 1.0))
    return history


def check_batch(problem: SearchProblem, suggestions: list, n: int) -> None:
    assert len(suggestions) == n
    for suggestion in suggestions:
        assert problem.space.validate(suggestion.config) == suggestion.config
        for metric, prediction in suggestion.predictions.items():
            assert metric in {o.metric.value for o in problem.objectives}
            assert math.isfinite(prediction.mean) and math.isfinite(prediction.std) and prediction.std >= 0
        if suggestion.acquisition_value is not None:
            assert math.isfinite(suggestion.acquisition_value)


def check_contract(strategy_cls: type[Strategy], problem: SearchProblem) -> None:
    """Valid batches from empty and mixed histories; deterministic; no repeats of pending configs."""
    strategy = strategy_cls(problem, seed=11)
    check_batch(problem, strategy.ask([], [], 3), 3)

    history = toy_history(problem, 24)
    pending = [problem.space.sample(np.random.default_rng(99))]
    first = strategy.ask(history, pending, 4)
    check_batch(problem, first, 4)
    again = strategy_cls(problem, seed=11).ask(history, pending, 4)
    assert [s.config for s in first] == [s.config for s in again], "same inputs must give the same batch"

    pending_keys = {config_key(c) for c in pending}
    batch_keys = [config_key(s.config) for s in first]
    assert not pending_keys & set(batch_keys), "a pending config was suggested again"
    assert len(set(batch_keys)) == len(batch_keys), "a batch repeated a config"

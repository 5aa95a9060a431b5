"""Searches of every shape the dashboard must draw, inserted straight through the storage layer."""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from search_spaces.spec import SearchSpec
from service.storage import Storage
from service.storage.models import SearchRow, TrialReportRow, TrialRow, utcnow
from supernas.states import SearchState, TrialState

EXAMPLE_SPEC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "digits-small.json").read_text()
)
ACCURACY = {"metric": "accuracy", "direction": "maximize"}
PARAMS = {"metric": "params", "direction": "minimize"}
LATENCY = {"metric": "latency_ms", "direction": "minimize"}
PARAMS_LIMIT = 9000  # the two-objective searches' constraint: params <= 9000


def spec_with(objectives: list[dict[str, str]], **changes: Any) -> dict[str, Any]:
    """The digits example spec with other objectives, normalised like the API stores it."""
    spec = copy.deepcopy(EXAMPLE_SPEC) | {"objectives": objectives} | changes
    return SearchSpec.model_validate(spec).model_dump(mode="json")


def config_of(rng: random.Random) -> dict[str, Any]:
    return {
        "depth_s0": rng.choice([1, 2]),
        "depth_s1": rng.choice([1, 2]),
        "width_mult": rng.choice([0.5, 1.0]),
        "kernel_size": rng.choice([3, 5]),
    }


def metrics_of(rng: random.Random, fidelity: float = 1.0) -> dict[str, float]:
    params = rng.randint(2000, 14000)
    accuracy = 0.55 + 0.3 * math.log(params / 2000) / math.log(7) + rng.uniform(-0.1, 0.1) + 0.02 * fidelity
    latency_ms = 0.1 + params / 40000 + rng.uniform(0, 0.2)
    return {"accuracy": round(min(accuracy, 0.99), 4), "params": params, "latency_ms": round(latency_ms, 4)}


@dataclass(frozen=True)
class Inserted:
    search_id: str
    name: str
    numbers: dict[str, list[int]]  # trial state -> trial numbers


def insert_search(
    storage: Storage,
    name: str,
    objectives: list[dict[str, str]],
    trials: int,
    seed: int = 0,
    infeasible_every: int = 0,
    failed: bool = False,
    state: SearchState = SearchState.SUCCEEDED,
    suggestion_for: set[int] | None = None,
) -> Inserted:
    """A search with ``trials`` finished trials, each with learning-curve reports at fidelity 0 and 1.

    ``infeasible_every`` k: every k-th trial violates ``params <= PARAMS_LIMIT``; ``failed``: every
    trial fails (and so does the search); ``suggestion_for``: trials that carry a strategy prediction.
    """
    rng = random.Random(seed)
    constraints = [{"metric": "params", "op": "<=", "value": PARAMS_LIMIT}] if infeasible_every else []
    budget = EXAMPLE_SPEC["budget"] | {"max_trials": max(trials, 1)}
    spec = spec_with(objectives, name=name, constraints=constraints, budget=budget)
    record, _ = storage.create_search(spec, name)
    storage.set_search_state(record.id, SearchState.RUNNING, "claimed by dispatcher")
    numbers: dict[str, list[int]] = {}
    for number in range(trials):
        suggestion = None
        if suggestion_for and number in suggestion_for:
            suggestion = {  # shaped like surrogates.strategy.Suggestion.record
                "strategy": "botorch",
                "predictions": {
                    "accuracy": {"mean": 0.9, "std": 0.02},
                    "params": {"mean": 8000.0, "std": 900.0},
                },
                "acquisition_value": 0.125,
                "candidates": 256,
            }
        storage.create_trial(record.id, number, config_of(rng), suggestion)
        storage.mark_trial_running(record.id, number)
        final = metrics_of(rng)
        if failed:
            storage.record_trial_report(record.id, number, 0, 0.0, metrics_of(rng, 0.0))
            storage.finish_trial(record.id, number, TrialState.FAILED, "RuntimeError: out of memory in conv1")
            numbers.setdefault("failed", []).append(number)
            continue
        storage.record_trial_report(record.id, number, 0, 0.0, metrics_of(rng, 0.0))
        storage.record_trial_report(record.id, number, 1, 1.0, final)
        if infeasible_every and number % infeasible_every == infeasible_every - 1:
            final["params"] = PARAMS_LIMIT + 1000 + number
            reason = f"params = {final['params']} violates <= {PARAMS_LIMIT}"
            storage.finish_trial(record.id, number, TrialState.INFEASIBLE, reason, metrics=final)
            numbers.setdefault("infeasible", []).append(number)
        else:
            storage.finish_trial(record.id, number, TrialState.SUCCEEDED, "completed", metrics=final)
            numbers.setdefault("succeeded", []).append(number)
    if failed:
        storage.set_search_state(
            record.id,
            SearchState.FAILED,
            f"all {trials} trials failed; last: RuntimeError: out of memory in conv1",
        )
    elif state is not SearchState.RUNNING:
        storage.set_search_state(record.id, state, "budget exhausted")
    return Inserted(record.id, name, numbers)


def insert_large_search(storage: Storage, name: str, trials: int, seed: int = 0) -> Inserted:
    """A finished two-objective search with ``trials`` trials in one bulk insert of storage rows,
    spread over an hour, each with a learning curve at fidelity 0 and 1."""
    rng = random.Random(seed)
    budget = EXAMPLE_SPEC["budget"] | {"max_trials": trials, "max_duration_s": None}
    record, _ = storage.create_search(spec_with([ACCURACY, PARAMS], name=name, budget=budget), name)
    started = utcnow() - timedelta(hours=1)
    step_s = 3500 / trials
    rows = []
    for number in range(trials):
        finished = started + timedelta(seconds=5 + number * step_s)
        rows.append(
            TrialRow(
                search_id=record.id,
                number=number,
                state=TrialState.SUCCEEDED.value,
                config=config_of(rng),
                metrics=metrics_of(rng),
                fidelity=1.0,
                state_reason="completed",
                created_at=finished - timedelta(seconds=2),
                started_at=finished - timedelta(seconds=2),
                finished_at=finished,
                updated_at=finished,
            )
        )
    with Session(storage.engine) as s, s.begin():
        s.add_all(rows)
        s.flush()
        for row in rows:
            s.add(TrialReportRow(trial_pk=row.pk, step=0, fidelity=0.0, metrics=metrics_of(rng, 0.0)))
            s.add(TrialReportRow(trial_pk=row.pk, step=1, fidelity=1.0, metrics=row.metrics))
        s.execute(
            update(SearchRow)
            .where(SearchRow.id == record.id)
            .values(
                state=SearchState.SUCCEEDED.value,
                state_reason="budget exhausted",
                started_at=started,
                finished_at=started + timedelta(seconds=3600),
            )
        )
    return Inserted(record.id, name, {"succeeded": list(range(trials))})

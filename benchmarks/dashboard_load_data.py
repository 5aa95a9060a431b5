"""The dashboard benchmark's search: its seeded trials, written into a supernas SQLite database and
an Optuna RDB storage."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
INFEASIBLE_RATE = 0.03
FAILED_RATE = 0.003
REPORTS = 3  # learning-curve reports per finished trial
LATENCY_LIMIT_MS = 8.0
STARTED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

DEPTHS = (1, 2, 3)
WIDTHS = (0.5, 0.75, 1.0)
KERNELS = (3, 5)
EXPANDS = (2, 4)
LR_RANGE = (1e-4, 1e-1)

SPEC: dict[str, Any] = {
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "budget": {"max_parallel": 4},
    "fidelity": {"finetune_epochs": REPORTS},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    "hyperparameters": {
        "finetune_lr": {"type": "float", "low": LR_RANGE[0], "high": LR_RANGE[1], "log": True}
    },
    "constraints": [{"metric": "latency_ms", "op": "<=", "value": LATENCY_LIMIT_MS}],
}

DIRECTIONS = [o["direction"] for o in SPEC["objectives"]]


@dataclass(frozen=True)
class Trial:
    number: int
    state: str  # "succeeded", "infeasible" or "failed"
    config: dict[str, Any]
    accuracy: float
    params: float
    latency_ms: float
    curve: tuple[float, ...]  # accuracy at reports 1..REPORTS
    created: datetime
    started: datetime
    finished: datetime
    reason: str | None


def make_trials(n: int, seed: int = SEED) -> list[Trial]:
    """``n`` finished trials of one search, the same for both tools."""
    rng = np.random.default_rng(seed)
    trials = []
    for number in range(n):
        depth = [int(d) for d in rng.choice(DEPTHS, size=2)]
        width = float(rng.choice(WIDTHS))
        kernel, expand = int(rng.choice(KERNELS)), int(rng.choice(EXPANDS))
        lr = float(np.exp(rng.uniform(np.log(LR_RANGE[0]), np.log(LR_RANGE[1]))))
        size = width**2 * (depth[0] + 2 * depth[1]) * (1 + 0.2 * (kernel == 5)) * expand / 2
        params = float(round(4000 + 9000 * size * rng.uniform(0.9, 1.1)))
        lr_penalty = 0.05 * abs(np.log10(lr) + 2)
        accuracy = float(np.clip(0.99 - 0.3 / (1 + size) - lr_penalty + rng.normal(0, 0.02), 0.05, 0.999))
        curve = tuple(
            float(accuracy - 0.08 * (REPORTS - step) * rng.uniform(0.5, 1.0))
            for step in range(1, 1 + REPORTS)
        )
        latency = float(LATENCY_LIMIT_MS * rng.uniform(0.3, 0.95))
        draw = rng.random()
        state, reason = "succeeded", None
        if draw < FAILED_RATE:
            state, reason = "failed", "RuntimeError: CUDA out of memory (simulated)"
        elif draw < FAILED_RATE + INFEASIBLE_RATE:
            latency = float(LATENCY_LIMIT_MS * rng.uniform(1.05, 1.6))
            state, reason = "infeasible", f"latency_ms = {latency:.6g} violates <= {LATENCY_LIMIT_MS:g}"
        created = STARTED + timedelta(seconds=2.0 * number)
        started = created + timedelta(seconds=0.5)
        finished = started + timedelta(seconds=float(rng.uniform(10, 40)))
        config = {
            "depth_s0": depth[0],
            "depth_s1": depth[1],
            "width_mult": width,
            "kernel_size": kernel,
            "expand_ratio": expand,
            "finetune_lr": lr,
        }
        trials.append(
            Trial(number, state, config, accuracy, params, latency, curve, created, started, finished, reason)
        )
    return trials


def build_supernas(db_path: Path, trials: Sequence[Trial]) -> tuple[str, str]:
    """A finished supernas search holding ``trials`` in a new SQLite file; returns (url, search id)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from search_spaces.spec import SearchSpec
    from service.storage import Storage
    from service.storage.models import SearchRow, TrialReportRow, TrialRow
    from supernas.states import SearchState, TrialState

    url = f"sqlite:///{db_path}"
    storage = Storage(url)
    try:
        storage.upgrade()
        spec = SearchSpec.model_validate(SPEC | {"budget": SPEC["budget"] | {"max_trials": len(trials)}})
        record, _ = storage.create_search(spec.model_dump(mode="json"), "dashboard-load")
        with Session(storage.engine) as s, s.begin():
            search = s.scalars(select(SearchRow).where(SearchRow.id == record.id)).one()
            search.state, search.state_reason = SearchState.SUCCEEDED.value, None
            search.created_at = STARTED - timedelta(seconds=30)
            search.started_at, search.finished_at = STARTED, max(t.finished for t in trials)
            rows = [_trial_row(TrialRow, TrialState, record.id, t) for t in trials]
            s.add_all(rows)
            s.flush()
            s.add_all(
                TrialReportRow(
                    trial_pk=row.pk,
                    step=step,
                    fidelity=float(step - 1),
                    metrics={"accuracy": value, "params": t.params},
                    created_at=t.started + (t.finished - t.started) * step / (REPORTS + 1),
                )
                for row, t in zip(rows, trials, strict=True)
                if t.state != "failed"
                for step, value in enumerate(t.curve, start=1)
            )
        return url, record.id
    finally:
        storage.dispose()


def _trial_row(row_class: Any, states: Any, search_id: str, t: Trial) -> Any:
    metrics = (
        {}
        if t.state == "failed"
        else {"accuracy": t.accuracy, "params": t.params, "latency_ms": t.latency_ms}
    )
    return row_class(
        search_id=search_id,
        number=t.number,
        state=states(t.state).value,
        config=t.config,
        metrics=metrics,
        fidelity=None if t.state == "failed" else float(REPORTS - 1),
        state_reason=t.reason,
        created_at=t.created,
        started_at=t.started,
        finished_at=t.finished,
        updated_at=t.finished,
    )


def optuna_trials(trials: Sequence[Trial]) -> list[Any]:
    """The trials as Optuna FrozenTrials: failed ones FAIL, the others COMPLETE with both values, the
    learning curve as intermediate values and the latency constraint's slack (<= 0: feasible) in the
    ``constraints`` system attribute, the list form that optuna-dashboard reads."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import FrozenTrial, TrialState

    distributions = {
        "depth_s0": IntDistribution(min(DEPTHS), max(DEPTHS)),
        "depth_s1": IntDistribution(min(DEPTHS), max(DEPTHS)),
        "width_mult": CategoricalDistribution(WIDTHS),
        "kernel_size": CategoricalDistribution(KERNELS),
        "expand_ratio": CategoricalDistribution(EXPANDS),
        "finetune_lr": FloatDistribution(*LR_RANGE, log=True),
    }
    out = []
    for t in trials:
        failed = t.state == "failed"
        out.append(
            FrozenTrial(
                number=-1,
                trial_id=-1,
                state=TrialState.FAIL if failed else TrialState.COMPLETE,
                value=None,
                values=None if failed else [t.accuracy, t.params],
                datetime_start=_local_naive(t.started),
                datetime_complete=_local_naive(t.finished),
                params=t.config,
                distributions=distributions,
                user_attrs={} if failed else {"latency_ms": t.latency_ms},
                system_attrs={} if failed else {"constraints": [t.latency_ms - LATENCY_LIMIT_MS]},
                intermediate_values={} if failed else dict(enumerate(t.curve, start=1)),
            )
        )
    return out


def _local_naive(value: datetime) -> datetime:
    """Optuna's FrozenTrial datetimes are naive local time."""
    return value.astimezone().replace(tzinfo=None)


def build_optuna(db_path: Path, trials: Sequence[Trial], bulk: bool = True) -> tuple[str, int]:
    """An Optuna study (both directions, metric names) holding ``trials`` in a new SQLite RDB storage;
    returns (url, study id).

    ``bulk=False`` adds them with ``study.add_trials``: one transaction and ~10 ms of ORM work per
    trial (about 2.5 minutes for 10,000 on this machine). ``bulk=True`` writes the same rows with
    Optuna's own ORM models in one session (seconds); the benchmark's test checks that both give the
    same study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db_path}"
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.create_study(storage=storage, study_name="dashboard-load", directions=DIRECTIONS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o["metric"] for o in SPEC["objectives"]])
        study_id = storage.get_study_id_from_name("dashboard-load")
        if bulk:
            _insert_optuna_trials(storage.engine, study_id, optuna_trials(trials))
        else:
            study.add_trials(optuna_trials(trials))
        return url, study_id
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _insert_optuna_trials(engine: Any, study_id: int, frozen: Sequence[Any]) -> None:
    """What ``RDBStorage`` writes for each of ``frozen`` (numbered 0, 1, ...), in one session."""
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models  # Optuna's schema: no public bulk insert exists
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    ivalue = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
    with Session(engine) as s, s.begin():
        rows = [
            models.TrialModel(
                study_id=study_id,
                number=number,
                state=trial.state,
                datetime_start=trial.datetime_start,
                datetime_complete=trial.datetime_complete,
            )
            for number, trial in enumerate(frozen)
        ]
        s.add_all(rows)
        s.flush()
        pairs = [(row.trial_id, trial) for row, trial in zip(rows, frozen, strict=True)]
        values, params, user_attrs, system_attrs, intermediate = [], [], [], [], []
        for trial_id, trial in pairs:
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                values.append(
                    {"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind}
                )
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": distribution.to_internal_repr(value),
                        "distribution_json": distribution_to_json(distribution),
                    }
                )
            for attrs, target in ((trial.user_attrs, user_attrs), (trial.system_attrs, system_attrs)):
                target += [
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
                ]
            for step, value in trial.intermediate_values.items():
                stored, kind = ivalue(value)
                intermediate.append(
                    {
                        "trial_id": trial_id,
                        "step": step,
                        "intermediate_value": stored,
                        "intermediate_value_type": kind,
                    }
                )
        for model, batch in (
            (models.TrialValueModel, values),
            (models.TrialParamModel, params),
            (models.TrialUserAttributeModel, user_attrs),
            (models.TrialSystemAttributeModel, system_attrs),
            (models.TrialIntermediateValueModel, intermediate),
        ):
            if batch:
                s.execute(insert(model), batch)

"""Validation of a submitted spec against what the service knows: tasks (built-in or uploaded data
sets) and the sizes of their splits, supernet families and the kind of data each accepts,
strategies, and trained supernets.

A search that names ``supernet_id`` gets its space (and supernet training settings) from that
supernet, so the stored spec says exactly what ran. The supernet may still be queued or training:
the search then waits queued until it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from search_spaces.families import get_family
from search_spaces.spec import SearchSpec, SupernetSpec
from service.auth import Principal
from service.storage import Storage
from supernas.errors import ConflictError, InvalidInputError, NotFoundError
from supernas.states import SupernetState
from surrogates.registry import STRATEGIES
from workers.task_source import is_dataset_id
from workers.tasks import TASK_INFO, TASKS, split_sizes, task_available


@dataclass(frozen=True)
class _TaskFacts:
    """What a spec is checked against about its task: its input kind and the sizes of its splits."""

    kind: str
    train_examples: int
    validation_examples: int


def _task_facts(task: str, storage: Storage, loc: tuple[str, ...], principal: Principal) -> _TaskFacts:
    """The kind and split sizes of ``task``, raising ``InvalidInputError`` for unknown or unavailable
    tasks (another owner's data set is unknown too)."""
    if is_dataset_id(task):
        try:
            dataset = storage.get_dataset(task)
        except NotFoundError:
            dataset = None
        if dataset is None or not principal.sees(dataset.owner):
            raise InvalidInputError(f"no uploaded data set with id {task!r}", loc)
        return _TaskFacts(dataset.kind, *split_sizes(dataset.num_examples))
    if task not in TASKS:
        raise InvalidInputError(
            f"unknown task {task!r}; built-in tasks: {sorted(TASKS)}, or an uploaded data set id (ds_...)",
            loc,
        )
    missing = task_available(task)
    if missing is not None:
        raise InvalidInputError(missing, loc)
    info = TASK_INFO[task]
    return _TaskFacts(info.kind, info.train_examples, info.validation_examples)


def _check_family_takes_task(family_name: str, kind: str, task: str) -> None:
    family = get_family(family_name)
    if not family.accepts(kind):
        raise InvalidInputError(
            f"family {family.name} takes {' or '.join(sorted(family.input_kinds))} data, "
            f"but task {task!r} is {kind} data",
            ("body", "space", "family"),
        )


def check_supernet_spec(spec: SupernetSpec, storage: Storage, principal: Principal) -> None:
    task = _task_facts(spec.task, storage, ("body", "task"), principal)
    _check_family_takes_task(spec.space.family, task.kind, spec.task)


def resolve_search_spec(spec: SearchSpec, storage: Storage, principal: Principal) -> SearchSpec:
    """Check every name in ``spec``; with ``supernet_id``, fill in the supernet's space and training."""
    if spec.strategy not in STRATEGIES:
        raise InvalidInputError(
            f"unknown strategy {spec.strategy!r}; available: {sorted(STRATEGIES)}", ("body", "strategy")
        )
    task = _task_facts(spec.task, storage, ("body", "task"), principal)
    if spec.supernet_id is not None:
        spec = _with_supernet(spec, storage, principal)
    _check_family_takes_task(spec.arch_space.family, task.kind, spec.task)
    _check_subsets_fit_task(spec, task)
    return spec


def _check_subsets_fit_task(spec: SearchSpec, task: _TaskFacts) -> None:
    """Refuse validation or calibration subsets larger than the task's splits: every trial would fail."""
    beyond = spec.beyond_task(task.train_examples, task.validation_examples)
    if beyond is not None:
        field, reason = beyond
        raise InvalidInputError(reason, ("body", *field))


# a search naming a queued or training supernet waits queued until it is ready, or with
# fidelity.supernet_epochs until it trains (``claim_next_queued_search``)
_USABLE_SUPERNET_STATES = (SupernetState.READY, SupernetState.QUEUED, SupernetState.TRAINING)


def _with_supernet(spec: SearchSpec, storage: Storage, principal: Principal) -> SearchSpec:
    assert spec.supernet_id is not None
    loc = ("body", "supernet_id")
    try:
        supernet = storage.get_supernet(spec.supernet_id)
    except NotFoundError:
        supernet = None
    if supernet is None or not principal.sees(supernet.owner):
        raise InvalidInputError(f"no supernet with id {spec.supernet_id!r}", loc)
    if supernet.state not in _USABLE_SUPERNET_STATES:
        raise ConflictError(
            f"supernet {supernet.id} is {supernet.state.value} ({supernet.state_reason}); "
            "a search can name a supernet that is ready, queued or training"
        )
    trained = SupernetSpec.model_validate(supernet.spec)
    ready = supernet.state is SupernetState.READY  # one in training keeps every epoch's weights
    if spec.fidelity.supernet_epochs and ready and "snapshot_epochs" not in (supernet.summary or {}):
        raise InvalidInputError(
            f"supernet {supernet.id} keeps no per-epoch weights (it was trained before supernet epochs "
            "were a fidelity); train a new supernet or omit fidelity.supernet_epochs",
            ("body", "fidelity", "supernet_epochs"),
        )
    if spec.task != trained.task:
        raise InvalidInputError(
            f"supernet {supernet.id} was trained on task {trained.task!r}, not {spec.task!r}",
            ("body", "task"),
        )
    if spec.space is not None and spec.space != trained.space:
        raise InvalidInputError(
            f"space differs from the space supernet {supernet.id} was trained on; omit 'space' to use it",
            ("body", "space"),
        )
    if "supernet" in spec.model_fields_set and spec.supernet != trained.training:
        raise InvalidInputError(
            f"supernet training settings differ from those of supernet {supernet.id}; omit 'supernet'",
            ("body", "supernet"),
        )
    resolved: dict[str, Any] = spec.model_dump(mode="json")
    resolved["space"] = trained.space.model_dump(mode="json")
    resolved["supernet"] = trained.training.model_dump(mode="json")
    try:
        return SearchSpec.model_validate(resolved)
    except ValidationError as exc:  # a part of the spec that does not fit the supernet's space
        error = exc.errors()[0]
        where = tuple(str(part) for part in error["loc"])
        raise InvalidInputError(
            f"{error['msg']} (the space of supernet {supernet.id})", ("body", *where)
        ) from exc

"""Where a task's data comes from: a built-in task by name, or a data set uploaded through the service.

Uploaded data sets live in the artifact store under ``datasets/<id>/data.npz`` (written by the service,
read here with ``allow_pickle=False``); their ids start with ``ds_``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from workers.datasets import load_dataset_task
from workers.tasks import TaskData, load_task

DATASET_PREFIX = "ds_"


def is_dataset_id(task: str) -> bool:
    return task.startswith(DATASET_PREFIX)


def dataset_dir(artifacts_root: str | Path, dataset_id: str) -> Path:
    return Path(artifacts_root) / "datasets" / dataset_id


@lru_cache(maxsize=4)
def _load_dataset(artifacts_root: str, dataset_id: str) -> TaskData:
    return load_dataset_task(dataset_dir(artifacts_root, dataset_id), dataset_id)


def load_task_data(task: str, artifacts_root: str | Path) -> TaskData:
    """The arrays of ``task``: an uploaded data set when its id has the ``ds_`` prefix, else built-in."""
    if is_dataset_id(task):
        return _load_dataset(str(artifacts_root), task)
    return load_task(task)

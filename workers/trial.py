"""The Ray Tune trainable of one trial: inherit a sub-network, measure it, fine-tune it rung by rung.

Each report is one fidelity (fine-tuning epochs done, 0 = inherited weights after BatchNorm
recalibration). A trial that reaches the last rung exports its model before its last report,
so a model exists exactly for trials that ran to the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from ray import tune

from search_spaces.elastic_cnn import count_params
from search_spaces.elastic_cnn_space import CNNArch
from search_spaces.spec import SearchSpec
from workers.export import export_subnet
from workers.latency import measure_latency_ms
from workers.supernet_training import SupernetPaths, load_supernet
from workers.tasks import TaskData, load_task
from workers.training import accuracy, finetune_epoch, recalibrate_batchnorm


def trial_dir(artifacts_root: str, search_id: str, number: int) -> Path:
    return Path(artifacts_root) / "searches" / search_id / "trials" / str(number)


def evaluate_subnet(config: dict[str, Any], job: dict[str, Any]) -> None:
    """Tune function trainable; ``config`` = {"number", "arch"}, ``job`` = static search settings."""
    torch.set_num_threads(1)
    spec = SearchSpec.model_validate(job["spec"])
    number = int(config["number"])
    arch = spec.space.validate_arch(config["arch"])
    task = load_task(spec.task)
    torch.manual_seed(spec.seed * 100_003 + number)
    generator = torch.Generator().manual_seed(spec.seed * 100_003 + number)

    supernet = load_supernet(SupernetPaths(Path(job["supernet_dir"])))
    model = supernet.extract(arch)
    del supernet
    recalibrate_batchnorm(model, task.x_train)
    params = count_params(model)
    latency_ms = measure_latency_ms(model, task.input_shape)
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.fidelity.finetune_lr, momentum=0.9)

    for epoch in range(spec.max_fidelity + 1):
        if epoch > 0:
            finetune_epoch(model, task.x_train, task.y_train, optimizer, spec.supernet.batch_size, generator)
        metrics = {
            "accuracy": accuracy(model, task.x_val, task.y_val),
            "latency_ms": latency_ms,
            "params": params,
        }
        artifact_dir = None
        if epoch == spec.max_fidelity:
            out = trial_dir(job["artifacts_root"], job["search_id"], number)
            export_subnet(model, out, _manifest(spec, job, number, arch, metrics, epoch, task))
            artifact_dir = str(out)
        tune.report({"number": number, "fidelity": epoch, **metrics, "artifact_dir": artifact_dir})


def _manifest(
    spec: SearchSpec,
    job: dict[str, Any],
    number: int,
    arch: CNNArch,
    metrics: dict[str, Any],
    epoch: int,
    task: TaskData,
) -> dict[str, Any]:
    return {
        "format_version": 1,
        "search_id": job["search_id"],
        "trial_number": number,
        "family": spec.space.family,
        "architecture": arch.to_config(),
        "task": spec.task,
        "input_shape": [1, *task.input_shape],
        "num_classes": task.num_classes,
        "preprocessing": task.preprocessing,
        "fidelity": {"finetune_epochs": epoch, "finetune_lr": spec.fidelity.finetune_lr},
        "metrics": metrics,
        "metrics_split": "validation",
    }

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


def _optimizer(model: torch.nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    if settings["finetune_optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings["finetune_lr"])
    return torch.optim.SGD(model.parameters(), lr=settings["finetune_lr"], momentum=0.9)


def _violations(spec: SearchSpec, metrics: dict[str, Any]) -> str | None:
    reasons = [r for c in spec.constraints if (r := c.violation(metrics)) is not None]
    return "; ".join(reasons) or None


def evaluate_subnet(config: dict[str, Any], job: dict[str, Any]) -> None:
    """Tune function trainable; ``config`` = {"number", "params"}, ``job`` = static search settings.

    Latency and parameter count are final from the first report, so constraints on them stop an
    infeasible trial before any fine-tuning; a constraint on accuracy is checked at the last rung.
    """
    torch.set_num_threads(1)
    spec = SearchSpec.model_validate(job["spec"])
    number = int(config["number"])
    params_config = spec.param_space().validate(config["params"])
    arch = spec.arch_of(params_config)
    settings = spec.finetune_settings(params_config)
    task = load_task(spec.task)
    torch.manual_seed(spec.seed * 100_003 + number)
    generator = torch.Generator().manual_seed(spec.seed * 100_003 + number)

    supernet = load_supernet(SupernetPaths(Path(job["supernet_dir"])))
    model = supernet.extract(arch)
    del supernet
    recalibrate_batchnorm(model, task.x_train)
    costs = {"latency_ms": measure_latency_ms(model, task.input_shape), "params": count_params(model)}
    optimizer = _optimizer(model, settings)

    for epoch in range(spec.max_fidelity + 1):
        if epoch > 0:
            finetune_epoch(
                model, task.x_train, task.y_train, optimizer, settings["finetune_batch_size"], generator
            )
        metrics = {"accuracy": accuracy(model, task.x_val, task.y_val), **costs}
        last = epoch == spec.max_fidelity
        infeasible = _violations(spec, metrics if last else costs)
        artifact_dir = None
        if last and infeasible is None:
            out = trial_dir(job["artifacts_root"], job["search_id"], number)
            manifest = _manifest(spec, job, number, arch, params_config, settings, metrics, epoch, task)
            export_subnet(model, out, manifest)
            artifact_dir = str(out)
        report = {"number": number, "fidelity": epoch, **metrics, "artifact_dir": artifact_dir}
        tune.report(report | ({"infeasible": infeasible} if infeasible else {}))
        if infeasible:
            return


def _manifest(
    spec: SearchSpec,
    job: dict[str, Any],
    number: int,
    arch: CNNArch,
    params_config: dict[str, Any],
    settings: dict[str, Any],
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
        "config": params_config,
        "task": spec.task,
        "input_shape": [1, *task.input_shape],
        "num_classes": task.num_classes,
        "preprocessing": task.preprocessing,
        "fidelity": {"finetune_epochs": epoch, **settings},
        "metrics": metrics,
        "metrics_split": "validation",
    }

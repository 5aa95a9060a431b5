"""The Ray Tune trainable of one trial: inherit a sub-network, measure it, fine-tune it rung by rung.

Each report is one fidelity step: the inherited weights (after BatchNorm recalibration) on each
validation subset of ``fidelity.validation_examples`` (if any) and from the supernet after each
epoch of ``fidelity.supernet_epochs`` (if any; a step waits until its epoch is trained), then the
trained supernet's weights on the whole validation split, then after each fine-tuning epoch. A trial
that reaches the last step exports its model (TorchScript and ONNX, verified against PyTorch with
ONNX Runtime) before its last report, so a model exists exactly for trials that ran to the end; its
manifest also records the test-split accuracy, which no strategy ever sees. A search with
``quantization`` measures each trial under its policy instead (``workers.trial_quantization``):
costs in ONNX Runtime, a fake-quantized accuracy at each step, and at the end the real quantized
model, whose accuracy and costs are the trial's last report.

Every report but the trial's last carries a small checkpoint (the sub-network's weights and
BatchNorm statistics, the optimizer state, the random states and the measured costs), persisted by
Tune in the run's storage. A trial that Tune retries (it raised an error or its worker process was
lost) restores the latest one and continues with the next epoch, exactly as it would have run; so
does a trial set aside when its search stopped, in the search's next run (``workers.trial_checkpoints``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ray import tune

from search_spaces.spec import SearchSpec
from workers.allocator import retain_freed_memory
from workers.costs import measure_costs
from workers.export import export_subnet
from workers.supernet_training import SupernetPaths, load_supernet
from workers.task_source import load_task_data
from workers.tasks import TaskData
from workers.training import accuracy, finetune_epoch, recalibrate_batchnorm, training_subset
from workers.trial_checkpoints import CHECKPOINT_FILE, write_checkpoint_info
from workers.trial_outcome import constraint_violations, known_at
from workers.trial_quantization import PolicyEvaluation

VERIFY_EXAMPLES = 64
WEIGHTS_POLL_S = 1.0
CHECKPOINT_FORMAT = 1


def trial_dir(artifacts_root: str, search_id: str, number: int) -> Path:
    return Path(artifacts_root) / "searches" / search_id / "trials" / str(number)


def _optimizer(model: torch.nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    if settings["finetune_optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings["finetune_lr"])
    return torch.optim.SGD(model.parameters(), lr=settings["finetune_lr"], momentum=0.9)


def evaluate_subnet(config: dict[str, Any], job: dict[str, Any]) -> None:
    """Tune function trainable; ``config`` = {"number", "params"} and, for a trial resumed from an
    earlier run of the search, {"resume": {"checkpoint", "last_step"}}; ``job`` = static search settings.

    Cost metrics (latency, parameters, MACs, bytes, memory) are final from the first report, so
    constraints on them stop an infeasible trial before any fine-tuning; a constraint on accuracy is
    checked at the last rung. A retried or resumed trial restores its latest checkpoint and reports
    only the epochs after it.
    """
    torch.set_num_threads(1)
    retain_freed_memory()
    spec = SearchSpec.model_validate(job["spec"])
    number = int(config["number"])
    params_config = spec.param_space().validate(config["params"])
    arch = spec.arch_of(params_config)
    settings = spec.finetune_settings(params_config)
    task = load_task_data(spec.task, job["artifacts_root"])
    beyond = spec.beyond_task(len(task.x_train), len(task.x_val))  # the service refuses such specs
    if beyond is not None:
        raise ValueError(f"{'.'.join(beyond[0])}: {beyond[1]}")
    torch.manual_seed(spec.seed * 100_003 + number)
    generator = torch.Generator().manual_seed(spec.seed * 100_003 + number)
    x_tune, y_tune = training_subset(
        task.x_train, task.y_train, spec.fidelity.max_train_examples, spec.seed * 100_003 + number
    )

    steps = spec.steps
    supernet = SupernetPaths(Path(job["supernet_dir"]))
    model = _inherit(supernet, arch, steps.supernet_epoch(0))
    optimizer = _optimizer(model, settings)
    quantization = PolicyEvaluation.of(spec, params_config, arch, task)
    resumed = _restore(_latest_checkpoint(config), model, optimizer, generator)
    if resumed is None:
        recalibrate_batchnorm(model, task.x_train)
        costs = measure_costs(model, task.input_shape).as_dict()
        if quantization is not None:  # the costs of the model as it will run
            costs |= quantization.costs(model)
        first_step = 0
    else:  # a retry or a resume: the weights, BatchNorm statistics and costs of the checkpointed step
        costs, first_step = resumed.costs, resumed.epoch + 1
    inherited_epoch = steps.supernet_epoch(first_step - 1 if resumed else 0)

    subsets = np.random.default_rng(spec.seed).permutation(len(task.x_val))  # one shuffle for all trials
    for step in range(first_step, spec.max_fidelity + 1):  # fidelity steps (see FidelitySteps)
        if steps.finetune_epoch(step) == 0 and steps.supernet_epoch(step) != inherited_epoch:
            inherited_epoch = steps.supernet_epoch(step)  # the supernet after more training epochs
            model.load_state_dict(_inherit(supernet, arch, inherited_epoch).state_dict())
            recalibrate_batchnorm(model, task.x_train)
        if steps.finetune_epoch(step) > 0:
            finetune_epoch(model, x_tune, y_tune, optimizer, settings["finetune_batch_size"], generator)
        size = steps.validation_subset(step)
        x_val, y_val = (
            (task.x_val, task.y_val)
            if size is None
            else (task.x_val[subsets[:size]], task.y_val[subsets[:size]])
        )
        if quantization is None:
            metrics = {"accuracy": accuracy(model, x_val, y_val), **costs}
        else:  # the fake-quantized estimate, until the real model exists
            metrics = {"accuracy": quantization.estimate(model, step, x_val, y_val), **costs}
        last = step == spec.max_fidelity
        infeasible = constraint_violations(spec, known_at(spec, step, metrics))
        artifact_dir = None
        if last and infeasible is None:
            out = trial_dir(job["artifacts_root"], job["search_id"], number)
            test_accuracy = accuracy(model, task.x_test, task.y_test)
            manifest = _manifest(spec, job, number, arch, params_config, settings, metrics, step, task)
            manifest["test_accuracy"] = test_accuracy
            export_subnet(
                model, out, manifest, input_shape=task.input_shape, verify_inputs=task.x_val[:VERIFY_EXAMPLES]
            )
            if quantization is not None:  # the real model's numbers replace the estimate's
                metrics |= quantization.finish(out, metrics["accuracy"])
                infeasible = constraint_violations(spec, metrics)
            artifact_dir = None if infeasible else str(out)
        report = {"number": number, "fidelity": step, **metrics, "artifact_dir": artifact_dir}
        if steps.supernet_epochs:  # which weights the step started from
            report["supernet_epoch"] = steps.supernet_epoch(step) or spec.supernet.epochs
        report |= {"infeasible": infeasible} if infeasible else {}
        if last or infeasible:  # the trial ends with this report: nothing to resume
            tune.report(report)
            return
        with tempfile.TemporaryDirectory(prefix="supernas-trial-") as directory:
            _save(Path(directory), _TrialState(step, costs), model, optimizer, generator)
            write_checkpoint_info(Path(directory), number, step)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))  # copied to storage


def _latest_checkpoint(config: dict[str, Any]) -> tune.Checkpoint | None:
    """Tune's latest checkpoint of this trial in this run (a retry), else the one of an earlier run
    of the search that the trial resumes from (``config["resume"]``), else None (a new trial)."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None and config.get("resume"):
        checkpoint = tune.Checkpoint.from_directory(config["resume"]["checkpoint"])
    return checkpoint


def _inherit(supernet: SupernetPaths, arch: Any, epoch: int | None) -> torch.nn.Module:
    """``arch`` extracted from the supernet after ``epoch`` (None: trained), waiting for it to exist."""
    while not supernet.weights_ready(epoch):
        if epoch is not None and supernet.summary.exists():
            raise FileNotFoundError(
                f"the supernet under {supernet.root} keeps no weights of epoch {epoch} (it was trained "
                "before supernet epochs were a fidelity)"
            )
        time.sleep(WEIGHTS_POLL_S)
    return load_supernet(supernet, epoch).extract(arch)


@dataclass(frozen=True)
class _TrialState:
    epoch: int  # the last fidelity step done (0: inherited weights, BatchNorm recalibrated)
    costs: dict[str, Any]


def _save(
    directory: Path,
    state: _TrialState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "costs": state.costs,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "generator": generator.get_state(),
    }
    torch.save(payload, directory / CHECKPOINT_FILE)


def _restore(
    checkpoint: tune.Checkpoint | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> _TrialState | None:
    """Load the latest checkpoint into the model, optimizer and random generators; None without one."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        payload = torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"unknown trial checkpoint format {payload.get('format')!r}")
    model.load_state_dict(payload["model"])
    model.eval()
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["torch_rng"])
    generator.set_state(payload["generator"])
    return _TrialState(int(payload["epoch"]), dict(payload["costs"]))


def _manifest(
    spec: SearchSpec,
    job: dict[str, Any],
    number: int,
    arch: Any,
    params_config: dict[str, Any],
    settings: dict[str, Any],
    metrics: dict[str, Any],
    epoch: int,
    task: TaskData,
) -> dict[str, Any]:
    return {
        "format_version": 2,
        "search_id": job["search_id"],
        "trial_number": number,
        "supernet_id": job.get("supernet_id"),
        "family": spec.arch_space.family,
        "architecture": arch.to_config(),
        "config": params_config,
        "task": spec.task,
        "input_kind": task.kind,
        "input_shape": [1, *task.input_shape],
        "num_classes": task.num_classes,
        "preprocessing": task.preprocessing,
        "fidelity": {"finetune_epochs": spec.steps.finetune_epoch(epoch), **settings},
        "metrics": metrics,
        "metrics_split": "validation",
    }

"""Weight-sharing training of a supernet of any family, checkpointed every epoch and resumable.

Two methods: the sandwich rule (BigNAS / Once-for-All: the largest, the smallest and a few random
sub-networks per step, with in-place distillation of the others from the largest's soft predictions)
and single-path one-shot (SPOS: one uniformly sampled sub-network per step). The learning rate follows
a cosine schedule over all steps. Every epoch writes a checkpoint holding the weights, the optimizer,
the schedule and the random-number state, so an interrupted training resumes where it stopped and
ends with the same weights; a finished supernet is reused as it is. Each epoch also keeps a snapshot
of the weights alone (``epochs/{epoch}.pt``), so supernet training epochs are a fidelity: a trial can
inherit its sub-network from the supernet as it was after any epoch, even while training goes on.
A supernet whose largest sub-network falls to chance accuracy (or whose loss is not finite) has
collapsed: training stops with ``SupernetCollapsedError`` instead of spending the rest of the budget.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from search_spaces.families import get_family
from search_spaces.family import ArchSpace
from search_spaces.spec import SupernetSpec, SupernetTraining
from search_spaces.supernet import Supernet
from workers.allocator import retain_freed_memory
from workers.export import write_json_atomic
from workers.task_source import load_task_data
from workers.tasks import TaskData, data_fingerprint
from workers.training import accuracy, batches, recalibrate_batchnorm, training_subset

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "supernet.pt"
SUMMARY_FILE = "supernet.json"
PROGRESS_FILE = "progress.json"
SNAPSHOT_DIR = "epochs"
CHANCE_MARGIN = 0.02  # accuracy within this of chance counts as chance
COLLAPSE_CHECK_FROM_EPOCH = 2
COLLAPSE_CHECK_FRACTION = 0.3  # a network still at chance after this share of its epochs has collapsed


class SupernetCollapsedError(RuntimeError):
    """The supernet stopped learning: its largest sub-network is at chance accuracy or its loss diverged."""


@dataclass(frozen=True)
class SupernetPaths:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT_FILE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def progress(self) -> Path:
        return self.root / PROGRESS_FILE

    def snapshot(self, epoch: int) -> Path:
        """The weights after ``epoch`` (written once that epoch's checkpoint is)."""
        return self.root / SNAPSHOT_DIR / f"{epoch}.pt"

    def weights(self, epoch: int | None) -> Path:
        """The file holding the weights after ``epoch`` (None: the trained supernet)."""
        return self.checkpoint if epoch is None else self.snapshot(epoch)

    def weights_ready(self, epoch: int | None) -> bool:
        """Whether the weights after ``epoch`` exist (None: whether training has finished)."""
        return self.snapshot(epoch).exists() if epoch is not None else self.summary.exists()


def load_supernet(paths: SupernetPaths, epoch: int | None = None) -> Supernet:
    """Load a supernet: trained, or as it was after ``epoch`` (``weights_only=True``: tensors and
    plain values only)."""
    payload = torch.load(paths.weights(epoch), weights_only=True)
    model = get_family(payload["family"]).supernet_class().from_config_dict(payload["config"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model


def subnet_accuracy(model: Supernet, arch: Any, task: TaskData) -> float:
    """Validation accuracy of a sub-network as trials see it: extracted, BatchNorm recalibrated."""
    subnet = model.extract(arch)
    recalibrate_batchnorm(subnet, task.x_train)
    return accuracy(subnet, task.x_val, task.y_val)


def chance_accuracy(y: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class."""
    return float(np.bincount(y).max() / len(y))


def spec_digest(spec: SupernetSpec) -> str:
    """Identity of a training run: a checkpoint of another spec is never resumed."""
    payload = spec.model_dump(mode="json", exclude={"name"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _step_archs(space: ArchSpace, training: SupernetTraining, rng: np.random.Generator) -> list[Any]:
    if training.method == "spos":
        return [space.sample(rng)]
    return [space.largest(), space.smallest()] + [
        space.sample(rng) for _ in range(training.random_subnets_per_step)
    ]


def _step_loss(
    model: Supernet, xb: Tensor, yb: Tensor, archs: list[Any], training: SupernetTraining
) -> float:
    """Backward the losses of ``archs`` (gradients accumulate); returns the summed loss."""
    total = 0.0
    teacher: Tensor | None = None
    for i, arch in enumerate(archs):
        logits = model(xb, arch)  # (B, K)
        if i > 0 and teacher is not None:
            # in-place distillation: soft cross-entropy against the largest's predictions
            loss = -(teacher * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        else:
            loss = F.cross_entropy(logits, yb)
        if i == 0 and training.method == "sandwich" and training.distillation:
            teacher = F.softmax(logits.detach(), dim=1)  # (B, K)
        loss.backward()
        total += float(loss.detach())
    return total


def _save_atomic(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _check_collapse(point: dict[str, Any], epochs: int, chance: float) -> None:
    """Fail on a non-finite loss, or when the largest sub-network is still (or again) at chance after
    30% of its epochs (at least 2): a Transformer on mnist1d wavers near chance for its first few
    epochs and then learns, so an earlier verdict would stop trainings that work."""
    epoch, loss, largest_acc = point["epoch"], point["train_loss"], point["largest_val_accuracy"]
    if not math.isfinite(loss):
        raise SupernetCollapsedError(f"supernet collapsed at epoch {epoch}: training loss is {loss}")
    patience = max(COLLAPSE_CHECK_FROM_EPOCH, math.ceil(COLLAPSE_CHECK_FRACTION * epochs))
    if epoch >= patience and largest_acc <= chance + CHANCE_MARGIN:
        raise SupernetCollapsedError(
            f"supernet collapsed at epoch {epoch}: the largest sub-network's validation accuracy "
            f"{largest_acc:.3f} is at chance ({chance:.3f}); lower the learning rate or check the data"
        )


def train_supernet(
    spec_json: dict[str, Any],
    root: str,
    artifacts_root: str = ".",
    num_threads: int = 2,
    stop_after_epoch: int | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (resume, or reuse) the supernet of a ``SupernetSpec``; returns the summary in supernet.json.

    ``stop_after_epoch`` ends the call after that epoch's checkpoint (an interruption, for tests).
    """
    spec = SupernetSpec.model_validate(spec_json)
    paths = SupernetPaths(Path(root))
    if paths.summary.exists() and paths.checkpoint.exists():
        log.info("reusing trained supernet at %s", paths.root)
        return json.loads(paths.summary.read_text())
    paths.root.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(num_threads)
    retain_freed_memory()
    task = load_task_data(spec.task, artifacts_root)
    family = get_family(spec.space.family)
    if not family.accepts(task.kind):
        raise ValueError(f"family {family.name} takes {sorted(family.input_kinds)} data, task is {task.kind}")
    training = spec.training
    x_train, y_train = training_subset(task.x_train, task.y_train, training.max_train_examples, spec.seed)
    digest = spec_digest(spec)

    torch.manual_seed(spec.seed)
    model = family.supernet_class().from_space(spec.space, task.input_shape, task.num_classes)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=training.lr, momentum=0.9, nesterov=True, weight_decay=training.weight_decay
    )
    steps_per_epoch = math.ceil(len(x_train) / training.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs * steps_per_epoch)
    rng = np.random.default_rng(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    if paths.checkpoint.exists():
        state = torch.load(paths.checkpoint, weights_only=True)
        if state.get("spec_digest") == digest:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            rng.bit_generator.state = json.loads(state["numpy_rng"])
            generator.set_state(state["torch_generator"])
            torch.set_rng_state(state["torch_rng"])
            history = json.loads(state["history"])
            start_epoch = int(state["epoch"]) + 1
            log.info("resuming supernet training at epoch %d from %s", start_epoch, paths.checkpoint)
        else:
            log.warning("ignoring a checkpoint of another spec at %s", paths.checkpoint)

    chance = chance_accuracy(task.y_val)
    largest, smallest = spec.space.largest(), spec.space.smallest()
    for epoch in range(start_epoch, training.epochs + 1):
        model.train()
        losses = []
        for xb, yb in batches(x_train, y_train, training.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            losses.append(_step_loss(model, xb, yb, _step_archs(spec.space, training, rng), training))
            optimizer.step()
            scheduler.step()
        model.eval()
        point = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "largest_val_accuracy": subnet_accuracy(model, largest, task),
            "smallest_val_accuracy": subnet_accuracy(model, smallest, task),
        }
        history.append(point)
        log.info("supernet epoch %d/%d: %s", epoch, training.epochs, point)
        _check_collapse(point, training.epochs, chance)
        weights = {"family": family.name, "config": model.config.to_dict(), "state_dict": model.state_dict()}
        _save_atomic(paths.snapshot(epoch), {**weights, "epoch": epoch})
        _save_atomic(
            paths.checkpoint,
            {
                **weights,
                "epoch": epoch,
                "spec_digest": digest,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "numpy_rng": json.dumps(rng.bit_generator.state),
                "torch_generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": json.dumps(history),
            },
        )
        progress = {**point, "epochs": training.epochs}
        write_json_atomic(paths.progress, progress)
        if on_epoch is not None:
            on_epoch(progress)
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < training.epochs:
            return {"interrupted_at_epoch": epoch, "history": history}

    summary = {
        "family": family.name,
        "task": spec.task,
        "data_fingerprint": data_fingerprint(task),
        "input_shape": list(task.input_shape),
        "num_classes": task.num_classes,
        "training": training.model_dump(mode="json"),
        "spec_digest": digest,
        "epochs": training.epochs,
        "config": model.config.to_dict(),
        "history": history,
        "snapshot_epochs": list(range(1, training.epochs + 1)),
        "chance_accuracy": chance,
        "torch_threads": num_threads,  # float sums (hence weights) may differ on another thread count
        "largest_val_accuracy": history[-1]["largest_val_accuracy"],
        "smallest_val_accuracy": history[-1]["smallest_val_accuracy"],
    }
    write_json_atomic(paths.summary, summary)
    return summary

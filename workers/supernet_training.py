"""Weight-sharing training of the elastic CNN with the sandwich rule, checkpointed every epoch.

Each step accumulates the gradients of the largest, the smallest and a few random sub-networks
(BigNAS / Once-for-All's sandwich rule) before one SGD step; the learning rate follows a cosine
schedule. A finished supernet is reused when a search resumes after a crash.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.elastic_cnn import ElasticCNN, ElasticCNNConfig
from search_spaces.elastic_cnn_space import CNNArch
from search_spaces.spec import SearchSpec
from workers.export import write_json_atomic
from workers.tasks import TaskData, load_task
from workers.training import accuracy, batches, recalibrate_batchnorm

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "supernet.pt"
SUMMARY_FILE = "supernet.json"
PROGRESS_FILE = "progress.json"


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


def load_supernet(paths: SupernetPaths) -> ElasticCNN:
    """Load a trained supernet (tensors and plain values only: ``weights_only=True``)."""
    payload = torch.load(paths.checkpoint, weights_only=True)
    model = ElasticCNN(ElasticCNNConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model


def subnet_accuracy(model: ElasticCNN, arch: CNNArch, task: TaskData) -> float:
    """Validation accuracy of a sub-network as trials see it: extracted, BatchNorm recalibrated."""
    subnet = model.extract(arch)
    recalibrate_batchnorm(subnet, task.x_train)
    return accuracy(subnet, task.x_val, task.y_val)


def _save_checkpoint(paths: SupernetPaths, model: ElasticCNN, epoch: int) -> None:
    tmp = paths.checkpoint.with_suffix(".tmp")
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict(), "epoch": epoch}, tmp)
    os.replace(tmp, paths.checkpoint)


def train_supernet(spec_json: dict[str, Any], root: str, num_threads: int = 2) -> dict[str, Any]:
    """Train (or reuse) the supernet of a search; returns the summary written to supernet.json."""
    paths = SupernetPaths(Path(root))
    if paths.summary.exists() and paths.checkpoint.exists():
        log.info("reusing trained supernet at %s", paths.root)
        return json.loads(paths.summary.read_text())
    paths.root.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(num_threads)
    spec = SearchSpec.model_validate(spec_json)
    task = load_task(spec.task)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)

    config = ElasticCNNConfig.from_space(spec.space, task.input_shape[0], task.num_classes)
    model = ElasticCNN(config)
    training = spec.supernet
    optimizer = torch.optim.SGD(
        model.parameters(), lr=training.lr, momentum=0.9, nesterov=True, weight_decay=training.weight_decay
    )
    steps_per_epoch = math.ceil(len(task.x_train) / training.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    largest, smallest = spec.space.largest(), spec.space.smallest()
    history: list[dict[str, float]] = []
    for epoch in range(1, training.epochs + 1):
        model.train()
        for xb, yb in batches(task.x_train, task.y_train, training.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            archs = [largest, smallest] + [
                spec.space.sample(rng) for _ in range(training.random_subnets_per_step)
            ]
            for arch in archs:
                loss_fn(model(xb, arch), yb).backward()  # gradients accumulate over the sandwich
            optimizer.step()
            scheduler.step()
        model.eval()
        point = {
            "epoch": epoch,
            "largest_val_accuracy": subnet_accuracy(model, largest, task),
            "smallest_val_accuracy": subnet_accuracy(model, smallest, task),
        }
        history.append(point)
        _save_checkpoint(paths, model, epoch)
        write_json_atomic(paths.progress, {**point, "epochs": training.epochs})
        log.info("supernet epoch %d/%d: %s", epoch, training.epochs, point)

    summary = {
        "family": spec.space.family,
        "task": spec.task,
        "epochs": training.epochs,
        "config": config.to_dict(),
        "history": history,
        "largest_val_accuracy": history[-1]["largest_val_accuracy"],
        "smallest_val_accuracy": history[-1]["smallest_val_accuracy"],
    }
    write_json_atomic(paths.summary, summary)
    return summary

"""Real learning curves of small CNNs on a fixed Fashion-MNIST subset (``--task fashion_mnist``).

Run from the repository root::

    python -m benchmarks.learning_curves --task fashion_mnist --configs 500 --epochs 30 --seeds 3
    python -m benchmarks.learning_curves --task fashion_mnist --configs 2 --epochs 2 --train-size 64 \\
        --val-size 32 --out /tmp/lc_fashion.npz                                          # smoke test

The counterpart of ``benchmarks.learning_curves``' MNIST-1D MLPs, sharing its sampling, training loop
(AdamW, cross-entropy, one torch thread, per-epoch records ``val_accuracy``, ``val_loss``,
``train_loss``, ``epoch_seconds`` and the ``diverged`` flag), file format (``save``/``load``) and
generator (``generate``). Only the data, the model and the search space (``FASHION_SPACE``) differ.

Data: ``workers.tasks.load_task("fashion_mnist")`` (the Debian package ``dataset-fashion-mnist``, nothing
is downloaded). A fixed subset, the same for every run: ``TRAIN_SIZE`` examples drawn without
replacement from its 50,000 training images and ``VAL_SIZE`` from its 10,000 validation images
(``numpy`` generator seeded with ``SUBSET_SEED``), averaged over 2x2 pixels down to 14x14
(``IMAGE_SIZE``) and standardized with the training subset's pixel mean and standard deviation.

Model: ``depth`` conv blocks, each Conv2d(3x3, ``width`` channels, padding 1), ReLU, MaxPool(2) and
Dropout(``dropout``), then a linear head to the 10 classes (``build_cnn``); so ``depth`` is the
number of conv blocks (14x14 -> 7x7 -> 3x3 -> 1x1) and ``width`` the channels of every block.

Search space (``FASHION_SPACE``, same six names as the MLPs', ranges chosen for a small CNN): learning
rate 1e-4..3e-2 and weight decay 1e-6..1e-1 (log-uniform), width 4..32 channels (log-uniform integer),
depth 1..3 blocks, dropout 0..0.5, batch size 32..256 (a power of two).

Cost and the choice of the subset: the budget was 500 configurations x 30 epochs x 3 seeds (45,000
epochs) in at most ~35 minutes on one core of a 2-core machine busy with other work, i.e. ~45 ms per
epoch, evaluation included. Measured there with 512 training and 256 validation images at 14x14: the
largest CNN (width 32, depth 3, batch 32) trains an epoch in 88 ms, the smallest (width 4, depth 1,
batch 256) in 12 ms, and 20 configurations drawn from ``FASHION_SPACE`` averaged 30 ms of training and
35 ms per epoch with evaluation, so ~26 minutes for the full set; ``benchmarks/data/lc_fashion_cnn.npz``
then took 1,626 s (27 minutes, ``generation_seconds`` in its JSON), 32 ms of training per epoch on
average. Full 28x28 images cost 2.5-3x as much per example (481 vs 181 ms per 1,000 training images
for the largest CNN), which would have left only ~200 training images; hence the 2x2 average pooling
and ``TRAIN_SIZE`` = 512, ``VAL_SIZE`` = 256.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.learning_curves import (
    DATA_DIR,
    CurveData,
    Curves,
    CurveTask,
    Dimension,
    generate,
    train_seeds,
)
from workers.tasks import load_task

DEFAULT_OUT: Path = DATA_DIR / "lc_fashion_cnn.npz"
TASK = "fashion_mnist"
TRAIN_SIZE = 512  # training examples of the subset
VAL_SIZE = 256  # validation examples of the subset
IMAGE_SIZE = 14  # 28 (full resolution) or 14 (2x2 average pooling)
SUBSET_SEED = 0
COST_NOTE = (
    "subset and resolution chosen so that 500 configs x 30 epochs x 3 seeds fit ~35 min on one core: "
    "measured per training epoch (512 images, 14x14) 88 ms for the largest CNN (width 32, depth 3, "
    "batch 32), 12 ms for the smallest (width 4, depth 1, batch 256), 35 ms on average with evaluation "
    "over 20 sampled configs (estimate ~26 min); 28x28 costs 2.5-3x as much per image"
)

FASHION_SPACE = (
    Dimension("lr", 1e-4, 3e-2, log=True),
    Dimension("weight_decay", 1e-6, 1e-1, log=True),
    Dimension("width", 4, 32, log=True, integer=True),  # channels of every conv block
    Dimension("depth", 1, 3, integer=True),  # conv blocks
    Dimension("dropout", 0.0, 0.5),
    Dimension("log2_batch_size", 5, 8, integer=True),  # batch sizes 32..256
)


def build_cnn(image_size: int, width: int, depth: int, dropout: float, n_out: int) -> nn.Sequential:
    """``depth`` x (Conv3x3(width), ReLU, MaxPool(2), Dropout) on (N, 1, s, s) images, then Linear(n_out)."""
    layers: list[nn.Module] = []
    channels, size = 1, image_size
    for _ in range(depth):
        layers += [
            nn.Conv2d(channels, width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        ]
        channels, size = width, size // 2
    layers += [nn.Flatten(), nn.Linear(channels * size * size, n_out)]
    return nn.Sequential(*layers)


def _cnn_for(config: dict[str, float], x_train: Tensor, n_classes: int) -> nn.Module:
    """The CNN of ``config`` for images x_train (N, 1, s, s)."""
    return build_cnn(
        x_train.shape[-1], int(config["width"]), int(config["depth"]), float(config["dropout"]), n_classes
    )


_SUBSETS: dict[tuple[int, int, int], tuple[Tensor, Tensor, Tensor, Tensor]] = {}


def load_subset(
    train_size: int = TRAIN_SIZE, val_size: int = VAL_SIZE, image_size: int = IMAGE_SIZE
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The fixed subset as (x_train (N, 1, s, s), y_train (N,), x_val (V, 1, s, s), y_val (V,)), cached."""
    key = (train_size, val_size, image_size)
    if key not in _SUBSETS:
        if image_size not in (14, 28):
            raise ValueError(f"image_size must be 14 or 28, not {image_size}")
        task = load_task(TASK)
        if train_size > len(task.x_train) or val_size > len(task.x_val):
            raise ValueError(
                f"subset of {train_size}/{val_size} examples asked; "
                f"{len(task.x_train)}/{len(task.x_val)} available"
            )
        rng = np.random.default_rng(SUBSET_SEED)
        train_rows = rng.choice(len(task.x_train), train_size, replace=False)
        val_rows = rng.choice(len(task.x_val), val_size, replace=False)
        x_train, x_val = (
            torch.as_tensor(np.ascontiguousarray(x[rows]), dtype=torch.float32)  # (n, 1, 28, 28)
            for x, rows in ((task.x_train, train_rows), (task.x_val, val_rows))
        )
        if image_size == 14:
            x_train, x_val = F.avg_pool2d(x_train, 2), F.avg_pool2d(x_val, 2)  # (n, 1, 14, 14)
        mean, std = x_train.mean(), x_train.std()
        y_train, y_val = (
            torch.as_tensor(y[rows], dtype=torch.long)
            for y, rows in ((task.y_train, train_rows), (task.y_val, val_rows))
        )
        _SUBSETS[key] = ((x_train - mean) / std, y_train, (x_val - mean) / std, y_val)
    return _SUBSETS[key]


def train_config(
    config: dict[str, float],
    epochs: int,
    seeds: Sequence[int],
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    image_size: int = IMAGE_SIZE,
) -> Curves:
    """One CNN configuration under each seed: arrays (S, E) and ``diverged`` (S,)."""
    data = load_subset(train_size, val_size, image_size)
    return train_seeds(config, data, epochs, seeds, _cnn_for)


def fashion_task(
    train_size: int = TRAIN_SIZE, val_size: int = VAL_SIZE, image_size: int = IMAGE_SIZE
) -> CurveTask:
    """The ``CurveTask`` of CNNs on the subset of the given sizes."""
    resolution = "2x2 average pooling to 14x14" if image_size == 14 else "full 28x28 resolution"
    return CurveTask(
        TASK,
        FASHION_SPACE,
        partial(train_config, train_size=train_size, val_size=val_size, image_size=image_size),
        {
            "preprocessing": (
                f"workers.tasks fashion_mnist split; fixed subset (numpy seed {SUBSET_SEED}) of {train_size} "
                f"training and {val_size} validation images; {resolution}; standardized with the training "
                "subset's pixel mean and standard deviation"
            ),
            "train_size": train_size,
            "val_size": val_size,
            "image_size": image_size,
            "subset_seed": SUBSET_SEED,
            "model": (
                "CNN: depth x (Conv2d 3x3 (width channels, padding 1), ReLU, MaxPool 2, Dropout), then "
                "Linear(10); AdamW, cross-entropy"
            ),
            "cost_note": COST_NOTE,
        },
    )


def generate_fashion(
    n_configs: int,
    epochs: int,
    seeds: int,
    seed: int = 0,
    jobs: int = 1,
    log: bool = True,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    image_size: int = IMAGE_SIZE,
) -> CurveData:
    """``benchmarks.learning_curves.generate`` for CNNs on the Fashion-MNIST subset."""
    return generate(n_configs, epochs, seeds, seed, jobs, log, fashion_task(train_size, val_size, image_size))

"""Real learning curves: MLPs trained on MNIST-1D, one curve per (configuration, seed).

Run from the repository root::

    python -m benchmarks.learning_curves                                  # 100 configs x 20 epochs x 1 seed
    python -m benchmarks.learning_curves --configs 500 --epochs 30 --seeds 3 \
        --out benchmarks/data/lc_mnist1d_full.npz
    python -m benchmarks.learning_curves --task fashion_mnist --configs 500 --epochs 30 --seeds 3
    python -m benchmarks.learning_curves --configs 3 --epochs 3 --out /tmp/lc.npz   # smoke test

``--task fashion_mnist`` trains small CNNs on a fixed Fashion-MNIST subset instead; its model, search
space, subset and measured cost are described in ``benchmarks.learning_curves_fashion``, which reuses
the pieces here (``Dimension``, ``CurveData``, ``train_curve``, ``generate``, ``save``, ``load``) through a
``CurveTask``. What follows describes the default task, ``mnist1d``.

Each configuration draws six hyperparameters independently (``SPACE``): the learning rate and weight
decay of AdamW (log-uniform), the width of the hidden layers (log-uniform integer), their number (the
depth), the dropout after each and the batch size (a power of two). Every (configuration, seed) trains a
fresh MLP (40 inputs, ReLU, 10 classes) on ``workers.tasks``' MNIST-1D split (3,000 training examples,
generated locally by the ``mnist1d`` package; nothing is downloaded) and records after every epoch the
validation accuracy and cross-entropy (1,000 examples) and the mean training loss, plus the seconds the
epoch's training took (evaluation excluded). A run whose weights turn non-finite is flagged in
``diverged`` and its later epochs hold what the broken model scores (accuracy of a constant guess,
loss NaN).

Writes ``--out`` (default ``benchmarks/data/lc_mnist1d.npz``, ``np.savez_compressed``) and a JSON of the
settings beside it (same name, ``.json``). ``x`` holds each configuration encoded in the unit cube
(``encode``), the form the PFN and GP benchmarks (``benchmarks.pfn``) read. One torch thread;
shuffling is an index permutation per epoch and batches are slices of tensors held in memory, so
the cost is the optimizer steps themselves: 100 configs x 20 epochs x 1 seed took 48 s on one core
of a 2-core machine busy with other work, and 500 x 30 x 3 (``benchmarks/data/lc_mnist1d_full.npz``)
took 1,263 s (21 minutes) there (``--jobs 2``: ~half that on two free cores).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from surrogates.torch_threads import torch_threads
from workers.tasks import load_task

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_OUT = DATA_DIR / "lc_mnist1d.npz"
TASK = "mnist1d"
TASKS = ("mnist1d", "fashion_mnist")
CURVE_KEYS = ("val_accuracy", "val_loss", "train_loss", "epoch_seconds")  # per-epoch records


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: sampled uniformly in [low, high] (in log space when ``log``)."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # (n,)
        """n values drawn independently (integers rounded, still as floats)."""
        if self.integer and not self.log:
            return rng.integers(int(self.low), int(self.high) + 1, n).astype(np.float64)
        if self.log:
            values = np.exp(rng.uniform(math.log(self.low), math.log(self.high), n))
        else:
            values = rng.uniform(self.low, self.high, n)
        return np.round(values) if self.integer else values

    def encode(self, values: np.ndarray) -> np.ndarray:  # (n,) -> (n,) in [0, 1]
        """Values mapped linearly (log-linearly when ``log``) onto [0, 1], clipped."""
        if self.log:
            unit = (np.log(values) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        else:
            unit = (values - self.low) / (self.high - self.low)
        return np.clip(unit, 0.0, 1.0)


SPACE = (
    Dimension("lr", 1e-4, 1e-1, log=True),
    Dimension("weight_decay", 1e-6, 1e-1, log=True),
    Dimension("width", 16, 256, log=True, integer=True),
    Dimension("depth", 1, 4, integer=True),
    Dimension("dropout", 0.0, 0.5),
    Dimension("log2_batch_size", 6, 10, integer=True),  # batch sizes 64..1024
)


@dataclass(frozen=True)
class CurveData:
    """Learning curves of C configurations, S seeds and E epochs."""

    x: np.ndarray  # (C, 6) configurations encoded in the unit cube (SPACE order)
    params: dict[str, np.ndarray]  # name -> (C,) raw values
    val_accuracy: np.ndarray  # (C, S, E) in [0, 1]
    val_loss: np.ndarray  # (C, S, E) cross-entropy, NaN after divergence
    train_loss: np.ndarray  # (C, S, E) mean over the epoch's batches
    epoch_seconds: np.ndarray  # (C, S, E) training time of each epoch
    diverged: np.ndarray  # (C, S) bool
    settings: dict[str, Any]

    @property
    def n_epochs(self) -> int:
        return self.val_accuracy.shape[-1]


Curves = dict[str, np.ndarray]  # CURVE_KEYS -> (S, E) arrays and "diverged" -> (S,)
TrainConfig = Callable[[dict[str, float], int, Sequence[int]], Curves]  # (config, epochs, seeds) -> curves
BuildModel = Callable[[dict[str, float], Tensor, int], nn.Module]  # (config, x_train, n_classes) -> model


@dataclass(frozen=True)
class CurveTask:
    """What ``generate`` trains: a search space, a picklable trainer of one configuration, settings."""

    name: str
    space: tuple[Dimension, ...]
    train_config: TrainConfig  # module-level function (or partial of one): ``jobs`` > 1 pickles it
    settings: dict[str, Any] = field(default_factory=dict)  # task-specific entries of the JSON


def sample_configs(
    n: int, rng: np.random.Generator, space: Sequence[Dimension] = SPACE
) -> dict[str, np.ndarray]:
    """n configurations: name -> (n,) values (``batch_size`` derived from its log2)."""
    params = {dim.name: dim.sample(rng, n) for dim in space}
    params["batch_size"] = 2 ** params["log2_batch_size"]
    return params


def encode(params: dict[str, np.ndarray], space: Sequence[Dimension] = SPACE) -> np.ndarray:
    """Configurations encoded in the unit cube: (C, len(space)), columns in ``space`` order."""
    return np.stack([dim.encode(params[dim.name]) for dim in space], axis=1)  # (C, 6)


def build_mlp(n_in: int, width: int, depth: int, dropout: float, n_out: int) -> nn.Sequential:
    """``depth`` x (Linear(width), ReLU, Dropout), then Linear(n_out)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else width, width), nn.ReLU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(width if depth else n_in, n_out))
    return nn.Sequential(*layers)


def _evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Validation (accuracy, cross-entropy) of ``model`` on x (N, F), y (N,)."""
    model.eval()
    with torch.no_grad():
        logits = model(x)  # (N, K)
        loss = float(F.cross_entropy(logits, y))
        accuracy = float((logits.argmax(dim=1) == y).double().mean())
    model.train()
    return accuracy, loss


def _mlp_for(config: dict[str, float], x_train: Tensor, n_classes: int) -> nn.Module:
    """The MLP of ``config`` for inputs x_train (N, F)."""
    return build_mlp(
        x_train.shape[1], int(config["width"]), int(config["depth"]), float(config["dropout"]), n_classes
    )


def train_curve(
    config: dict[str, float],
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    epochs: int,
    seed: int,
    build: BuildModel = _mlp_for,
) -> dict[str, np.ndarray]:
    """Train one model (default: the MLP of ``config``) for ``epochs`` epochs with AdamW.

    Returns per-epoch arrays (E,) under ``CURVE_KEYS`` and a 0-d ``diverged`` flag.
    """
    x_train, y_train, x_val, y_val = data
    out = {k: np.zeros(epochs) for k in CURVE_KEYS}
    diverged = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(config, x_train, int(y_train.max()) + 1)
        opt = torch.optim.AdamW(
            model.parameters(),
            lr=float(config["lr"]),
            weight_decay=float(config["weight_decay"]),
            foreach=True,
        )
        batch = int(config["batch_size"])
        for epoch in range(epochs):
            start = time.perf_counter()
            order = torch.randperm(len(x_train))  # (N,)
            total = torch.zeros(())
            for rows in order.split(batch):
                loss = F.cross_entropy(model(x_train[rows]), y_train[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(rows)
            out["epoch_seconds"][epoch] = time.perf_counter() - start
            out["train_loss"][epoch] = float(total) / len(x_train)
            out["val_accuracy"][epoch], out["val_loss"][epoch] = _evaluate(model, x_val, y_val)
            diverged = diverged or not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return {**out, "diverged": np.array(diverged)}


_DATA: tuple[Tensor, Tensor, Tensor, Tensor] | None = None


def load_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST-1D as (x_train (N, 40), y_train (N,), x_val (V, 40), y_val (V,)) tensors, once per process."""
    global _DATA
    if _DATA is None:
        task = load_task(TASK)
        flat = [
            torch.as_tensor(a.reshape(len(a), -1), dtype=torch.float32) for a in (task.x_train, task.x_val)
        ]
        labels = [torch.as_tensor(a, dtype=torch.long) for a in (task.y_train, task.y_val)]
        _DATA = (flat[0], labels[0], flat[1], labels[1])
    return _DATA


def train_seeds(
    config: dict[str, float],
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    epochs: int,
    seeds: Sequence[int],
    build: BuildModel = _mlp_for,
) -> Curves:
    """One configuration under each seed, with one torch thread: arrays (S, E) and ``diverged`` (S,)."""
    with torch_threads(1):
        curves = [train_curve(config, data, epochs, seed, build) for seed in seeds]
    return {k: np.stack([curve[k] for curve in curves]) for k in (*CURVE_KEYS, "diverged")}


def train_config(config: dict[str, float], epochs: int, seeds: Sequence[int]) -> Curves:
    """One MNIST-1D MLP configuration under each seed: arrays (S, E) and ``diverged`` (S,)."""
    return train_seeds(config, load_data(), epochs, seeds)


MNIST1D = CurveTask(
    TASK,
    SPACE,
    train_config,
    {
        "preprocessing": "workers.tasks mnist1d split; each example flattened to 40 values",
        "model": "MLP: depth x (Linear(width), ReLU, Dropout), then Linear(10); AdamW, cross-entropy",
    },
)


def generate(
    n_configs: int,
    epochs: int,
    seeds: int,
    seed: int = 0,
    jobs: int = 1,
    log: bool = True,
    task: CurveTask = MNIST1D,
) -> CurveData:
    """Sample ``n_configs`` configurations of ``task`` and train each with ``seeds`` seeds for ``epochs``.

    ``jobs`` > 1 trains configurations in that many processes (one torch thread each).
    """
    started = time.perf_counter()
    params = sample_configs(n_configs, np.random.default_rng(seed), task.space)
    configs = [{name: float(values[c]) for name, values in params.items()} for c in range(n_configs)]
    run_seeds = [[seed * 1_000_003 + c * 1_009 + s for s in range(seeds)] for c in range(n_configs)]
    results: list[dict[str, np.ndarray]] = []

    def progress() -> None:
        if log and (len(results) % 10 == 0 or len(results) == n_configs):
            print(
                f"[{len(results)}/{n_configs}] configs trained, {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    if jobs == 1:
        for config, config_seeds in zip(configs, run_seeds, strict=True):
            results.append(task.train_config(config, epochs, config_seeds))
            progress()
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            for result in pool.map(task.train_config, configs, [epochs] * n_configs, run_seeds):
                results.append(result)
                progress()
    arrays = {k: np.stack([r[k] for r in results]) for k in (*CURVE_KEYS, "diverged")}  # (C, S, E), (C, S)
    settings = _settings(task, n_configs, epochs, seeds, seed, time.perf_counter() - started, jobs)
    return CurveData(
        encode(params, task.space),
        params,
        arrays["val_accuracy"],
        arrays["val_loss"],
        arrays["train_loss"],
        arrays["epoch_seconds"],
        arrays["diverged"],
        settings,
    )


def _settings(
    task: CurveTask, n_configs: int, epochs: int, seeds: int, seed: int, seconds: float, jobs: int
) -> dict[str, Any]:
    return {
        "task": task.name,
        **task.settings,
        "n_configs": n_configs,
        "epochs": epochs,
        "seeds": seeds,
        "seed": seed,
        "space": [
            {"name": d.name, "low": d.low, "high": d.high, "log": d.log, "integer": d.integer}
            for d in task.space
        ],
        "generation_seconds": round(seconds, 2),
        "jobs": jobs,
        "torch_threads": 1,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save(data: CurveData, path: Path) -> Path:
    """Write ``path`` (.npz, compressed) and its settings as ``path`` with suffix ``.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x=data.x,
        val_accuracy=data.val_accuracy.astype(np.float32),
        val_loss=data.val_loss.astype(np.float32),
        train_loss=data.train_loss.astype(np.float32),
        epoch_seconds=data.epoch_seconds.astype(np.float32),
        diverged=data.diverged,
        **{f"param_{name}": values for name, values in data.params.items()},
    )
    path.with_suffix(".json").write_text(json.dumps(data.settings, indent=1))
    return path


def load(path: Path) -> CurveData:
    """Read what ``save`` wrote (the JSON of settings may be missing: then settings are empty)."""
    settings_path = path.with_suffix(".json")
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    with np.load(path) as f:
        params = {k.removeprefix("param_"): f[k] for k in f.files if k.startswith("param_")}
        return CurveData(
            f["x"],
            params,
            f["val_accuracy"].astype(np.float64),
            f["val_loss"].astype(np.float64),
            f["train_loss"].astype(np.float64),
            f["epoch_seconds"].astype(np.float64),
            f["diverged"],
            settings,
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; ``--out`` defaults to the task's own file."""
    from benchmarks import learning_curves_fashion as fashion  # imports this module: import it late

    p = argparse.ArgumentParser(
        prog="python -m benchmarks.learning_curves", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--task", choices=TASKS, default=TASK, help=f"what to train (default {TASK})")
    p.add_argument("--configs", type=int, default=100, help="configurations (default 100)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (default 20)")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per configuration (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the configuration sample (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes, one torch thread each (default 1)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output .npz (default {DEFAULT_OUT}; for fashion_mnist {fashion.DEFAULT_OUT})",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=fashion.TRAIN_SIZE,
        help=f"fashion_mnist: training examples of the subset (default {fashion.TRAIN_SIZE})",
    )
    p.add_argument(
        "--val-size",
        type=int,
        default=fashion.VAL_SIZE,
        help=f"fashion_mnist: validation examples of the subset (default {fashion.VAL_SIZE})",
    )
    p.add_argument(
        "--image-size",
        type=int,
        choices=(14, 28),
        default=fashion.IMAGE_SIZE,
        help=f"fashion_mnist: 14 averages 2x2 pixels (default {fashion.IMAGE_SIZE})",
    )
    args = p.parse_args(argv)
    if min(args.configs, args.epochs, args.seeds, args.jobs, args.train_size, args.val_size) < 1:
        p.error("--configs, --epochs, --seeds, --jobs, --train-size and --val-size must be positive")
    if args.out is None:
        args.out = fashion.DEFAULT_OUT if args.task == "fashion_mnist" else DEFAULT_OUT
    return args


def task_of(args: argparse.Namespace) -> CurveTask:
    """The ``CurveTask`` that parsed options name."""
    if args.task == "fashion_mnist":
        from benchmarks import learning_curves_fashion as fashion

        return fashion.fashion_task(args.train_size, args.val_size, args.image_size)
    return MNIST1D


def main(argv: Sequence[str] | None = None) -> CurveData:
    """Generate the curves the options ask for, write them and print a summary."""
    args = parse_args(argv)
    data = generate(args.configs, args.epochs, args.seeds, args.seed, args.jobs, task=task_of(args))
    save(data, args.out)
    final = data.val_accuracy[:, :, -1]  # (C, S)
    print(
        f"wrote {args.out} ({args.task}: {args.configs} configs x {args.seeds} seeds x {args.epochs} epochs) "
        f"in {data.settings['generation_seconds']:.0f} s; final validation accuracy: median "
        f"{np.median(final):.3f}, best {final.max():.3f}; {int(data.diverged.sum())} run(s) diverged"
    )
    return data


if __name__ == "__main__":
    main()

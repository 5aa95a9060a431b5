"""Does a trained supernet rank sub-networks the way stand-alone training does, and how much cheaper is it?

Run from the repository root::

    python -m benchmarks.supernet_ranking                 # both cases at the default budget
    python -m benchmarks.supernet_ranking --cases mlp --subnets 30
    python -m benchmarks.supernet_ranking --quick         # smoke test (MLP case only, < 1 minute)

For each case the supernet is trained once with ``workers.supernet_training.train_supernet`` (the code
the service runs: sandwich rule, in-place distillation, cosine schedule) on a fixed training subset.
Then ``--subnets`` distinct sub-networks are sampled uniformly (seeded) and each is evaluated twice:

- inherited: ``subnet_accuracy`` (extract with the supernet's weights, recalibrate BatchNorm, validation
  accuracy), timed;
- stand-alone: the same architecture extracted from a freshly initialised supernet (another seed) and
  trained from scratch with plain SGD (Nesterov momentum 0.9, the same weight decay, a cosine schedule
  over all steps) on the same training subset with the same epochs, batch size and learning rate as the
  supernet, then evaluated on the same validation examples; training and evaluation are timed.

The report gives Kendall's tau and Spearman's rho between inherited and stand-alone accuracy (the issue's
goal: tau >= 0.7), the tau of a parameter-count baseline (ranking by size alone), and the cost ratio:
mean stand-alone train+eval seconds over mean inherited evaluation seconds (goal >= 100x). That ratio
grows with the training budget (epochs x examples) over the validation size, so the JSON also projects
it to the service's default supernet budget (every training example, ``SupernetTraining().epochs``).

Cases and their choices:

- ``cnn``: elastic CNN on Fashion-MNIST; stage channels [16, 32], depth [1, 2, 3] per stage, width
  multiplier [0.25, 0.5, 0.75, 1.0], kernel [3, 5], expand ratio [2, 4]: 144 architectures from 526
  to 41,242 parameters. 10 epochs (``--cnn-epochs``) on a fixed subset of ``--train-examples``
  12,000 training images, evaluated on a fixed subset of ``--val-examples`` 2,000 validation images
  (both seeded). The cost ratio is about linear in the training budget: at 3,000 images and 3 epochs
  it was 4.9x. ``train_supernet``'s own check of the largest and smallest network after every epoch
  uses all 10,000 validation images (counted in the supernet's training time).
- ``mlp``: elastic MLP on a tabular task (``--mlp-task``, default ``synthetic``); depth [1, 2, 3],
  width [1, 2, 4, 8, 16, 32, 64] per layer (``--mlp-widths``), activation relu or gelu: 798
  architectures; 30 epochs, batch 16, every split whole. ``synthetic`` is a table generated locally
  with scikit-learn's ``make_classification`` (5,000 rows, 20 features, 4 classes of 3 clusters each)
  and stored and loaded as an uploaded data set is: its 1,000 validation rows make the ranking
  measurable. The bundled tables are too small or too easy for that: on ``breast_cancer`` every MLP
  reaches 95-98% (tau 0.05-0.10: noise); on ``wine`` (36 validation rows) 100 epochs and 5
  stand-alone seeds gave tau 0.56. Stand-alone accuracy is the mean over ``--standalone-seeds`` (3)
  runs with different inits and batch orders; its cost is the mean seconds of one run.

The supernet and the stand-alone networks train side by side in ``--workers`` (2) processes of
``--threads`` (1) torch threads each; the inherited evaluations run afterwards in this process, alone,
so each time is taken on one otherwise idle core. Every process keeps freed memory
(``workers.allocator``), as the service's workers do. Measured on the 2-core machine: about 55
minutes for both cases (``mlp``: 2.5 of them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.datasets import make_classification
from torch import nn

from benchmarks.cli import fill_defaults
from benchmarks.processes import worker_pool
from search_spaces.families import get_family
from search_spaces.family import ArchSpace
from search_spaces.spec import SupernetTraining
from search_spaces.supernet import Supernet, count_params
from surrogates.torch_threads import torch_threads
from workers.allocator import retain_freed_memory
from workers.datasets import Limits, build_dataset, save_dataset
from workers.supernet_training import (
    SupernetPaths,
    load_supernet,
    subnet_accuracy,
    train_supernet,
)
from workers.task_source import dataset_dir, is_dataset_id, load_task_data
from workers.tasks import TaskData, task_available
from workers.training import accuracy, batches, training_subset

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "supernet_ranking.json"
GOAL_TAU = 0.7
GOAL_COST_RATIO = 100.0
MLP_TASKS = ("wine", "breast_cancer", "synthetic")
# "synthetic": a harder table generated locally (scikit-learn's make_classification), stored and loaded
# exactly as an uploaded data set is: 5,000 rows, 20 features (10 informative, 4 redundant), 4 classes
# of 3 clusters each, split 60/20/20 like every data set.
SYNTHETIC_ID = "ds_" + "5e" * 16


@dataclass(frozen=True)
class Case:
    """One supernet to train and rank: its task, space and training budget (shared with stand-alone)."""

    name: str
    task: str
    space: dict[str, Any]
    epochs: int
    batch_size: int
    lr: float
    train_examples: int | None  # None: every training example
    val_examples: int | None  # None: every validation example
    standalone_seeds: int

    def training(self) -> SupernetTraining:
        return SupernetTraining(
            method="sandwich",
            distillation=True,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            max_train_examples=self.train_examples,
        )


CASES: dict[str, Case] = {
    "cnn": Case(
        name="cnn",
        task="fashion_mnist",
        space={
            "family": "elastic_cnn",
            "stage_channels": [16, 32],
            "depth": [1, 2, 3],
            "width_mult": [0.25, 0.5, 0.75, 1.0],
            "kernel_size": [3, 5],
            "expand_ratio": [2, 4],
        },
        epochs=10,
        batch_size=64,
        lr=0.05,
        train_examples=12000,
        val_examples=2000,
        standalone_seeds=1,
    ),
    "mlp": Case(
        name="mlp",
        task="synthetic",
        space={
            "family": "elastic_mlp",
            "depth": [1, 2, 3],
            "width": [1, 2, 4, 8, 16, 32, 64],
            "activation": ["relu", "gelu"],
        },
        epochs=30,
        batch_size=16,
        lr=0.05,
        train_examples=None,
        val_examples=None,
        standalone_seeds=3,
    ),
}
QUICK = {"subnets": 4, "cases": "mlp", "mlp_epochs": 5, "standalone_seeds": 2, "workers": 1}


# --------------------------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.supernet_ranking", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cases", help=f"comma-separated, default all: {','.join(CASES)}")
    p.add_argument("--subnets", type=int, help="distinct sub-networks per case (default 20)")
    p.add_argument("--seed", type=int, default=0, help="supernet and sampling seed (default 0)")
    p.add_argument("--train-examples", type=int, help="cnn: Fashion-MNIST training subset (default 12000)")
    p.add_argument("--val-examples", type=int, help="cnn: validation subset (default 2000; 0 for all)")
    p.add_argument("--cnn-epochs", type=int, help="cnn: supernet and stand-alone epochs (default 10)")
    p.add_argument("--mlp-epochs", type=int, help="mlp: supernet and stand-alone epochs (default 30)")
    p.add_argument(
        "--mlp-task", choices=MLP_TASKS, default="synthetic", help="mlp: tabular task (default synthetic)"
    )
    p.add_argument("--mlp-widths", help="mlp: comma-separated width choices (default 1,2,4,8,16,32,64)")
    p.add_argument("--standalone-seeds", type=int, help="mlp: stand-alone runs averaged per arch (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument(
        "--workers",
        type=int,
        help="processes training the supernet and the stand-alone networks side by side (default 2)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: mlp only, 4 subnets, 5 epochs, 2 seeds")
    args = p.parse_args(argv)
    defaults = {
        "subnets": 20,
        "cases": ",".join(CASES),
        "mlp_epochs": None,
        "standalone_seeds": None,
        "workers": 2,
    }
    fill_defaults(args, defaults, QUICK)
    if args.subnets < 2 or args.threads < 1 or args.workers < 1:
        raise SystemExit("--subnets must be at least 2, --threads and --workers positive")
    return args


def _ints(value: str | None) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()] if value else []


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases to run, with the command line's overrides applied."""
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise SystemExit(f"unknown cases {unknown}; known: {list(CASES)}")
    cnn, mlp = CASES["cnn"], CASES["mlp"]
    cnn = replace(
        cnn,
        epochs=args.cnn_epochs or cnn.epochs,
        train_examples=args.train_examples or cnn.train_examples,
        val_examples=cnn.val_examples if args.val_examples is None else (args.val_examples or None),
    )
    mlp = replace(
        mlp,
        task=args.mlp_task,
        space={**mlp.space, "width": _ints(args.mlp_widths) or mlp.space["width"]},
        epochs=args.mlp_epochs or mlp.epochs,
        standalone_seeds=args.standalone_seeds or mlp.standalone_seeds,
    )
    return [{"cnn": cnn, "mlp": mlp}[n] for n in names]


# --------------------------------------------------------------------------------------------- pieces


def sample_distinct(space: ArchSpace, n: int, seed: int) -> list[Any]:
    """``n`` distinct architectures sampled uniformly from ``space`` (seeded)."""
    if space.size is not None and space.size < n:
        raise SystemExit(f"the space has only {space.size} architectures, fewer than {n}")
    rng = np.random.default_rng(seed)
    archs: dict[str, Any] = {}
    while len(archs) < n:
        arch = space.sample(rng)
        archs.setdefault(json.dumps(arch.to_config(), sort_keys=True), arch)
    return list(archs.values())


def validation_subset(task: TaskData, n: int | None, seed: int) -> TaskData:
    """``task`` with a fixed random subset of ``n`` validation examples (all when ``n`` is None)."""
    if n is None or n >= len(task.x_val):
        return task
    idx = np.sort(np.random.default_rng(seed).choice(len(task.x_val), size=n, replace=False))
    return replace(task, x_val=task.x_val[idx], y_val=task.y_val[idx])


def supernet_spec(case: Case, seed: int) -> dict[str, Any]:
    return {
        "name": f"ranking-{case.name}",
        "task": case.task,
        "space": case.space,
        "training": case.training().model_dump(mode="json"),
        "seed": seed,
    }


def write_synthetic_dataset(data_root: Path) -> str:
    """Generate the synthetic table and store it as an uploaded data set under ``data_root``."""
    x, y = make_classification(
        n_samples=5000,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        n_classes=4,
        n_clusters_per_class=3,
        class_sep=1.0,
        flip_y=0.01,
        random_state=0,
    )
    save_dataset(build_dataset(x, y, None, "npz", Limits()), dataset_dir(data_root, SYNTHETIC_ID))
    return SYNTHETIC_ID


def inherited_eval(model: Supernet, arch: Any, task: TaskData) -> tuple[float, float]:
    """Inherited-weight validation accuracy (extract + BN recalibration) and its seconds."""
    started = time.perf_counter()
    acc = subnet_accuracy(model, arch, task)
    return acc, time.perf_counter() - started


def fresh_subnet(space: ArchSpace, task: TaskData, arch: Any, seed: int) -> nn.Module:
    """``arch`` extracted from a freshly initialised supernet (random init, no shared training)."""
    torch.manual_seed(seed)
    supernet = get_family(space.family).supernet_class().from_space(space, task.input_shape, task.num_classes)
    return supernet.extract(arch).train()


def train_plain(
    model: nn.Module, x: np.ndarray, y: np.ndarray, training: SupernetTraining, seed: int
) -> None:
    """Plain cross-entropy SGD with the supernet's optimizer settings and a per-step cosine schedule."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=training.lr, momentum=0.9, nesterov=True, weight_decay=training.weight_decay
    )
    steps = training.epochs * math.ceil(len(x) / training.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(training.epochs):
        for xb, yb in batches(x, y, training.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
            scheduler.step()
    model.eval()


def standalone_eval(
    case: Case, space: ArchSpace, task: TaskData, subset: tuple[np.ndarray, np.ndarray], arch: Any, seed: int
) -> dict[str, float]:
    """Train ``arch`` from scratch on ``subset`` and evaluate it on ``task``'s validation examples."""
    started = time.perf_counter()
    model = fresh_subnet(space, task, arch, seed)
    train_plain(model, subset[0], subset[1], case.training(), seed)
    trained = time.perf_counter()
    acc = accuracy(model, task.x_val, task.y_val)
    done = time.perf_counter()
    return {"accuracy": acc, "train_seconds": trained - started, "eval_seconds": done - trained}


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def correlations(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Kendall's tau and Spearman's rho of inherited vs stand-alone accuracy, and a params baseline."""
    inherited = [r["inherited_accuracy"] for r in rows]
    standalone = [r["standalone_accuracy"] for r in rows]
    params = [r["params"] for r in rows]
    tau = stats.kendalltau(inherited, standalone)
    rho = stats.spearmanr(inherited, standalone)
    return {
        "kendall_tau": _finite_or_none(tau.statistic),
        "kendall_p": _finite_or_none(tau.pvalue),
        "spearman_rho": _finite_or_none(rho.statistic),
        "spearman_p": _finite_or_none(rho.pvalue),
        "params_kendall_tau": _finite_or_none(stats.kendalltau(params, standalone).statistic),
    }


def costs(rows: list[dict[str, Any]], case: Case, task: TaskData, n_train: int) -> dict[str, Any]:
    """Mean seconds of each evaluation and their ratio; for a case trained on a subset, also the ratio
    projected to the service's default budget (every training example, the default epochs), scaling
    the measured stand-alone training seconds per example and epoch."""
    inherited = float(np.mean([r["inherited_seconds"] for r in rows]))
    train = float(np.mean([r["standalone_train_seconds"] for r in rows]))
    evaluate = float(np.mean([r["standalone_eval_seconds"] for r in rows]))
    per_example_epoch = train / (n_train * case.epochs)
    full_train = per_example_epoch * len(task.x_train) * SupernetTraining().epochs
    return {
        "mean_inherited_seconds": inherited,
        "mean_standalone_train_seconds": train,
        "mean_standalone_eval_seconds": evaluate,
        "mean_standalone_seconds": train + evaluate,
        "cost_ratio": (train + evaluate) / inherited,
        "projected_default_budget": None
        if case.train_examples is None
        else {
            "train_examples": len(task.x_train),
            "epochs": SupernetTraining().epochs,
            "standalone_seconds": full_train + evaluate,
            "cost_ratio": (full_train + evaluate) / inherited,
        },
    }


# --------------------------------------------------------------------------------------------- one case


@lru_cache(maxsize=1)
def _full_task(task_name: str, data_root: Path) -> TaskData:
    """The case's task, loaded once per process."""
    return load_task_data(task_name, data_root)


def _case_data(case: Case, data_root: Path, seed: int) -> tuple[TaskData, tuple[np.ndarray, np.ndarray]]:
    """The case's validation subset and training subset."""
    full = _full_task(case.task, data_root)
    task = validation_subset(full, case.val_examples, seed)
    return task, training_subset(full.x_train, full.y_train, case.train_examples, seed)


def _standalone_job(
    case: Case, data_root: Path, seed: int, arch_config: dict[str, Any], run_seed: int
) -> dict[str, float]:
    """One stand-alone training and evaluation, in a worker process."""
    space = get_family(case.space["family"]).space.model_validate(case.space)
    task, subset = _case_data(case, data_root, seed)
    return standalone_eval(case, space, task, subset, space.arch_from_config(arch_config), run_seed)


def _supernet_job(case: Case, seed: int, threads: int, root: Path, data_root: Path) -> tuple[dict, float]:
    """Train the shared supernet under ``root``, in a worker process; its summary and seconds."""
    started = time.perf_counter()
    summary = train_supernet(supernet_spec(case, seed), str(root), str(data_root), num_threads=threads)
    return summary, time.perf_counter() - started


def subnet_row(
    space: ArchSpace, model: Supernet, task: TaskData, arch: Any, runs: list[dict[str, float]]
) -> dict[str, Any]:
    """One sub-network's row: its inherited accuracy (measured here) and its stand-alone runs."""
    inherited, inherited_s = inherited_eval(model, arch, task)
    return {
        "arch": space.config_from_arch(arch),
        "params": count_params(model.extract(arch)),
        "inherited_accuracy": inherited,
        "inherited_seconds": inherited_s,
        "standalone_accuracy": float(np.mean([r["accuracy"] for r in runs])),
        "standalone_accuracies": [r["accuracy"] for r in runs],
        "standalone_train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
        "standalone_eval_seconds": float(np.mean([r["eval_seconds"] for r in runs])),
    }


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Train the supernet, rank ``args.subnets`` sub-networks both ways; the case's JSON entry.

    The supernet and the stand-alone trainings run side by side in ``args.workers`` processes (each
    timed on its own ``args.threads`` threads); the inherited evaluations run afterwards, alone."""
    started = time.perf_counter()
    space = get_family(case.space["family"]).space.model_validate(case.space)
    full = _full_task(case.task, args.data_root)
    task, subset = _case_data(case, args.data_root, args.seed)
    archs = sample_distinct(space, args.subnets, args.seed)
    seeds = [args.seed + 1000 + i for i in range(case.standalone_seeds)]
    with tempfile.TemporaryDirectory(prefix="supernet-ranking-") as tmp:
        with worker_pool(args.workers, args.threads) as pool:
            supernet = pool.submit(_supernet_job, case, args.seed, args.threads, Path(tmp), args.data_root)
            jobs = [
                [
                    pool.submit(
                        _standalone_job, case, args.data_root, args.seed, space.config_from_arch(a), s
                    )
                    for s in seeds
                ]
                for a in archs
            ]
            summary, supernet_s = supernet.result()
            largest = summary["largest_val_accuracy"]
            _log(f"{case.name}: supernet trained in {supernet_s:.1f}s ({largest:.3f} largest)")
            runs = []
            for i, arch_jobs in enumerate(jobs):
                runs.append([job.result() for job in arch_jobs])
                mean_accuracy = np.mean([r["accuracy"] for r in runs[-1]])
                _log(f"{case.name} [{i + 1}/{len(archs)}] stand-alone {mean_accuracy:.3f}")
        model = load_supernet(SupernetPaths(Path(tmp)))
    rows = [subnet_row(space, model, task, a, arch_runs) for a, arch_runs in zip(archs, runs, strict=True)]
    return {
        "task": case.task,
        "family": space.family,
        "space": space.model_dump(mode="json"),
        "space_size": space.size,
        "training": case.training().model_dump(mode="json"),
        "train_examples": len(subset[0]),
        "val_examples": len(task.x_val),
        "standalone_seeds": seeds,
        "workers": args.workers,
        "supernet": {
            "seconds": supernet_s,
            "largest_val_accuracy": summary["largest_val_accuracy"],
            "smallest_val_accuracy": summary["smallest_val_accuracy"],
            "history": summary["history"],
            "note": "train_supernet's own accuracies, on the task's whole validation split",
        },
        "subnets": rows,
        **correlations(rows),
        **costs(rows, case, full, len(subset[0])),
        "seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------------------------- report


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _arch_label(config: dict[str, Any]) -> str:
    return " ".join(f"{k.replace('_', '')}={v}" for k, v in config.items())


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_case(name: str, result: dict[str, Any]) -> str:
    """A table of one case's sub-networks, then its correlations and costs."""
    lines = [
        f"{name}: {result['family']} on {result['task']} ({result['train_examples']} train, "
        f"{result['val_examples']} val, {result['training']['epochs']} epochs)",
        f"{'#':>3} {'params':>7} {'inherited':>9} {'inh ms':>7} {'stand-alone':>11} {'s/run':>7}  arch",
    ]
    for i, r in enumerate(result["subnets"]):
        lines.append(
            f"{i + 1:>3} {r['params']:>7} {r['inherited_accuracy']:>9.3f} "
            f"{r['inherited_seconds'] * 1000:>7.1f} {r['standalone_accuracy']:>11.3f} "
            f"{r['standalone_train_seconds'] + r['standalone_eval_seconds']:>7.2f}  {_arch_label(r['arch'])}"
        )
    proj = result["projected_default_budget"]
    projected = (
        f"; projected to the default budget ({proj['train_examples']} examples x {proj['epochs']} epochs) "
        f"~{proj['cost_ratio']:.0f}x"
        if proj
        else ""
    )
    lines += [
        f"Kendall tau {_fmt(result['kendall_tau'], '.3f')} (p {_fmt(result['kendall_p'], '.2g')}, goal "
        f">= {GOAL_TAU}), Spearman rho {_fmt(result['spearman_rho'], '.3f')}; "
        f"params-only baseline tau {_fmt(result['params_kendall_tau'], '.3f')}",
        f"cost: inherited {result['mean_inherited_seconds'] * 1000:.1f} ms, stand-alone "
        f"{result['mean_standalone_seconds']:.2f}s -> ratio {result['cost_ratio']:.1f}x (goal >= "
        f"{GOAL_COST_RATIO:.0f}x){projected}",
        f"supernet training {result['supernet']['seconds']:.1f}s",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every case of ``args``; returns the JSON document (also written to ``args.out``)."""
    retain_freed_memory()  # the inherited evaluations run in this process, as trials run in a worker
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    cases = build_cases(args)
    doc: dict[str, Any] = {
        "settings": {
            "subnets": args.subnets,
            "seed": args.seed,
            "quick": args.quick,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "goals": {"kendall_tau": GOAL_TAU, "cost_ratio": GOAL_COST_RATIO},
        },
        "machine": machine(),
        "cases": {},
        "not_run": {},
    }
    with tempfile.TemporaryDirectory(prefix="supernet-ranking-data-") as data_root:
        args.data_root = Path(data_root)
        for case in cases:
            if case.task == "synthetic":
                case = replace(case, task=write_synthetic_dataset(args.data_root))
            reason = None if is_dataset_id(case.task) else task_available(case.task)
            if reason is not None:
                doc["not_run"][case.name] = reason
                continue
            doc["cases"][case.name] = run_case(case, args)
    doc["machine"]["load_average_end"] = list(os.getloadavg())
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    for name, result in doc["cases"].items():
        print(format_case(name, result), end="\n\n")
    for name, reason in doc["not_run"].items():
        print(f"not run: {name}: {reason}")
    print(f"wall time {doc['wall_seconds']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

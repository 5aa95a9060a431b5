"""Training throughput of a supernet step (sandwich rule, SPOS) against plain training of its largest network.

Run from the repository root::

    python -m benchmarks.supernet_throughput              # cnn, mlp and transformer cases
    python -m benchmarks.supernet_throughput --cases cnn --repeats 7
    python -m benchmarks.supernet_throughput --quick      # smoke test

Per case (family on a task) and the same fixed mini-batches of ``--batch-size`` training examples, three
kinds of optimizer step are timed, each on a fresh, seeded model with ``train_supernet``'s optimizer
(SGD, Nesterov momentum 0.9, weight decay 5e-4):

- ``sandwich``: what ``workers.supernet_training.train_supernet`` runs per step, through its own
  ``_step_archs`` and ``_step_loss``: the largest, the smallest and 2 random sub-networks, the others
  distilled in place from the largest's soft predictions;
- ``spos``: one uniformly sampled sub-network (single-path one-shot), same functions;
- ``plain``: the largest sub-network extracted as a standalone module, cross-entropy, one SGD step.

``--warmup`` steps, then ``--repeats`` timed runs of ``--steps`` steps; samples per second is the median
over the runs (random sub-networks change from step to step, so single runs vary). ``ratio`` is
samples/s of the supernet step over samples/s of plain training: the price of weight sharing per
training example. One torch thread by default (``--threads``), as on a worker sharing its cores.

Cases: ``cnn``: elastic CNN on Fashion-MNIST, ``mlp``: elastic MLP on wine (the spaces of
``benchmarks.supernet_ranking``), ``transformer``: elastic Transformer on mnist1d (the family's default
space: 1-3 layers, 1-4 heads, embedding 32-64, MLP ratio 1-4).

Measured (one torch thread, 2-core machine shared with other work): the default run took 131 s of wall
time. A sandwich step runs 4 sub-networks, yet costs far less than 4 plain steps of the largest where
the cost is in the largest (cnn: sandwich/plain 0.69, a random sub-network of that space costs ~1/4 of
the largest); on the tiny MLP per-call overhead dominates and the ratio falls to ~0.25.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.cli import fill_defaults
from benchmarks.supernet_ranking import CASES as RANKING_CASES
from benchmarks.supernet_ranking import machine
from search_spaces.families import get_family
from search_spaces.family import ArchSpace
from search_spaces.spec import SupernetTraining
from search_spaces.supernet import Supernet, count_params
from surrogates.torch_threads import torch_threads
from workers.supernet_training import _step_archs, _step_loss
from workers.tasks import TaskData, load_task, task_available

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "supernet_throughput.json"
MODES = ("sandwich", "spos", "plain")
NUM_BATCHES = 8  # distinct mini-batches cycled through
Batch = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class Case:
    name: str
    task: str
    space: dict[str, Any]


CASES: dict[str, Case] = {
    "cnn": Case("cnn", RANKING_CASES["cnn"].task, RANKING_CASES["cnn"].space),
    "mlp": Case("mlp", "wine", RANKING_CASES["mlp"].space),
    "transformer": Case("transformer", "mnist1d", {"family": "elastic_transformer"}),
}
QUICK = {"warmup": 1, "steps": 2, "repeats": 2, "batch_size": 16}
DEFAULTS = {"warmup": 3, "steps": 10, "repeats": 5, "batch_size": 64}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.supernet_throughput", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, default {','.join(CASES)}")
    p.add_argument("--batch-size", type=int, help="examples per step (default 64)")
    p.add_argument("--warmup", type=int, help="untimed steps before timing (default 3)")
    p.add_argument("--steps", type=int, help="steps per timed run (default 10)")
    p.add_argument("--repeats", type=int, help="timed runs; samples/s is their median (default 5)")
    p.add_argument("--seed", type=int, default=0, help="model, batch and sampling seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: batch 16, 1 warm-up, 2 runs of 2 steps")
    args = p.parse_args(argv)
    fill_defaults(args, DEFAULTS, QUICK)
    if min(args.batch_size, args.steps, args.repeats, args.threads) < 1 or args.warmup < 0:
        raise SystemExit("--batch-size, --steps, --repeats and --threads must be positive")
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    if not names or any(n not in CASES for n in names):
        raise SystemExit(f"unknown cases in {args.cases!r}; known: {list(CASES)}")
    args.case_names = names
    return args


# --------------------------------------------------------------------------------------------- steps


def fixed_batches(task: TaskData, batch_size: int, seed: int) -> list[Batch]:
    """``NUM_BATCHES`` mini-batches of distinct training examples (with repeats if the set is small)."""
    rng = np.random.default_rng(seed)
    x, y = torch.from_numpy(task.x_train), torch.from_numpy(task.y_train)
    replace = batch_size > len(x)
    out = []
    for _ in range(NUM_BATCHES):
        idx = torch.from_numpy(rng.choice(len(x), size=batch_size, replace=replace))
        out.append((x[idx], y[idx]))
    return out


def _optimizer(module: nn.Module) -> torch.optim.Optimizer:
    training = SupernetTraining()
    return torch.optim.SGD(
        module.parameters(), lr=training.lr, momentum=0.9, nesterov=True, weight_decay=training.weight_decay
    )


def supernet_step(space: ArchSpace, model: Supernet, method: str, seed: int) -> Callable[[Batch], None]:
    """One training step of ``train_supernet`` with ``method`` (its own arch sampling and losses)."""
    training = SupernetTraining(method=method)
    optimizer = _optimizer(model)
    rng = np.random.default_rng(seed)

    def step(batch: Batch) -> None:
        optimizer.zero_grad(set_to_none=True)
        _step_loss(model, batch[0], batch[1], _step_archs(space, training, rng), training)
        optimizer.step()

    return step


def plain_step(module: nn.Module) -> Callable[[Batch], None]:
    """One plain cross-entropy SGD step of a standalone module."""
    optimizer = _optimizer(module)

    def step(batch: Batch) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(batch[0]), batch[1]).backward()
        optimizer.step()

    return step


def make_step(case: Case, space: ArchSpace, task: TaskData, mode: str, seed: int) -> Callable[[Batch], None]:
    """A fresh, seeded model and its step function for ``mode``."""
    torch.manual_seed(seed)
    model = get_family(space.family).supernet_class().from_space(space, task.input_shape, task.num_classes)
    model.train()
    if mode == "plain":
        return plain_step(model.extract(space.largest()).train())
    return supernet_step(space, model, mode, seed)


def time_steps(step: Callable[[Batch], None], data: list[Batch], args: argparse.Namespace) -> list[float]:
    """Samples per second of each timed run, after the warm-up steps."""
    for i in range(args.warmup):
        step(data[i % len(data)])
    rates = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for i in range(args.steps):
            step(data[i % len(data)])
        rates.append(args.steps * args.batch_size / (time.perf_counter() - started))
    return rates


# --------------------------------------------------------------------------------------------- cases


def subnets_per_step(mode: str) -> int:
    """Sub-networks run forward and backward per step."""
    if mode == "sandwich":
        return 2 + SupernetTraining().random_subnets_per_step
    return 1


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    """Time every mode of one case; its JSON entry."""
    space = get_family(case.space["family"]).space.model_validate(case.space)
    task = load_task(case.task)
    data = fixed_batches(task, args.batch_size, args.seed)
    supernet = get_family(space.family).supernet_class().from_space(space, task.input_shape, task.num_classes)
    modes = {}
    for mode in MODES:
        rates = time_steps(make_step(case, space, task, mode, args.seed), data, args)
        median = statistics.median(rates)
        modes[mode] = {
            "samples_per_second": median,
            "step_seconds": args.batch_size / median,
            "runs_samples_per_second": rates,
            "subnets_per_step": subnets_per_step(mode),
        }
        print(f"{case.name} {mode}: {median:.0f} samples/s", file=sys.stderr, flush=True)
    plain = modes["plain"]["samples_per_second"]
    return {
        "task": case.task,
        "family": space.family,
        "space": space.model_dump(mode="json"),
        "largest_params": count_params(supernet.extract(space.largest())),
        "supernet_params": count_params(supernet),
        "modes": modes,
        "ratio": {m: modes[m]["samples_per_second"] / plain for m in MODES if m != "plain"},
    }


def format_table(doc: dict[str, Any]) -> str:
    """Samples per second of each case and mode, and the ratios to plain training."""
    lines = [
        f"{'case':<12} {'task':<14} {'sandwich/s':>10} {'spos/s':>9} {'plain/s':>9} "
        f"{'sandwich/plain':>14} {'spos/plain':>10}"
    ]
    for name, c in doc["cases"].items():
        m = c["modes"]
        lines.append(
            f"{name:<12} {c['task']:<14} {m['sandwich']['samples_per_second']:>10.0f} "
            f"{m['spos']['samples_per_second']:>9.0f} {m['plain']['samples_per_second']:>9.0f} "
            f"{c['ratio']['sandwich']:>14.3f} {c['ratio']['spos']:>10.3f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every case of ``args``; returns the JSON document (also written to ``args.out``)."""
    with torch_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "settings": {
            key: getattr(args, key) for key in ("batch_size", "warmup", "steps", "repeats", "seed", "quick")
        }
        | {"started": datetime.now(UTC).isoformat(timespec="seconds")},
        "machine": machine(),
        "cases": {},
        "not_run": {},
    }
    for name in args.case_names:
        case = CASES[name]
        reason = task_available(case.task)
        if reason is not None:
            doc["not_run"][name] = reason
            continue
        doc["cases"][name] = run_case(case, args)
    doc["machine"]["load_average_end"] = machine()["load_average"]
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    for name, reason in doc["not_run"].items():
        print(f"not run: {name}: {reason}")
    print(f"wall time {doc['wall_seconds']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

"""How much a trial's measured latency varies from one measurement to the next, by estimator.

    python -m benchmarks.latency_noise            # writes benchmarks/results/latency_noise.json

A trial measures ``latency_ms`` on a worker while other trials train beside it. This program
measures the same networks (the smallest and the largest sub-network of the digits elastic CNN
space of ``examples/digits.yaml``, randomly initialised: latency does not depend on the weights'
values) ``--measurements`` times, alone and with ``--busy`` processes training a small CNN on the
other cores, and reports each estimator's mean, coefficient of variation and max/min over the
measurements: the median of 30 runs (what supernas used before) and the fastest of 200 in 4 rounds
(``workers.latency.fastest_ms``, what trials use now), taken in turn so that both see the same
conditions.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.elastic_cnn import ElasticCNN
from search_spaces.elastic_cnn_space import ElasticCNNSpace
from workers.latency import fastest_ms, timings_ms

RESULTS = Path(__file__).parent / "results" / "latency_noise.json"


def _networks() -> dict[str, nn.Module]:
    space = ElasticCNNSpace(
        stage_channels=[16, 32], depth=[1, 2, 3], width_mult=[0.25, 0.5, 0.75, 1.0], kernel_size=[3, 5]
    )
    supernet = ElasticCNN.from_space(space, (1, 8, 8), 10)
    return {
        "digits cnn, smallest": supernet.extract(space.smallest()).eval(),
        "digits cnn, largest": supernet.extract(space.largest()).eval(),
    }


ESTIMATORS: dict[str, Callable[[Callable[[], object]], float]] = {
    "median of 30 (before)": lambda run: statistics.median(timings_ms(run, repeats=30, rounds=1)),
    "fastest of 200 (now)": lambda run: fastest_ms(run),  # in 4 rounds, as trials measure it
}


def _train_forever(stop: Any) -> None:
    """The load of another trial: a small CNN trained on one core until ``stop`` is set."""
    torch.set_num_threads(1)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.Flatten(),
        nn.Linear(2048, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    while not stop.is_set():
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _spread(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {
        "mean_ms": float(array.mean()),
        "cv": float(array.std() / array.mean()),
        "max_over_min": float(array.max() / array.min()),
    }


def measure(busy: int, measurements: int) -> dict[str, Any]:
    """Every estimator on every network, ``measurements`` times, with ``busy`` training processes."""
    torch.set_num_threads(1)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    load = [context.Process(target=_train_forever, args=(stop,)) for _ in range(busy)]
    for process in load:
        process.start()
    time.sleep(2.0 if busy else 0.0)  # the load's processes are training before the first timing
    try:
        out: dict[str, Any] = {}
        x = torch.zeros(1, 1, 8, 8)
        for name, model in _networks().items():
            values: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
            with torch.inference_mode():
                for _ in range(measurements):
                    for estimator, estimate in ESTIMATORS.items():  # interleaved: same conditions
                        values[estimator].append(estimate(lambda m=model: m(x)))
            out[name] = {e: _spread(v) for e, v in values.items()}
        return out
    finally:
        stop.set()
        for process in load:
            process.join()


def _table(results: dict[str, Any]) -> str:
    lines = ["| load | network | estimator | mean ms | CV | max/min |", "|---|---|---|---|---|---|"]
    for load, networks in results.items():
        for network, estimators in networks.items():
            for estimator, s in estimators.items():
                lines.append(
                    f"| {load} | {network} | {estimator} | {s['mean_ms']:.3f} | {s['cv']:.2f} | "
                    f"{s['max_over_min']:.2f} |"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=20, help="measurements per estimator")
    parser.add_argument("--busy", type=int, default=2, help="training processes beside the measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = {
        "alone": measure(0, args.measurements),
        f"{args.busy} processes training": measure(args.busy, args.measurements),
    }
    doc = {
        "benchmark": "latency_noise",
        "machine": {"python": platform.python_version(), "cpus": multiprocessing.cpu_count()},
        "measurements": args.measurements,
        "results": results,
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(_table(results))
    print(f"\nwrote {args.out} in {doc['seconds']:.0f} s")
    return doc


if __name__ == "__main__":
    main()

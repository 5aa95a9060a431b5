"""Our PFN surrogate against a BoTorch GP: predictive quality by context size, and speed.

Run from the repository root::

    python -m benchmarks.pfn                                 # sizes 10,50,200,1000, every data set
    python -m benchmarks.pfn --sizes 10,50,200 --tasks 10 --real-tasks 3 --datasets prior-functions,nb201
    python -m benchmarks.pfn --weights runs/pfn/export       # another PFN (pfn.pt + pfn.json)
    python -m benchmarks.pfn --quick                         # smoke test (well under a minute)

The PFN (``surrogates.pfn.predictor``, the shipped weights unless ``--weights``) answers with one
forward pass; the GP is what ``BoTorchStrategy`` fits, ``surrogates.botorch_models.fit_model``
(``SingleTaskGP`` with a ``Standardize`` outcome transform, hyperparameters by ``fit_gpytorch_mll``),
on the whole context (no 256-point cap), and predicts with observation noise
(``posterior(X, observation_noise=True)``). Both run with one torch thread.

**Quality.** For each data set and context size N, ``--tasks`` tasks (``--real-tasks`` on real data):

- ``prior-functions``: held-out function tasks from the PFN's prior (``priors.function_task``,
  dims 2-8), N context points, ``--queries`` query points;
- ``prior-curves``: learning-curve tasks from the prior (``priors.curve_task``, 20-50 epochs);
- ``nb201``: NAS-Bench-201 validation accuracy (``benchmarks.problems.nb201_table``): N random
  architectures (encoded by ``nb201_space().encode``, 30 one-hot coordinates) as context,
  ``--queries`` other architectures as queries;
- ``lc-mnist1d``: real learning curves (validation accuracy of MLPs on MNIST-1D, seed 0 of
  ``--lc-data``, made by ``benchmarks.learning_curves``; generated there if missing).

On curve tasks the context is N observed epochs: prefixes of random length (1 to E-1 epochs) of
several configs' curves, and the queries are the final epochs of those partially observed curves.
The PFN gets them through ``predict_curves``; the GP's inputs are the config with ``t = epoch / E``
appended. The prior tasks come from a fixed seed (``--seed``) unlike training's (0, 1) and its
validation set's (987654).

Metrics per query point, averaged over a task's queries then over tasks (the ± in the JSON is the
standard error over tasks): the predictive log-likelihood and the RMSE of the predictive mean, both
in units of the context standardised (y -> (y - mean) / std of the context, population std: the
log-likelihood in the caller's units plus log std), and Kendall's tau between predictive means and
true values on the queries (0 where either is constant). The median LL over tasks is reported too:
one task whose queries fall far outside a model's predictive tails can dominate a cell's mean.

**Speed.** Seconds per prediction at every N and at 500, on a 6-dimensional prior function task
with ``--timing-queries`` (1000) query points: the PFN's ``predict`` (plus its mean and std), the
GP's fit plus its posterior mean and variance (median of 3 runs, one run for a GP fit over 2 s).
Seconds per ``ask(n=1)`` of the ``pfn`` and ``botorch`` strategies on 100 and 500 observations
(``benchmarks.contenders.time_ask``: nb201-latency, two objectives; ``pfn`` uses the shipped weights,
``botorch`` trains on at most 256 points). The goal: the PFN at least 10x faster than the GP at 500
observations with a comparable log-likelihood (on average over the cells at N >= 200, or over all
cells where no size reaches 200, at most 0.1 nats per point below the GP's).

Writes ``pfn.json`` and ``pfn.png`` (log-likelihood against N, one panel per data set) to ``--out``.

Cost: the default run took 39 minutes on a 2-core machine shared with other work, almost all of it
in GP fits at N = 1000 (NAS-Bench-201's 30 inputs: ~5 minutes per fit, 25 minutes in all; the
prior's tasks: 12-17 s per fit); the PFN's share is seconds. ``--quick`` takes about 25 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import learning_curves
from benchmarks.cli import fill_defaults
from benchmarks.pfn_quality import quality
from benchmarks.pfn_report import GOAL_SIZE, goal, plot, report
from benchmarks.pfn_speed import TIMING_DIM, time_asks, time_predictions
from benchmarks.pfn_tasks import RealData, load_real_data
from benchmarks.supernet_ranking import machine
from surrogates.pfn.predictor import PFNPredictor, shipped_predictor, shipped_weights_dir
from surrogates.torch_threads import torch_threads

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DATASETS = ("prior-functions", "prior-curves", "nb201", "lc-mnist1d")
DEFAULT_SEED = 31_415  # training draws tasks from seeds 0 and 1, its validation set from 987654
DEFAULTS = {"sizes": "10,50,200,1000", "tasks": 20, "real_tasks": 5, "ask_sizes": "100,500"}
QUICK = {"sizes": "10,50", "tasks": 3, "real_tasks": 2, "ask_sizes": "50"}


# --------------------------------------------------------------------------------------------- main


def _ints(value: str) -> list[int]:
    return [int(s) for s in value.split(",") if s.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pfn", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--sizes", help=f"context sizes (default {DEFAULTS['sizes']})")
    p.add_argument("--tasks", type=int, help=f"tasks per cell on prior data (default {DEFAULTS['tasks']})")
    p.add_argument(
        "--real-tasks", type=int, help=f"tasks per cell on real data (default {DEFAULTS['real_tasks']})"
    )
    p.add_argument(
        "--queries", type=int, default=200, help="query points per function/nb201 task (default 200)"
    )
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated subset of {DATASETS}")
    p.add_argument("--timing-queries", type=int, default=1000, help="query points when timing (default 1000)")
    p.add_argument(
        "--ask-sizes", help=f"observations when timing ask (default {DEFAULTS['ask_sizes']}; 'none')"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"task seed (default {DEFAULT_SEED})")
    p.add_argument(
        "--weights", type=Path, help="directory of pfn.pt + pfn.json (default: the shipped weights)"
    )
    p.add_argument("--lc-data", type=Path, default=learning_curves.DEFAULT_OUT, help="learning curves (.npz)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: sizes 10,50, 3 (2 real) tasks per cell")
    args = p.parse_args(argv)
    fill_defaults(args, DEFAULTS, QUICK)
    args.sizes = _ints(args.sizes)
    args.ask_sizes = [] if args.ask_sizes.strip().lower() in ("", "none") else _ints(args.ask_sizes)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in args.datasets if d not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown data sets {unknown}; known: {list(DATASETS)}")
    if not args.sizes or min(args.sizes) < 2 or min(args.tasks, args.real_tasks, args.queries) < 2:
        raise SystemExit("--sizes must be at least 2, --tasks, --real-tasks and --queries at least 2")
    return args


def _settings(args: argparse.Namespace, predictor: PFNPredictor, data: RealData) -> dict[str, Any]:
    record = predictor.record
    return {
        "sizes": args.sizes,
        "tasks": args.tasks,
        "real_tasks": args.real_tasks,
        "queries": args.queries,
        "datasets": args.datasets,
        "timing_queries": args.timing_queries,
        "timing_dim": TIMING_DIM,
        "ask_sizes": args.ask_sizes,
        "seed": args.seed,
        "quick": args.quick,
        "standardisation": "y -> (y - context mean) / context std (ddof 0); LL = LL in y's units + log std",
        "gp": "surrogates.botorch_models.fit_model on the whole context; posterior with observation noise",
        "pfn_weights": str(args.weights or shipped_weights_dir()),
        "pfn": {
            k: record.get(k) for k in ("config", "prior_version", "steps", "train_seconds", "validation_nll")
        },
        "lc_data": str(args.lc_data),
        "lc_settings": data.lc_settings,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by ``args``; returns the JSON document (also written to ``args.out``)."""
    started = time.perf_counter()
    predictor = PFNPredictor.load(args.weights) if args.weights else shipped_predictor()
    with tempfile.TemporaryDirectory() as workdir, torch_threads(1):
        data = load_real_data(args.datasets, args.lc_data, args.quick, Path(workdir))
        doc: dict[str, Any] = {"settings": _settings(args, predictor, data)}
        doc["quality"] = quality(predictor, data, args)
        timing_sizes = sorted({*args.sizes, GOAL_SIZE})
        doc["timing"] = {
            "prediction": time_predictions(predictor, timing_sizes, args.timing_queries, args.seed),
            "ask": time_asks(args.ask_sizes, args.seed) if args.ask_sizes else {},
        }
    doc["goal"] = goal(doc)
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pfn.json").write_text(json.dumps(doc, indent=1))
    plot(doc["quality"]["results"], args.out / "pfn.png")
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(report(doc))
    print(f"wrote {args.out / 'pfn.json'} and {args.out / 'pfn.png'}")
    return doc


if __name__ == "__main__":
    main()

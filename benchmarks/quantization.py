"""Joint architecture + quantization policy search (SimQ-NAS) against quantizing after the search.

Run from the repository root::

    python -m benchmarks.quantization                    # both problems, 30 evaluations per method
    python -m benchmarks.quantization --problems transformer --evaluations 40 --work-dir /tmp/q
    python -m benchmarks.quantization --quick            # smoke test (tiny spaces, < 1 minute)

Each problem's supernet is trained once by ``train_supernet`` (reused from ``--work-dir`` if given):

- ``cnn``: elastic CNN on Fashion-MNIST, stage channels [8, 16, 32], depth [1, 2, 3], width [0.5, 0.75,
  1.0], kernel [3, 5], expand [2, 4]; 3 epochs on 5,000 training images; a 1,000-image validation
  subset. (Channels [16, 32, 64]: ~13 ms per image for the largest on one thread, too slow here.)
- ``transformer``: elastic Transformer on mnist1d, the space of ``examples/mnist1d-transformer.yaml``;
  20 epochs, batch 32, lr 0.02 (its lr 0.05 collapsed at epoch 2); the whole validation split.

Three searches per problem with the same strategy (``--strategy``, ``--batch`` configs per ask), seed
and number of ``--evaluations``: A, float sub-networks, whose Pareto front is then converted fully to
INT8; B, fully INT8 sub-networks only; C, architecture and per-unit policy jointly (weights int8 / int4
/ float, activations int8 / float). An evaluation is what a trial measures: the sub-network with
inherited weights (BatchNorm recalibrated), its fake-quant accuracy estimate (calibration: the first
256 of a fixed shuffle of the training split) and the real costs of its ONNX model converted by
``workers.onnx_quant`` (batch-1 latency on one thread, the bytes of its initializers). Objectives:
estimate up, latency and bytes down.

All reported numbers come from real converted models: each method's final models (A: the INT8
conversions of its front, A_float: the front itself; B, C: their fronts) get their real accuracy
from ONNX Runtime on the same validation examples and their costs as the median of 3 fresh
measurements, taken in rounds over all of the problem's final models (methods interleaved, so that
a change of load hits them alike). Per problem: the hypervolume of each method's final models (each
objective mapped to [0, 1] by its range over all of that problem's final models, reference point
1.1); at matched accuracy (real accuracy >= the best of A_float minus 0.5 points) each method's
lowest latency and size, and the ratios C/A, C/B (< 1: C is better); the gap |estimate - real| in
points over the quantized final models (goal: < 0.5 on average) and over every quantized model
searched.

Measured: 17.5 minutes on a 2-core machine shared with other work (cnn 12, transformer 5.5; the
supernets 3.3 and 2.4 of them); ``--quick`` about 40 seconds. Batch-1 latencies of these sub-ms
models vary by up to ~1.5x between sessions of the same file: ratios within that are noise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cli import fill_defaults
from benchmarks.supernet_ranking import machine, validation_subset
from search_spaces.families import get_family
from search_spaces.family import ArchSpace
from search_spaces.params import ParamSpace
from search_spaces.quantization import (
    Policy,
    Quantization,
    is_all_float,
    policy_from_config,
    policy_to_json,
    uniform_policy,
)
from search_spaces.spec import Objective
from search_spaces.supernet import Supernet
from supernas.objectives import Direction
from supernas.records import Observation
from supernas.states import TrialState
from surrogates.hypervolume import hypervolume
from surrogates.pareto import non_dominated_mask
from surrogates.registry import STRATEGIES, make_strategy
from surrogates.strategy import SearchProblem
from surrogates.torch_threads import torch_threads
from workers.export import export_onnx, onnx_accuracy
from workers.fake_quant import fake_quant_accuracy
from workers.onnx_quant import quantize_model, runtime_costs
from workers.supernet_training import SupernetCollapsedError, SupernetPaths, load_supernet, train_supernet
from workers.task_source import load_task_data
from workers.tasks import TaskData, task_available
from workers.training import recalibrate_batchnorm

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "quantization.json"
GOAL_GAP_POINTS = 0.5
MATCH_POINTS = 0.5
REFERENCE = 1.1  # hypervolume reference point, in normalised units, in every objective
COST_REPEATS = 3
SUPERNET_NOTE = "train_supernet's own accuracies (PyTorch, float), on the task's whole validation split"
GAP_FORMATS = (("mean_points", ".3f"), ("max_points", ".3f"), ("mean_signed_points", "+.3f"))
OBJECTIVES = (
    Objective(metric="accuracy", direction="maximize"),
    Objective(metric="latency_ms", direction="minimize"),
    Objective(metric="model_bytes", direction="minimize"),
)
DIRECTIONS = [Direction.MAXIMIZE, Direction.MINIMIZE, Direction.MINIMIZE]
METHODS: dict[str, Quantization] = {
    "A": Quantization(weights=["float"]),
    "B": Quantization(weights=["int8"], activations=["int8"]),
    "C": Quantization(),
}
REPORTED = ("A_float", "A", "B", "C")  # A_float: A's front before conversion, for reference


@dataclass(frozen=True)
class Problem:
    """One supernet and its task: the space, the supernet's training and the validation subset."""

    task: str
    space: dict[str, Any]
    training: dict[str, Any]
    val_examples: int | None  # None: the whole validation split
    calibration_examples: int = 256


CNN = {"family": "elastic_cnn", "stage_channels": [8, 16, 32], "depth": [1, 2, 3], "expand_ratio": [2, 4]}
TRANSFORMER = {"family": "elastic_transformer", "num_layers": [1, 2, 3], "num_heads": [1, 2, 4]}
PROBLEMS: dict[str, Problem] = {
    "cnn": Problem(
        "fashion_mnist",
        CNN | {"width_mult": [0.5, 0.75, 1.0], "kernel_size": [3, 5]},
        {"epochs": 3, "batch_size": 128, "lr": 0.1, "max_train_examples": 5000},
        1000,
    ),
    "transformer": Problem(
        "mnist1d",
        TRANSFORMER | {"embed_dim": [32, 48, 64], "mlp_ratio": [1, 2, 4], "per_layer": True},
        {"epochs": 20, "batch_size": 32, "lr": 0.02},
        None,
    ),
}
TINY = {"epochs": 1, "batch_size": 128, "lr": 0.1, "random_subnets_per_step": 0}
QUICK_PROBLEMS: dict[str, Problem] = {  # untrained-ish supernets on tiny spaces: the code paths only
    "cnn": Problem(
        "fashion_mnist",
        CNN | {"stage_channels": [4, 8], "depth": [1, 2], "width_mult": [0.5, 1.0], "kernel_size": [3]},
        TINY | {"max_train_examples": 512},
        200,
        64,
    ),
    "transformer": Problem(
        "mnist1d",
        TRANSFORMER | {"num_layers": [1, 2], "num_heads": [1, 2], "embed_dim": [16, 32], "mlp_ratio": [1, 2]},
        TINY | {"max_train_examples": 1000},
        300,
        64,
    ),
}
QUICK = {"evaluations": 5, "batch": 2}


@dataclass
class Bench:
    """A problem's trained supernet with its data: what every evaluation needs."""

    space: ArchSpace
    supernet: Supernet
    task: TaskData  # validation split cut to the problem's subset
    calibration: np.ndarray
    files: Path  # where evaluated models are kept


# --------------------------------------------------------------------------------------------- arguments


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quantization", description=__doc__.split("\n")[0])
    p.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated: cnn,transformer")
    p.add_argument("--evaluations", type=int, help="evaluations per method and problem (default 30)")
    p.add_argument("--strategy", default="default", choices=sorted(STRATEGIES), help="(default default)")
    p.add_argument("--batch", type=int, help="configs per ask (default 4)")
    p.add_argument("--seed", type=int, default=0, help="supernet, data subsets and strategy seed")
    p.add_argument("--work-dir", type=Path, help="keep trained supernets here to reuse (default: temporary)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default results/)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny spaces, 1 epoch, 5 evaluations")
    args = p.parse_args(argv)
    fill_defaults(args, {"evaluations": 30, "batch": 4}, QUICK)
    args.problems = [n.strip() for n in args.problems.split(",") if n.strip()]
    unknown = [n for n in args.problems if n not in PROBLEMS]
    if unknown or not args.problems or args.evaluations < 2 or args.batch < 1:
        raise SystemExit(f"problems must be among {list(PROBLEMS)}; --evaluations >= 2, --batch >= 1")
    return args


# --------------------------------------------------------------------------------------------- setup


def train(problem: Problem, seed: int, work_dir: Path) -> tuple[Supernet, dict[str, Any], float]:
    """Train (or reuse from ``work_dir``) the problem's supernet; returns it, its summary, the seconds."""
    spec = {"name": "quantization", "task": problem.task, "space": problem.space, "seed": seed}
    spec["training"] = problem.training
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    root = work_dir / f"supernet-{digest}"
    started = time.perf_counter()
    summary = train_supernet(spec, str(root), str(work_dir), num_threads=1)
    return load_supernet(SupernetPaths(root)), summary, time.perf_counter() - started


def calibration_set(task: TaskData, n: int, seed: int) -> np.ndarray:
    """The first ``n`` examples of a fixed shuffle of the training split (as a service trial does)."""
    order = np.random.default_rng(seed).permutation(len(task.x_train))
    return np.ascontiguousarray(task.x_train[order[:n]])


def param_space(space: ArchSpace, quantization: Quantization) -> ParamSpace:
    """The architecture's genes, then the policy's (as ``SearchSpec.param_space`` builds them)."""
    return ParamSpace(space.params() + quantization.params(space.quant_units()))


# --------------------------------------------------------------------------------------------- measuring


def remeasure_costs(bench: Bench, models: list[dict[str, Any]]) -> None:
    """Replace each model's costs by the median of ``COST_REPEATS`` fresh measurements, taken in
    rounds over all the models."""
    runs: list[list[dict[str, Any]]] = [[] for _ in models]
    for _ in range(COST_REPEATS):
        for model, measured in zip(models, runs, strict=True):
            measured.append(runtime_costs(bench.files / model["file"], bench.task.input_shape).as_dict())
    for model, measured in zip(models, runs, strict=True):
        model |= {key: float(statistics.median(run[key] for run in measured)) for key in measured[0]}


def measure(bench: Bench, arch: Any, policy: Policy, name: str, costs: bool = True) -> dict[str, Any]:
    """Estimate, real accuracy and real costs of ``arch`` under ``policy``; the model is kept as
    ``name`` under ``bench.files`` (the float export beside it)."""
    model = bench.supernet.extract(arch)
    recalibrate_batchnorm(model, bench.task.x_train)
    scopes = bench.space.quant_unit_scopes(arch)
    x, y = bench.task.x_val, bench.task.y_val
    estimate = fake_quant_accuracy(model, policy, scopes, bench.calibration, x, y)
    path = bench.files / f"{name}.float.onnx"
    export_onnx(model, bench.task.input_shape, path)
    if not is_all_float(policy):
        quantize_model(path, path.with_name(f"{name}.onnx"), policy, scopes, bench.calibration)
        path = path.with_name(f"{name}.onnx")
    return {
        "policy": policy_to_json(policy),
        "quantized": not is_all_float(policy),
        "estimate": estimate,
        "accuracy": onnx_accuracy(path, x, y),
        **(runtime_costs(path, bench.task.input_shape).as_dict() if costs else {}),
        "file": path.name,
    }


def evaluate(bench: Bench, config: dict[str, Any], name: str) -> dict[str, Any]:
    """One search evaluation of a config (architecture genes and policy genes); ``error`` if it failed."""
    record: dict[str, Any] = {"config": config}
    try:
        arch = bench.space.arch_from_config(config)
        record |= measure(bench, arch, policy_from_config(config), name)
    except Exception as exc:  # an export or a conversion that failed: a failed trial, as in the service
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record


def _observation(number: int, record: dict[str, Any]) -> Observation:
    if "error" in record:
        return Observation(number, record["config"], TrialState.FAILED, {})
    metrics = {o.metric.value: record["estimate" if o.metric == "accuracy" else o.metric] for o in OBJECTIVES}
    return Observation(number, record["config"], TrialState.SUCCEEDED, metrics)


def search(bench: Bench, method: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``args.evaluations`` evaluations proposed by the strategy in ``method``'s space, in order."""
    space = param_space(bench.space, METHODS[method])
    problem = SearchProblem(space, OBJECTIVES, max_trials=args.evaluations)
    strategy = make_strategy(args.strategy, problem, args.seed)
    history: list[Observation] = []
    records: list[dict[str, Any]] = []
    while len(records) < args.evaluations:
        for suggestion in strategy.ask(history, [], min(args.batch, args.evaluations - len(records))):
            config = space.validate(suggestion.config)
            records.append(evaluate(bench, config, f"{method}-{len(records)}"))
            history.append(_observation(len(history), records[-1]))
        _log(f"  {method}: {len(records)}/{args.evaluations} evaluations")
    return records


def search_front(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evaluations no other dominates on (estimate, latency, bytes)."""
    done = [r for r in records if "error" not in r]
    values = np.array([[r["estimate"], r["latency_ms"], r["model_bytes"]] for r in done]).reshape(-1, 3)
    return [r for r, keep in zip(done, non_dominated_mask(values, DIRECTIONS), strict=True) if keep]


def finals(bench: Bench, method: str, front: list[dict[str, Any]], int8: bool) -> list[dict[str, Any]]:
    """Each front point converted and measured again (with ``int8``, fully to INT8) for its real
    accuracy; its costs are measured again by ``remeasure_costs``."""
    out = []
    for i, record in enumerate(front):
        arch = bench.space.arch_from_config(record["config"])
        units = list(bench.space.quant_unit_scopes(arch))
        policy = uniform_policy(units, "int8", "int8") if int8 else policy_from_config(record["config"])
        try:
            measured = measure(bench, arch, policy, f"{method}-final-{i}", costs=False)
        except Exception as exc:  # reported on stderr; the model is left out of the summaries
            _log(f"  {method}: final model {i} failed: {type(exc).__name__}: {exc}")
            continue
        out.append({"config": record["config"], "search_estimate": record["estimate"], **measured})
    return out


# --------------------------------------------------------------------------------------------- summaries


def normalisation(models: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Each objective's [low, high] over all of a problem's final models."""
    keys = ("accuracy", "latency_ms", "model_bytes")
    return {k: [float(min(m[k] for m in models)), float(max(m[k] for m in models))] for k in keys}


def normalised_costs(models: list[dict[str, Any]], scale: dict[str, list[float]]) -> np.ndarray:
    """(N, 3) minimised costs in [0, 1] of the scale: accuracy flipped, latency and bytes as they are."""
    columns = []
    for key in ("accuracy", "latency_ms", "model_bytes"):
        low, high = scale[key]
        u = (np.array([m[key] for m in models], np.float64) - low) / (high - low or 1.0)  # (N,)
        columns.append(1.0 - u if key == "accuracy" else u)
    return np.stack(columns, axis=1).reshape(-1, 3)


def matched(finals_of: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Lowest latency and size of each method's models within ``MATCH_POINTS`` of the best float model,
    and the ratios of C over A and B."""
    best_float = max(m["accuracy"] for m in finals_of["A_float"])
    threshold = best_float - MATCH_POINTS / 100
    per: dict[str, dict[str, Any]] = {}
    for method, models in finals_of.items():
        ok = [m for m in models if m["accuracy"] >= threshold - 1e-12]
        lowest = {k: min((m[k] for m in ok), default=None) for k in ("latency_ms", "model_bytes")}
        per[method] = {"models": len(ok), **lowest}

    def ratio(key: str, other: str) -> float | None:
        c, o = per["C"][key], per[other][key]
        return None if c is None or o is None else c / o

    ratios = {
        f"{k}_C_over_{o}": ratio(k, o) for o in ("A", "B", "A_float") for k in ("latency_ms", "model_bytes")
    }
    return {"best_float_accuracy": best_float, "threshold": threshold, "methods": per, "ratios": ratios}


def gap(models: list[dict[str, Any]]) -> dict[str, Any]:
    """|estimate - real accuracy| in points over the quantized ``models``."""
    diffs = [100 * (m["estimate"] - m["accuracy"]) for m in models if m.get("quantized")]
    if not diffs:
        return {"models": 0} | {key: None for key, _ in GAP_FORMATS}
    values = (np.abs(diffs).mean(), np.abs(diffs).max(), np.mean(diffs))
    return {"models": len(diffs)} | {key: float(v) for (key, _), v in zip(GAP_FORMATS, values, strict=True)}


# --------------------------------------------------------------------------------------------- one problem


def setup(
    problem: Problem, args: argparse.Namespace, work_dir: Path, files: Path
) -> tuple[Bench, dict[str, Any]]:
    space = get_family(problem.space["family"]).space.model_validate(problem.space)
    supernet, summary, seconds = train(problem, args.seed, work_dir)
    full = load_task_data(problem.task, work_dir)
    calibration = calibration_set(full, problem.calibration_examples, args.seed)
    task = validation_subset(full, problem.val_examples, args.seed)
    bench = Bench(space, supernet, task, calibration, files)
    info = {"seconds": seconds} | {k: summary[k] for k in ("largest_val_accuracy", "smallest_val_accuracy")}
    return bench, info | {"note": SUPERNET_NOTE}


def run_problem(name: str, problem: Problem, args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="models-", dir=work_dir) as files:
        return _run_problem(name, problem, args, work_dir, Path(files))


def _run_problem(
    name: str, problem: Problem, args: argparse.Namespace, work_dir: Path, files: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    bench, supernet_info = setup(problem, args, work_dir, files)
    _log(f"{name}: supernet ready in {supernet_info['seconds']:.0f}s")
    methods: dict[str, dict[str, Any]] = {}
    finals_of: dict[str, list[dict[str, Any]]] = {}
    for method in METHODS:
        t = time.perf_counter()
        records = search(bench, method, args)
        front = search_front(records)
        finals_of[method] = finals(bench, method, front, int8=method == "A")
        if method == "A":
            finals_of["A_float"] = finals(bench, "A_float", front, int8=False)
        methods[method] = {"evaluations": records, "search_front": len(front)}
        methods[method]["seconds"] = time.perf_counter() - t
        _log(f"{name} {method}: front of {len(front)} in {methods[method]['seconds']:.0f}s")
    remeasure_costs(bench, [m for row in zip_longest(*finals_of.values()) for m in row if m is not None])
    scale = normalisation([m for models in finals_of.values() for m in models])
    searched = [r for m in METHODS for r in methods[m]["evaluations"] if "error" not in r]
    return {
        "task": problem.task,
        "space": bench.space.model_dump(mode="json"),
        "units": [u.name for u in bench.space.quant_units()],
        "training": problem.training,
        "val_examples": len(bench.task.x_val),
        "calibration_examples": len(bench.calibration),
        "supernet": supernet_info,
        "methods": methods,
        "finals": finals_of,
        "normalisation": {**scale, "reference_point": [REFERENCE] * 3},
        "hypervolume": {
            m: hypervolume(normalised_costs(finals_of[m], scale), [REFERENCE] * 3) for m in REPORTED
        },
        "matched": matched(finals_of),
        "gap": gap([m for k in ("A", "B", "C") for m in finals_of[k]]),
        "gap_all_evaluations": gap(searched),
        "failed_evaluations": sum("error" in r for m in METHODS for r in methods[m]["evaluations"]),
        "seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------------------------- report


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def policy_label(policy: dict[str, dict[str, str]]) -> str:
    """One token per unit: weights (8, 4, F) then activations (8, f), e.g. ``88 4f F-``."""
    weights = {"int8": "8", "int4": "4", "float": "F"}
    return " ".join(
        weights[p["weights"]] + ("-" if p["weights"] == "float" else "8f"[p["activations"] == "float"])
        for p in policy.values()
    )


def _header(name: str, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    n = r["normalisation"]
    acc, lat, size = n["accuracy"], n["latency_ms"], n["model_bytes"]
    return [
        f"{name}: {r['space']['family']} on {r['task']} ({r['val_examples']} val, {r['calibration_examples']}"
        f" calibration), {args.evaluations} evaluations per method, strategy {args.strategy}",
        f"supernet {r['supernet']['seconds']:.0f}s, largest {r['supernet']['largest_val_accuracy']:.4f}",
        f"HV: accuracy {acc[0]:.4f}..{acc[1]:.4f}, latency {lat[0]:.3f}..{lat[1]:.3f} ms, size "
        f"{size[0]:.0f}..{size[1]:.0f} B to [0, 1] (accuracy flipped), reference point {REFERENCE}",
    ]


def _summary(r: dict[str, Any]) -> list[str]:
    match, ratios = r["matched"], r["matched"]["ratios"]
    lines = [f"{'method':<8} {'models':>6} {'HV':>6} {'best acc':>8} {'matched':>7} {'lat ms':>7} {'KB':>7}"]
    for m in REPORTED:
        per, best = match["methods"][m], max((x["accuracy"] for x in r["finals"][m]), default=None)
        size = None if per["model_bytes"] is None else per["model_bytes"] / 1000
        lines.append(
            f"{m:<8} {len(r['finals'][m]):>6} {r['hypervolume'][m]:>6.3f} {_fmt(best, '.4f'):>8} "
            f"{per['models']:>7} {_fmt(per['latency_ms'], '.3f'):>7} {_fmt(size, '.1f'):>7}"
        )
    lines.append(
        f"matched: real accuracy >= {match['threshold']:.4f} (best float {match['best_float_accuracy']:.4f})"
    )
    for o in ("A", "B", "A_float"):
        lat, size = (_fmt(ratios[f"{k}_C_over_{o}"], ".3f") for k in ("latency_ms", "model_bytes"))
        lines.append(f"C/{o}: latency {lat}, size {size}")
    for label, g in (("final models", r["gap"]), ("all searched", r["gap_all_evaluations"])):
        mean, top, signed = (_fmt(g[k], f) for k, f in GAP_FORMATS)
        lines.append(
            f"fake-quant vs real gap, {label} ({g['models']} quantized): mean {mean}, max {top}, "
            f"signed mean {signed} points (goal: mean < {GOAL_GAP_POINTS})"
        )
    return lines


def _models(r: dict[str, Any]) -> list[str]:
    lines = [f"{'':<8} {'real acc':>8} {'est':>7} {'lat ms':>7} {'KB':>7}  policy per unit (weights, acts)"]
    for m in ("A", "B", "C"):
        for x in sorted(r["finals"][m], key=lambda x: -x["accuracy"]):
            lines.append(
                f"{m:<8} {x['accuracy']:>8.4f} {x['estimate']:>7.4f} {x['latency_ms']:>7.3f} "
                f"{x['model_bytes'] / 1000:>7.1f}  {policy_label(x['policy'])}"
            )
    return [*lines, f"{r['failed_evaluations']} failed evaluations; {r['seconds']:.0f}s"]


def format_problem(name: str, r: dict[str, Any], args: argparse.Namespace) -> str:
    """The problem's header, its per-method summary, ratios and gaps, then every final model."""
    return "\n".join([*_header(name, r, args), *_summary(r), *_models(r)])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every problem of ``args``; returns the JSON document (also written to ``args.out``)."""
    with torch_threads(1):
        if args.work_dir is not None:
            args.work_dir.mkdir(parents=True, exist_ok=True)
            return _run(args, args.work_dir)
        with tempfile.TemporaryDirectory(prefix="quantization-bench-") as tmp:
            return _run(args, Path(tmp))


def _run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    table = QUICK_PROBLEMS if args.quick else PROBLEMS
    doc: dict[str, Any] = {
        "settings": {
            **{
                k: getattr(args, k) for k in ("problems", "evaluations", "strategy", "batch", "seed", "quick")
            },
            "cost_repeats": COST_REPEATS,
            "match_points": MATCH_POINTS,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "goals": {"gap_mean_points": GOAL_GAP_POINTS},
            "methods": {m: q.model_dump(mode="json") for m, q in METHODS.items()},
        },
        "machine": machine(),
        "problems": {},
        "not_run": {},
    }
    for name in args.problems:
        reason = task_available(table[name].task)
        if reason is not None:
            doc["not_run"][name] = reason
            continue
        try:
            doc["problems"][name] = run_problem(name, table[name], args, work_dir)
        except SupernetCollapsedError as exc:
            doc["not_run"][name] = str(exc)
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)  # one torch thread throughout
    for name, result in doc["problems"].items():
        print(format_problem(name, result, args), end="\n\n")
    for name, reason in doc["not_run"].items():
        print(f"not run: {name}: {reason}")
    print(f"wall time {doc['wall_seconds']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

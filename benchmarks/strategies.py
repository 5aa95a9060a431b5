"""Benchmark every registered search strategy against Optuna's samplers and DyNAS-T's LINAS.

Run from the repository root::

    python -m benchmarks.strategies                      # all problems, strategies and peers
    python -m benchmarks.strategies --seeds 2 --evals 20 --strategies random,tpe --peers optuna-tpe
    python -m benchmarks.strategies --quick              # smoke test

Every contender gets the same problems (``benchmarks.problems``), the same budget of evaluations and
the same seeds 0..N-1. Contenders are the strategies in ``surrogates.registry.STRATEGIES`` at run time
(driven through ``ask`` with ``--batch`` configs per call, see ``benchmarks.contenders``) and the peers:
Optuna's samplers in their own ask/tell loop (``benchmarks.peers``) and DyNAS-T's LINAS in its own
interpreter (``benchmarks.dynast_peer``). The measure is the hypervolume regret after each evaluation
(``benchmarks.hypervolume``); ``benchmarks.report`` explains the table. Writes ``strategies.json`` and
``strategies.png`` to ``--out``, and times ``ask(n=1)`` of every strategy on 100, 500 and 1000
observations.

Cost: ``botorch`` and ``linas`` ask 5 configs per call by default (``--batch-for``); at batch 1 the
GP-based ones cost ~5-10x more per seed. ``default`` asks one at a time, as the peers do: it picks
``tpe`` on the NAS-Bench-201 problems (cheap) and ``botorch`` on the continuous ones (~100-125 s per
seed there). ``--merge`` re-runs only the named contenders into an earlier ``strategies.json``
(same problems, seeds and budget): ``--strategies default,botorch --peers none --merge`` took 31 min
with 2 jobs on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import dynast_peer, peers, report
from benchmarks.cli import fill_defaults
from benchmarks.problems import PROBLEMS, get_problem
from benchmarks.tasks import PEER, STRATEGY, TIMING, Task, execute, init_worker
from surrogates.registry import STRATEGIES

ALL_PEERS = (*peers.OPTUNA_PEERS, dynast_peer.DYNAST_PEER)
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
# Model-based strategies whose ask costs seconds ask 5 configs at a time by default: at batch 1 the
# GP-based ones take ~10x longer per seed, and the default run would not fit in an hour on 2 cores.
DEFAULT_BATCH_FOR = "botorch=5,linas=5"
QUICK = {"evals": 8, "seeds": 2, "jobs": 1, "timing_sizes": "10,20"}


def _names(value: str | None, known: Sequence[str], what: str) -> list[str]:
    if value is None:
        return list(known)
    if value.strip().lower() in ("", "none"):
        return []
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; known: {list(known)}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.strategies", description=__doc__.split("\n")[0])
    p.add_argument("--problems", help=f"comma-separated, default all: {','.join(PROBLEMS)}")
    p.add_argument(
        "--strategies", help="comma-separated registered strategies (default: all registered; 'none')"
    )
    p.add_argument("--peers", help=f"comma-separated, default all: {','.join(ALL_PEERS)} ('none' for none)")
    p.add_argument("--evals", type=int, help="evaluations per run (default 50)")
    p.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 10)")
    p.add_argument(
        "--batch", type=int, default=1, help="configs per ask for the supernas strategies (default 1)"
    )
    p.add_argument(
        "--batch-for",
        default=DEFAULT_BATCH_FOR,
        help=f"per-strategy batch sizes over --batch (default {DEFAULT_BATCH_FOR!r}; '' for none)",
    )
    p.add_argument("--jobs", type=int, help="worker processes (default 2)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    p.add_argument("--timing-sizes", help="history sizes for timing ask(n=1) (default 100,500,1000; 'none')")
    p.add_argument("--quick", action="store_true", help="smoke test: 8 evals, 2 seeds, 1 job, small timings")
    p.add_argument(
        "--merge",
        action="store_true",
        help="replace only the contenders run now in --out's strategies.json (same problems, seeds, budget)",
    )
    args = p.parse_args(argv)
    fill_defaults(args, {"evals": 50, "seeds": 10, "jobs": 2, "timing_sizes": "100,500,1000"}, QUICK)
    if args.evals < 1 or args.seeds < 1 or args.jobs < 1 or args.batch < 1:
        raise SystemExit("--evals, --seeds, --jobs and --batch must be positive")
    return args


def _batches(args: argparse.Namespace, strategies: Sequence[str]) -> dict[str, int]:
    batches = dict.fromkeys(strategies, args.batch)
    for item in filter(None, (s.strip() for s in args.batch_for.split(","))):
        name, _, size = item.partition("=")
        if not size.isdigit() or int(size) < 1:
            raise SystemExit(f"--batch-for: bad entry {item!r}")
        if name in batches:
            batches[name] = int(size)
        elif args.batch_for != DEFAULT_BATCH_FOR:  # the defaults name strategies that may be absent
            raise SystemExit(f"--batch-for: {name!r} is not among the strategies run: {list(strategies)}")
    return batches


def _run_tasks(tasks: list[Task], jobs: int) -> list[dict[str, Any]]:
    tasks = sorted(tasks, key=lambda t: -t.cost_hint)
    total = sum(len(t.seeds) or 1 for t in tasks)
    results: list[dict[str, Any]] = []

    def progress(out: dict[str, Any]) -> None:
        t = out["task"]
        status = out.get("error") or (f"{out['seconds']:.1f}s" if "seconds" in out else "timed")
        where = f"{t['problem'] or 'timing'} {t['contender']} seed {t['seed']}"
        print(f"[{len(results)}/{total}] {where}: {status}", file=sys.stderr, flush=True)

    if jobs == 1:
        for task in tasks:
            for out in execute(task):
                results.append(out)
                progress(out)
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=init_worker) as pool:
        for future in as_completed([pool.submit(execute, t) for t in tasks]):
            for out in future.result():
                results.append(out)
                progress(out)
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by ``args``; returns the JSON document (also written to ``args.out``)."""
    started = time.perf_counter()
    problems = _names(args.problems, list(PROBLEMS), "problems")
    strategies = _names(args.strategies, sorted(STRATEGIES), "strategies")
    peer_names = _names(args.peers, ALL_PEERS, "peers")
    batches = _batches(args, strategies)
    seeds = list(range(args.seeds))
    bps = {name: get_problem(name, args.evals) for name in problems}

    peers_not_run: list[dict[str, Any]] = []
    dynast_python = ""
    if dynast_peer.DYNAST_PEER in peer_names:
        python, reason = dynast_peer.find_interpreter()
        if python is None:
            peers_not_run.append({"peer": dynast_peer.DYNAST_PEER, "problems": problems, "reason": reason})
        else:
            dynast_python = python
            for name in problems:
                why = dynast_peer.unsupported(bps[name])
                if why:
                    peers_not_run.append({"peer": dynast_peer.DYNAST_PEER, "problems": [name], "reason": why})
    skipped = {(r["peer"], p) for r in peers_not_run for p in r["problems"]}

    tasks = [
        Task(STRATEGY, name, problem, seed, args.evals, batch=batches[name])
        for problem in problems
        for name in strategies
        for seed in seeds
    ]
    tasks += [
        Task(PEER, name, problem, seed, args.evals)
        for problem in problems
        for name in peer_names
        if name != dynast_peer.DYNAST_PEER
        for seed in seeds
    ]
    if dynast_python:
        tasks += [
            Task(
                PEER,
                dynast_peer.DYNAST_PEER,
                problem,
                0,
                args.evals,
                seeds=tuple(seeds),
                python=dynast_python,
            )
            for problem in problems
            if (dynast_peer.DYNAST_PEER, problem) not in skipped
        ]
    sizes = tuple(int(s) for s in args.timing_sizes.split(",") if s.strip().isdigit())
    tasks += [Task(TIMING, name, sizes=sizes) for name in strategies if sizes]
    results = _run_tasks(tasks, args.jobs)
    doc = _document(
        args, problems, strategies, peer_names, batches, bps, results, peers_not_run, dynast_python
    )
    doc["wall_seconds"] = time.perf_counter() - started
    if args.merge:
        doc = merge(json.loads((args.out / "strategies.json").read_text()), doc)
    _write(doc, args.out)
    return doc


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the runs, batch sizes and timings of ``new``'s contenders replaced, and the summary
    recomputed; ``new``'s settings are kept under ``merged_runs``. Both must share evals and seeds."""
    for key in ("evals", "seeds"):
        if old["settings"][key] != new["settings"][key]:
            raise SystemExit(f"--merge: {key} differ ({old['settings'][key]} vs {new['settings'][key]})")
    missing = set(new["runs"]) - set(old["runs"])
    if missing:
        raise SystemExit(f"--merge: problems {sorted(missing)} are not in the earlier result")
    for problem, runs in new["runs"].items():
        old["runs"][problem].update(runs)
        old["seconds_per_seed"].setdefault(problem, {}).update(new["seconds_per_seed"].get(problem, {}))
        old["errors"].setdefault(problem, {}).update(new["errors"].get(problem, {}))
    old["settings"]["batch"].update(new["settings"]["batch"])
    old["timing"].update(new["timing"])
    old["strategies"] = sorted(set(old["strategies"]) | set(new["strategies"]))
    old["peers"] = [*old["peers"], *(p for p in new["peers"] if p not in old["peers"])]
    old["summary"] = report.summarise(_curves(old["runs"]), old["peers"])
    contenders = sorted({c for runs in new["runs"].values() for c in runs} | set(new["timing"]))
    merged = {"contenders": contenders, "settings": new["settings"], "wall_seconds": new["wall_seconds"]}
    old.setdefault("merged_runs", []).append(merged)
    return old


def _curves(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """problem -> contender -> regrets (seeds, evals), for the contenders with at least one run."""
    return {p: {n: np.array(r["regret"]) for n, r in by.items() if r["regret"]} for p, by in runs.items()}


def _document(
    args: argparse.Namespace,
    problems: list[str],
    strategies: list[str],
    peer_names: list[str],
    batches: dict[str, int],
    bps: dict[str, Any],
    results: list[dict[str, Any]],
    peers_not_run: list[dict[str, Any]],
    dynast_python: str,
) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {p: {} for p in problems}
    timing: dict[str, Any] = {}
    for out in sorted(
        results, key=lambda o: (o["task"]["problem"], o["task"]["contender"], o["task"]["seed"])
    ):
        t = out["task"]
        if t["kind"] == TIMING:
            timing[t["contender"]] = out.get("timing") or {"error": out.get("error")}
            continue
        run = runs[t["problem"]].setdefault(
            t["contender"],
            {
                "kind": t["kind"],
                "seeds": [],
                "regret": [],
                "final_hv": [],
                "seconds": [],
                "distinct": [],
                "errors": {},
            },
        )
        if "error" in out:
            run["errors"][str(t["seed"])] = out["error"]
            print(out.get("traceback", ""), file=sys.stderr)
            continue
        run["seeds"].append(t["seed"])
        run["regret"].append(out["regret"])
        run["final_hv"].append(out["final_hv"])
        run["seconds"].append(out["seconds"])
        run["distinct"].append(out["distinct_configs"])
    summary = report.summarise(_curves(runs), peer_names)
    seconds = {
        p: {n: float(np.mean(r["seconds"])) for n, r in runs[p].items() if r["seconds"]} for p in problems
    }
    errors = {
        p: {n: next(iter(r["errors"].values())) for n, r in runs[p].items() if r["errors"]} for p in problems
    }
    per_seed = sum(s for by_name in seconds.values() for s in by_name.values())
    settings = {
        "evals": args.evals,
        "seeds": list(range(args.seeds)),
        "jobs": args.jobs,
        "quick": args.quick,
        "batch": batches,
        "peers": {p: peers.peer_settings(p, args.evals) for p in peer_names if p in peers.OPTUNA_PEERS},
        "timing_sizes": args.timing_sizes,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if dynast_peer.DYNAST_PEER in peer_names:
        settings["peers"][dynast_peer.DYNAST_PEER] = dynast_peer.settings(args.evals, dynast_python)
    return {
        "settings": settings,
        "problems": {p: bps[p].summary() for p in problems},
        "strategies": strategies,
        "peers": peer_names,
        "peers_not_run": peers_not_run,
        "runs": runs,
        "summary": summary,
        "seconds_per_seed": seconds,
        "errors": errors,
        "projected_wall_seconds_per_seed": per_seed / args.jobs,
        "timing": timing,
    }


def _write(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "strategies.json").write_text(json.dumps(doc, indent=1))
    curves = _curves(doc["runs"])
    report.plot({p: c for p, c in curves.items() if c}, doc["peers"], out / "strategies.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(report.format_table(doc["summary"], doc["seconds_per_seed"], doc["errors"]))
    for item in doc["peers_not_run"]:
        print(f"not run: {item['peer']} on {', '.join(item['problems'])}: {item['reason']}")
    if doc["timing"]:
        print("\nseconds per ask(n=1), history of random nb201-latency configs:")
        print(report.format_timing(doc["timing"]))
    print(
        f"\nwall time {doc['wall_seconds']:.0f} s with {args.jobs} job(s); one seed of every run takes "
        f"{doc['projected_wall_seconds_per_seed']:.0f} s of wall time at these settings"
    )
    print(f"wrote {args.out / 'strategies.json'} and {args.out / 'strategies.png'}")
    return doc


if __name__ == "__main__":
    main()

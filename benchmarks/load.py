"""Load on the supernas HTTP API while a real search runs: requests/s, latency, errors, lost writes.

Run from the repository root::

    python -m benchmarks.load                                   # N = 10, 50, 200 on SQLite and PostgreSQL
    python -m benchmarks.load --clients 10 --duration-s 5 --databases sqlite

Per database (a SQLite file, or a throwaway PostgreSQL database made by ``tests/db_helpers.py``) the real
service (``python -m service.cli serve``) starts in a subprocess with bearer-token auth on
(``SUPERNAS_AUTH=true``; the admin token it prints on its first start is sent with every request),
``SUPERNAS_RAY_NUM_CPUS=2`` and ``SUPERNAS_MAX_CONCURRENT_SEARCHES=1``. One real digits search is
submitted (``--search-trials`` trials, one at a time, ASHA, ``--supernet-epochs`` of supernet training,
``--finetune-epochs`` of fine-tuning per trial); once it is ``running`` with a trial, one phase per N in
``--clients`` runs while it trains and evaluates sub-networks on Ray:

- N virtual users, each with its own ``httpx.AsyncClient`` holding one keep-alive connection, all in
  one asyncio event loop. Each loops for ``--duration-s`` seconds, sending one request at a time,
  picked at random with ``WEIGHTS``: the search list (page of 20), the search, its trials (page of
  50), Pareto front, chart points, the change feed (each user follows its own cursor), and, as the
  write, ``POST /api/v1/searches`` of a small spec with a unique name and ``Idempotency-Key``.
  Latency is the time from sending a request to having read its whole response, measured in the
  client (so it includes the client's own event-loop delays); requests/s is the requests completed
  over the phase's wall time, from the first request until the last user's last response (in-flight
  requests finish after the deadline).
- max(1, N // 10) server-sent-event readers follow ``GET .../events`` for the phase, counting the
  ``changes`` events (each data must be JSON) and reporting any stream that fails or closes early.
- An error is a non-2xx response or an exception (timeouts: ``REQUEST_TIMEOUT_S``); codes are listed.
- Write check, after the phase: every search created (ids from the 201s) must be listed by
  ``GET /api/v1/searches?q=<the phase's unique name prefix>``, and the listing must hold no more; a
  write that errored or timed out is allowed to appear (it is reported as ``extra_after_error``).
  The created searches wait ``queued`` behind the running one; they are then canceled (not measured)
  so they never run, and the benchmark checks that they ended ``canceled`` without starting.

Why one client per user: one shared ``httpx.AsyncClient`` with a pool of N connections made the client
the bottleneck at N = 200 (httpcore's pool bookkeeping: 2.5-3.4x fewer requests/s against the same
service, event-loop stalls of 4-5 s, and sporadic ``ReadError``/``RemoteProtocolError`` on kept-alive
connections that one-connection clients never showed). The client's event-loop lag is reported per
phase (``client_loop_lag_ms``) so that what remains of client-side delay is visible.

The service's log (uvicorn at level info, access log on) is scanned per phase for tracebacks, "database
is locked" and connection-pool timeouts. The client runs on the same machine as the service and its
Ray trials, so all of them share the CPUs; client and service CPU seconds are reported per phase.
Results go to ``benchmarks/results/load.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.load_client import (
    API,
    CANCEL_CONCURRENCY,
    REQUEST_TIMEOUT_S,
    WEIGHTS,
    WRITE_SPEC,
    WRITES,
    PhaseLoad,
    cancel_all,
    list_by_name,
    loop_lag,
    make_client,
    sse_reader,
    virtual_user,
)
from benchmarks.load_report import error_summary, format_table, latency_summary, phase_line, write_check
from benchmarks.load_service import (
    cancel_and_wait,
    database_url,
    machine,
    main_search_spec,
    process_cpu_s,
    running_service,
    scan_log,
    snapshot,
    submit_and_wait_running,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "load.json"
DATABASES = ("sqlite", "postgresql")


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=_int_list, default=[10, 50, 200], help="N per phase (default 10,50,200)")
    p.add_argument("--duration-s", type=float, default=15.0, help="seconds per phase (default 15)")
    p.add_argument(
        "--databases", type=_name_list, default=list(DATABASES), help="sqlite,postgresql (default both)"
    )
    p.add_argument("--search-trials", type=int, default=200, help="max_trials of the running search")
    p.add_argument("--supernet-epochs", type=int, default=2, help="supernet epochs of the running search")
    p.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning epochs per trial")
    p.add_argument(
        "--train-examples",
        type=int,
        default=None,
        help="max_train_examples of its supernet training and fine-tuning (default: all)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the users' request choices")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    args = p.parse_args(argv)
    unknown = set(args.databases) - set(DATABASES)
    if unknown or not args.databases:
        raise SystemExit(f"--databases: choose from {', '.join(DATABASES)} (got {args.databases})")
    if not args.clients or min(args.clients) < 1 or args.duration_s <= 0:
        raise SystemExit("--clients must be positive integers and --duration-s positive")
    if args.search_trials < 1 or args.supernet_epochs < 1 or args.finetune_epochs < 0:
        raise SystemExit("--search-trials and --supernet-epochs must be positive")
    return args


async def after_phase(client: httpx.AsyncClient, load: PhaseLoad) -> tuple[dict[str, Any], dict[str, Any]]:
    listed, total = await list_by_name(client, load.prefix)
    writes = write_check(load, listed, total)
    cancels = await cancel_all(client, [s["id"] for s in listed])
    final, _ = await list_by_name(client, load.prefix)
    states = Counter(s["state"] for s in final)
    cancels["final_states"] = dict(states)
    cancels["ever_started"] = sorted(s["id"] for s in final if s.get("started_at"))
    return writes, cancels


async def run_phase(
    base: str, token: str, search_id: str, clients: int, duration_s: float, prefix: str, seed: int
) -> dict[str, Any]:
    """N users and max(1, N // 10) event-stream readers for ``duration_s``, then the write check."""
    readers = max(1, clients // 10)
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(make_client(base, token, CANCEL_CONCURRENCY))
        users = [await stack.enter_async_context(make_client(base, token, 1)) for _ in range(clients)]
        streams = [await stack.enter_async_context(make_client(base, token, 1)) for _ in range(readers)]
        start_cursor = (await client.get(f"{API}/{search_id}/changes")).raise_for_status().json()["cursor"]
        before = snapshot((await client.get(f"{API}/{search_id}")).raise_for_status().json())
        load = PhaseLoad(search_id, prefix, start_cursor)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        sse_tasks = [asyncio.create_task(sse_reader(c, search_id, deadline)) for c in streams]
        done = asyncio.Event()
        lag_task = asyncio.create_task(loop_lag(done))
        sent = await asyncio.gather(*(virtual_user(c, load, u, seed, deadline) for u, c in enumerate(users)))
        elapsed = time.perf_counter() - wall_start
        done.set()
        lags_ms = np.array(await lag_task) * 1000
        client_cpu = time.process_time() - cpu_start
        sse = await asyncio.gather(*sse_tasks)
        after = snapshot((await client.get(f"{API}/{search_id}")).raise_for_status().json())
        writes, cancels = await after_phase(client, load)
    reads = [s for s in load.samples if s.kind not in WRITES]
    kinds = {kind: latency_summary([s for s in load.samples if s.kind == kind]) for kind in WEIGHTS}
    return {
        "clients": clients,
        "sse_readers": readers,
        "duration_s": duration_s,
        "wall_s": elapsed,
        "requests": len(load.samples),
        "requests_sent": sum(sent),
        "requests_per_s": len(load.samples) / elapsed,
        "latency": latency_summary(load.samples),
        "read": latency_summary(reads),
        "write": latency_summary([s for s in load.samples if s.kind in WRITES]),
        "by_endpoint": kinds,
        "errors": error_summary(load),
        "sse": {
            "events": sum((r.events for r in sse), Counter()).total(),
            "by_event": dict(sum((r.events for r in sse), Counter())),
            "keep_alives": sum(r.keep_alives for r in sse),
            "per_reader": [r.events.total() for r in sse],
            "first_event_s_max": max((r.first_event_s or 0.0 for r in sse), default=0.0),
            "readers_without_events": sum(1 for r in sse if not r.events),
            "errored": any(r.errors for r in sse),
            "errors": [e for r in sse for e in r.errors],
        },
        "writes": writes,
        "cancel": cancels,
        "search_before": before,
        "search_after": after,
        "client_cpu_s": client_cpu,
        "client_loop_lag_ms": {
            "p50": float(np.percentile(lags_ms, 50)) if lags_ms.size else 0.0,
            "p99": float(np.percentile(lags_ms, 99)) if lags_ms.size else 0.0,
            "max": float(lags_ms.max()) if lags_ms.size else 0.0,
        },
    }


# ----------------------------------------------------------------------------------------------- run


def run_database(args: argparse.Namespace, kind: str, work_dir: Path, tag: str) -> dict[str, Any]:
    """Start the service on ``kind``, start the real search, run every phase; the database's results."""
    data_dir = work_dir / kind
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with database_url(kind, data_dir) as url, running_service(data_dir, url) as service:
        healthy_s = time.perf_counter() - started
        token = service.admin_token()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=service.url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
            unauthorized = httpx.get(f"{service.url}{API}", timeout=REQUEST_TIMEOUT_S).status_code
            spec = main_search_spec(
                args.search_trials, args.supernet_epochs, args.finetune_epochs, args.train_examples
            )
            search = submit_and_wait_running(client, spec, service)
            ready_s = time.perf_counter() - started
            print(
                f"[{kind}] search {search['id']} running after {ready_s:.0f} s", file=sys.stderr, flush=True
            )
            phases = []
            for n in args.clients:
                log_offset = service.log_path.stat().st_size
                cpu_before = process_cpu_s(service.process.pid)
                prefix = f"load-{tag}-{kind}-n{n}-"
                phase = asyncio.run(
                    run_phase(service.url, token, search["id"], n, args.duration_s, prefix, args.seed)
                )
                cpu_after = process_cpu_s(service.process.pid)
                with service.log_path.open("rb") as log:
                    log.seek(log_offset)
                    phase["service_log"] = scan_log(log.read().decode(errors="replace"))
                phase["service_cpu_s"] = (
                    None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
                )
                phase["database"] = kind
                phases.append(phase)
                print(f"[{kind}] {phase_line(phase)}", file=sys.stderr, flush=True)
            final_state = cancel_and_wait(client, search["id"])
    return {
        "database": kind,
        "unauthenticated_list_status": unauthorized,
        "search_id": search["id"],
        "service_start_s": healthy_s,
        "search_ready_s": ready_s,
        "search_final_state": final_state,
        "search_ran_throughout": all(p["search_after"]["state"] == "running" for p in phases),
        "phases": phases,
        "wall_s": time.perf_counter() - started,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every database, every phase; returns the JSON document (also written to ``args.out``)."""
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "settings": {
            "clients": args.clients,
            "duration_s": args.duration_s,
            "databases": args.databases,
            "weights": WEIGHTS,
            "search": main_search_spec(
                args.search_trials, args.supernet_epochs, args.finetune_epochs, args.train_examples
            ),
            "write_spec": WRITE_SPEC,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "seed": args.seed,
            "auth": True,
            "service_env": {"SUPERNAS_RAY_NUM_CPUS": 2, "SUPERNAS_MAX_CONCURRENT_SEARCHES": 1},
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "machine": machine(args.databases),
    }
    tag = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="supernas-load-") as tmp:
        doc["databases"] = [run_database(args, kind, Path(tmp), tag) for kind in args.databases]
    doc["rows"] = [phase for database in doc["databases"] for phase in database["phases"]]
    doc["machine"]["load_average_end"] = list(os.getloadavg())
    doc["wall_s"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    print(f"wall time {doc['wall_s']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

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
import importlib.metadata
import json
import os
import platform
import random
import re
import secrets
import ssl
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.launcher import ServerProcess
from service.launcher import running_service as launch_service

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "load.json"
API = "/api/v1/searches"
DATABASES = ("sqlite", "postgresql")
STARTUP_TIMEOUT_S = 180.0
RUNNING_TIMEOUT_S = 300.0  # until the search runs a trial (supernet training included)
REQUEST_TIMEOUT_S = 60.0
SSE_READ_TIMEOUT_S = 40.0  # the stream sends a comment at least every 15 s
CANCEL_CONCURRENCY = 8
POLL_S = 0.5
SSL_CONTEXT = ssl.create_default_context()

# request kinds and their weights; "create" is the only write
WEIGHTS: dict[str, int] = {
    "list": 10,
    "get": 25,
    "trials": 15,
    "pareto": 10,
    "points": 10,
    "changes": 20,
    "create": 10,
}
WRITES = frozenset({"create"})
LOG_PATTERNS = {
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "database_locked": re.compile(r"database is locked", re.IGNORECASE),
    "pool_timeout": re.compile(r"QueuePool limit|TimeoutError", re.IGNORECASE),
    "error_line": re.compile(r"^(ERROR|CRITICAL)\b|\bERROR:", re.MULTILINE),
    "http_5xx": re.compile(r'" 5\d\d '),
}

OBJECTIVES = [
    {"metric": "accuracy", "direction": "maximize"},
    {"metric": "latency_ms", "direction": "minimize"},
    {"metric": "params", "direction": "minimize"},
]
SPACE = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2], "width_mult": [0.5, 1.0]}
# what the load's writes submit: valid, small, and never run (canceled while queued)
WRITE_SPEC: dict[str, Any] = {
    "task": "digits",
    "space": SPACE,
    "objectives": OBJECTIVES[:2],
    "budget": {"max_trials": 4, "max_parallel": 1, "max_duration_s": 300},
    "scheduler": {"type": "fifo"},
    "supernet": {"epochs": 1, "batch_size": 64},
    "fidelity": {"finetune_epochs": 1},
    "seed": 0,
}


def main_search_spec(
    trials: int, supernet_epochs: int, finetune_epochs: int, train_examples: int | None = None
) -> dict[str, Any]:
    """The real search that runs during the load; canceled once the phases are over."""
    subset = {} if train_examples is None else {"max_train_examples": train_examples}
    return {
        "name": "load-benchmark-search",
        "task": "digits",
        "space": SPACE,
        "objectives": OBJECTIVES,
        "budget": {"max_trials": trials, "max_parallel": 1, "max_duration_s": 1800},
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "supernet": {"epochs": supernet_epochs, "batch_size": 64} | subset,
        "fidelity": {"finetune_epochs": finetune_epochs} | subset,
        "seed": 0,
    }


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


# ------------------------------------------------------------------------------------------- service


def running_service(data_dir: Path, database_url: str) -> AbstractContextManager[ServerProcess]:
    """The real service on a free port with auth on, as the end-to-end tests start it."""
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RAY_NUM_CPUS": "2",
        "SUPERNAS_DISPATCHER_POLL_S": "0.5",
        "SUPERNAS_MAX_CONCURRENT_SEARCHES": "1",
        "SUPERNAS_AUTH": "true",
    }
    env.pop("RAY_ADDRESS", None)
    return launch_service(data_dir, env, startup_timeout_s=STARTUP_TIMEOUT_S, cwd=REPO_ROOT)


@contextmanager
def database_url(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'supernas.db'}"
        return
    tests_dir = str(REPO_ROOT / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from db_helpers import postgres_database

    with postgres_database() as url:
        yield url


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scan_log(text: str) -> dict[str, Any]:
    """Counts of worrying lines in a slice of the service log, with a few distinct examples."""
    counts = {name: len(pattern.findall(text)) for name, pattern in LOG_PATTERNS.items()}
    examples: list[str] = []
    for line in text.splitlines():
        if any(p.search(line) for name, p in LOG_PATTERNS.items() if name != "traceback"):
            short = line.strip()[:300]
            if short not in examples:
                examples.append(short)
        if len(examples) >= 8:
            break
    return {"counts": counts, "examples": examples}


# ---------------------------------------------------------------------------------------- the search


def submit_and_wait_running(
    client: httpx.Client, spec: dict[str, Any], service: ServerProcess
) -> dict[str, Any]:
    """Submit the real search; return it once it is ``running`` with at least one trial."""
    created = client.post(API, json=spec)
    created.raise_for_status()
    search_id = created.json()["id"]
    deadline = time.monotonic() + RUNNING_TIMEOUT_S
    search = created.json()
    while time.monotonic() < deadline:
        search = client.get(f"{API}/{search_id}").json()
        if search["state"] == "running" and sum(search["trial_counts"].values()) >= 1:
            return search
        if search["state"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(POLL_S)  # polling the service: nothing to wait on instead
    raise RuntimeError(
        f"search {search_id} never ran a trial: {search['state']} ({search.get('state_reason')})\n"
        f"{service.log()[-4000:]}"
    )


def cancel_and_wait(client: httpx.Client, search_id: str, timeout_s: float = 90) -> str:
    """Cancel the real search and wait until it ends; its final state."""
    client.post(f"{API}/{search_id}/cancel").raise_for_status()
    deadline = time.monotonic() + timeout_s
    state = "?"
    while time.monotonic() < deadline:
        state = client.get(f"{API}/{search_id}").json()["state"]
        if state in ("succeeded", "failed", "canceled"):
            break
        time.sleep(POLL_S)
    return state


def snapshot(search: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": search["state"],
        "trials": sum(search["trial_counts"].values()),
        "trials_done": search["progress"]["trials_done"],
    }


# ------------------------------------------------------------------------------------------ the load


@dataclass(frozen=True)
class Sample:
    kind: str
    seconds: float
    status: int | None  # None: the request raised
    error: str | None = None


@dataclass
class PhaseLoad:
    """What the users of one phase did; shared by them (one event loop, so no locks)."""

    search_id: str
    prefix: str
    start_cursor: str
    samples: list[Sample] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # id -> name, from the 201s
    unsure_names: set[str] = field(default_factory=set)  # writes that failed: may or may not exist
    unexpected_200: list[str] = field(default_factory=list)  # a new key answered as a replay
    error_examples: dict[str, str] = field(default_factory=dict)  # "kind status" -> body


def request_for(kind: str, load: PhaseLoad, cursor: str, name: str) -> tuple[str, str, dict[str, Any]]:
    """(method, path, httpx keyword arguments) of one request of ``kind``."""
    search = f"{API}/{load.search_id}"
    if kind == "list":
        return "GET", API, {"params": {"page_size": 20}}
    if kind == "get":
        return "GET", search, {}
    if kind == "trials":
        return "GET", f"{search}/trials", {"params": {"page_size": 50}}
    if kind in ("pareto", "points"):
        return "GET", f"{search}/{kind}", {}
    if kind == "changes":
        return "GET", f"{search}/changes", {"params": {"after": cursor}}
    if kind == "create":
        headers = {"Idempotency-Key": f"{name}-{secrets.token_hex(8)}"}
        return "POST", API, {"json": WRITE_SPEC | {"name": name}, "headers": headers}
    raise ValueError(f"unknown request kind {kind!r}")


async def virtual_user(
    client: httpx.AsyncClient, load: PhaseLoad, user: int, seed: int, deadline: float
) -> int:
    """One user: weighted random requests, one at a time, until ``deadline`` (loop time)."""
    rng = random.Random(seed * 1_000_003 + user)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    loop = asyncio.get_running_loop()
    cursor, sent = load.start_cursor, 0
    while loop.time() < deadline:
        kind = rng.choices(kinds, weights)[0]
        name = f"{load.prefix}u{user}-{sent}"
        method, path, kwargs = request_for(kind, load, cursor, name)
        sent += 1
        start = time.perf_counter()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            seconds = time.perf_counter() - start
            load.samples.append(Sample(kind, seconds, None, f"{type(exc).__name__}: {exc}"[:300]))
            if kind == "create":
                load.unsure_names.add(name)
            continue
        seconds = time.perf_counter() - start
        load.samples.append(Sample(kind, seconds, response.status_code))
        if not response.is_success:
            load.error_examples.setdefault(f"{kind} {response.status_code}", response.text[:500])
            if kind == "create":
                load.unsure_names.add(name)
        elif kind == "changes":
            cursor = response.json()["cursor"]
        elif kind == "create":
            body = response.json()
            if response.status_code == 201:
                load.created[body["id"]] = body["name"]
            else:
                load.unexpected_200.append(body["id"])
    return sent


@dataclass
class SseResult:
    events: Counter[str] = field(default_factory=Counter)
    keep_alives: int = 0
    first_event_s: float | None = None
    errors: list[str] = field(default_factory=list)


async def sse_reader(client: httpx.AsyncClient, search_id: str, deadline: float) -> SseResult:
    """Follow the search's event stream until ``deadline`` (loop time); a stream that fails, sends bad
    JSON or closes before the deadline without an ``end`` event is an error."""
    result = SseResult()
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=SSE_READ_TIMEOUT_S)
    start = time.perf_counter()
    try:
        async with asyncio.timeout_at(deadline):
            headers = {"Accept": "text/event-stream"}
            async with client.stream(
                "GET", f"{API}/{search_id}/events", headers=headers, timeout=timeout
            ) as r:
                if r.status_code != 200:
                    await r.aread()
                    result.errors.append(f"status {r.status_code}: {r.text[:300]}")
                    return result
                event, data = None, []
                async for line in r.aiter_lines():
                    if line.startswith(":"):
                        result.keep_alives += 1
                    elif line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data.append(line.removeprefix("data:").strip())
                    elif line == "" and event is not None:
                        _take_event(result, event, "\n".join(data), time.perf_counter() - start)
                        event, data = None, []
                if not result.events["end"]:
                    result.errors.append("stream closed before the phase ended, without an end event")
    except TimeoutError:
        pass  # the phase is over: the reader hangs up
    except httpx.HTTPError as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
    return result


def _take_event(result: SseResult, event: str, data: str, elapsed_s: float) -> None:
    result.events[event] += 1
    if result.first_event_s is None:
        result.first_event_s = elapsed_s
    try:
        body = json.loads(data)
    except json.JSONDecodeError:
        result.errors.append(f"{event} event with data that is not JSON: {data[:200]!r}")
        return
    if event == "changes" and not {"search", "trials", "cursor"} <= set(body):
        result.errors.append(f"changes event without search/trials/cursor: {sorted(body)}")


async def list_by_name(client: httpx.AsyncClient, text: str) -> tuple[list[dict[str, Any]], int | None]:
    """Every search whose name contains ``text`` (all pages), and the listing's ``total``."""
    items: list[dict[str, Any]] = []
    token, total = None, None
    while True:
        params: dict[str, Any] = {"q": text, "page_size": 500} | ({"page_token": token} if token else {})
        response = await client.get(API, params=params)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        total = page.get("total", total)
        token = page["next_page_token"]
        if not token:
            return items, total


def write_check(load: PhaseLoad, listed: list[dict[str, Any]], total: int | None) -> dict[str, Any]:
    """Compare the phase's 201s with what the name filter lists afterwards."""
    listed_ids = {s["id"]: s["name"] for s in listed}
    missing = sorted(set(load.created) - set(listed_ids))
    extra = {i: n for i, n in listed_ids.items() if i not in load.created}
    explained = sorted(i for i, n in extra.items() if n in load.unsure_names)
    unexplained = sorted(i for i, n in extra.items() if n not in load.unsure_names)
    renamed = sorted(i for i, n in load.created.items() if i in listed_ids and listed_ids[i] != n)
    mismatches = (
        [{"id": i, "problem": "created (201) but not listed"} for i in missing]
        + [{"id": i, "problem": "listed but never answered 201 or an error"} for i in unexplained]
        + [{"id": i, "problem": "listed under another name"} for i in renamed]
        + [{"id": i, "problem": "a new Idempotency-Key answered 200 (replay)"} for i in load.unexpected_200]
    )
    if total is not None and total != len(listed):
        mismatches.append({"id": None, "problem": f"listing total {total} != {len(listed)} items"})
    return {
        "name_prefix": load.prefix,
        "created_201": len(load.created),
        "failed_writes": len(load.unsure_names),
        "listed": len(listed),
        "count_matches": len(listed) == len(load.created) + len(explained),
        "extra_after_error": explained,
        "mismatch_count": len(mismatches),
        "mismatches": mismatches,
    }


async def cancel_all(client: httpx.AsyncClient, ids: Sequence[str]) -> dict[str, Any]:
    """Cancel the phase's queued searches (not measured) and check they ended canceled, never started."""
    gate = asyncio.Semaphore(CANCEL_CONCURRENCY)
    codes: Counter[str] = Counter()

    async def cancel(search_id: str) -> None:
        async with gate:
            for _ in range(3):
                try:
                    response = await client.post(f"{API}/{search_id}/cancel")
                except httpx.HTTPError as exc:
                    codes[type(exc).__name__] += 1
                    continue
                codes[str(response.status_code)] += 1
                if response.status_code != 409:  # 409: changed state meanwhile, try again
                    return

    await asyncio.gather(*(cancel(i) for i in ids))
    return {"requested": len(ids), "responses": dict(codes)}


async def after_phase(client: httpx.AsyncClient, load: PhaseLoad) -> tuple[dict[str, Any], dict[str, Any]]:
    listed, total = await list_by_name(client, load.prefix)
    writes = write_check(load, listed, total)
    cancels = await cancel_all(client, [s["id"] for s in listed])
    final, _ = await list_by_name(client, load.prefix)
    states = Counter(s["state"] for s in final)
    cancels["final_states"] = dict(states)
    cancels["ever_started"] = sorted(s["id"] for s in final if s.get("started_at"))
    return writes, cancels


def latency_summary(samples: Sequence[Sample]) -> dict[str, Any]:
    if not samples:
        return {"count": 0}
    ms = np.array([s.seconds * 1000 for s in samples])
    return {
        "count": len(samples),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def error_summary(load: PhaseLoad) -> dict[str, Any]:
    failed = [s for s in load.samples if s.status is None or not 200 <= s.status < 300]
    codes = Counter(str(s.status) if s.status is not None else "exception" for s in failed)
    exceptions = Counter(s.error.split(":")[0] for s in failed if s.error)
    by_kind = Counter(s.kind for s in failed)
    examples = dict(load.error_examples)
    for s in failed:
        if s.error and len(examples) < 20:
            examples.setdefault(f"{s.kind} exception", s.error)
    return {
        "count": len(failed),
        "status_codes": dict(codes),
        "exceptions": dict(exceptions),
        "by_kind": dict(by_kind),
        "examples": examples,
        # how long each failed request had waited: an instant failure on a reused connection is not
        # the same problem as one after a long wait
        "failed_after_ms": [round(s.seconds * 1000, 1) for s in failed[:50]],
    }


async def loop_lag(done: asyncio.Event, interval_s: float = 0.05) -> list[float]:
    """How late the client's event loop wakes from ``interval_s`` sleeps (seconds) until ``done``: the
    part of the measured latency that is the client's own CPU starvation."""
    loop = asyncio.get_running_loop()
    lags = []
    while not done.is_set():
        start = loop.time()
        await asyncio.sleep(interval_s)
        lags.append(max(0.0, loop.time() - start - interval_s))
    return lags


def make_client(base: str, token: str, connections: int) -> httpx.AsyncClient:
    """A client with its own pool of ``connections`` keep-alive connections, sending the bearer token."""
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        verify=SSL_CONTEXT,  # plain HTTP; sharing one context saves ~20 ms of CPU per client
    )


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


def postgres_version() -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    url = os.environ.get(
        "SUPERNAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # informational only
        return f"unknown ({type(exc).__name__})"
    finally:
        engine.dispose()


def machine(databases: Sequence[str]) -> dict[str, Any]:
    packages = ("fastapi", "uvicorn", "starlette", "anyio", "httpx", "sqlalchemy", "psycopg", "ray")
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: importlib.metadata.version(name) for name in packages},
    }
    if "postgresql" in databases:
        info["postgresql"] = postgres_version()
    return info


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


# ---------------------------------------------------------------------------------------- reporting


def _ms(summary: dict[str, Any], key: str) -> str:
    return f"{summary[key]:.0f}" if summary.get("count") else "-"


def _codes(errors: dict[str, Any]) -> str:
    if not errors["count"]:
        return "0"
    codes = ", ".join(f"{code}x{n}" for code, n in sorted(errors["status_codes"].items()))
    return f"{errors['count']} ({codes})"


def phase_line(p: dict[str, Any]) -> str:
    return (
        f"N={p['clients']}: {p['requests']} requests, {p['requests_per_s']:.1f}/s, "
        f"p50 {_ms(p['latency'], 'p50_ms')} ms, p99 {_ms(p['latency'], 'p99_ms')} ms, "
        f"errors {_codes(p['errors'])}, SSE events {p['sse']['events']}, "
        f"writes {p['writes']['created_201']}/{p['writes']['listed']} "
        f"mismatches {p['writes']['mismatch_count']}"
    )


def format_table(doc: dict[str, Any]) -> str:
    """A markdown table (one row per database and N), then p50/p99 per endpoint."""
    lines = [
        "| database | N | requests | req/s | p50 ms | p99 ms | read p50 / p99 ms | write p50 / p99 ms "
        "| errors (codes) | SSE readers: events (errors) | writes 201 / listed (mismatches) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in doc["rows"]:
        sse = p["sse"]
        w = p["writes"]
        lines.append(
            f"| {p['database']} | {p['clients']} | {p['requests']} | {p['requests_per_s']:.1f} "
            f"| {_ms(p['latency'], 'p50_ms')} | {_ms(p['latency'], 'p99_ms')} "
            f"| {_ms(p['read'], 'p50_ms')} / {_ms(p['read'], 'p99_ms')} "
            f"| {_ms(p['write'], 'p50_ms')} / {_ms(p['write'], 'p99_ms')} "
            f"| {_codes(p['errors'])} "
            f"| {p['sse_readers']}: {sse['events']} ({'errors' if sse['errored'] else 'none'}) "
            f"| {w['created_201']} / {w['listed']} ({w['mismatch_count']}) |"
        )
    kinds = list(WEIGHTS)
    lines += ["", "| database | N | " + " | ".join(f"{k} p50 / p99 ms" for k in kinds) + " |"]
    lines.append("|---|---|" + "---|" * len(kinds))
    for p in doc["rows"]:
        cells = [
            f"{_ms(p['by_endpoint'][k], 'p50_ms')} / {_ms(p['by_endpoint'][k], 'p99_ms')}" for k in kinds
        ]
        lines.append(f"| {p['database']} | {p['clients']} | " + " | ".join(cells) + " |")
    notes = []
    for database in doc["databases"]:
        if not database["search_ran_throughout"]:
            notes.append(f"{database['database']}: the search was not running at the end of every phase")
        for p in database["phases"]:
            where = f"{p['database']} N={p['clients']}"
            found = {k: v for k, v in p["service_log"]["counts"].items() if v}
            if found:
                notes.append(f"{where}: service log {found}")
            if p["sse"]["errors"]:
                notes.append(f"{where}: SSE errors {p['sse']['errors'][:3]}")
            if p["writes"]["mismatches"]:
                notes.append(f"{where}: write mismatches {p['writes']['mismatches'][:5]}")
            if p["cancel"]["ever_started"]:
                notes.append(f"{where}: load searches that started running {p['cancel']['ever_started']}")
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    print(f"wall time {doc['wall_s']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

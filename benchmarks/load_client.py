"""The HTTP load on the supernas API: virtual users' requests, event-stream readers and the client's
event-loop lag."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/v1/searches"
REQUEST_TIMEOUT_S = 60.0
SSE_READ_TIMEOUT_S = 40.0  # the stream sends a comment at least every 15 s
CANCEL_CONCURRENCY = 8
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

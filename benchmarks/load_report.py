"""Summaries and reporting of the load benchmark: latency and error summaries, the write check,
the per-phase line and the markdown table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.load_client import WEIGHTS, PhaseLoad, Sample


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

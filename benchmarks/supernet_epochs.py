"""What supernet training epochs as a fidelity buy: the same search, through the real service, with
and without ``fidelity.supernet_epochs``.

Run from the repository root::

    python -m benchmarks.supernet_epochs                          # examples/digits-supernet-epochs.yaml
    python -m benchmarks.supernet_epochs --seeds 0,1,2 --spec FILE

For each seed the service (``supernas serve``, SQLite, 2 Ray CPUs, as the end-to-end tests start it)
runs two searches, one at a time, each on a fresh supernet:

- ``early epochs``: the spec as it is. Its trials start once the first listed supernet epoch is
  trained and run while the supernet trains on (one CPU each);
- ``trained first``: the same spec without ``fidelity.supernet_epochs``. The supernet trains first
  (on both CPUs), then the trials run.

Reported per search, from the service's own timestamps: seconds from the start to the first trial
report, the supernet's training seconds, seconds to the end, the reports all trials made, and the
best validation accuracy (and its trial's test accuracy from the model manifest) among the succeeded
trials. Results: ``benchmarks/results/supernet_epochs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from benchmarks.supernet_ranking import machine
from service.launcher import running_service

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO_ROOT / "examples" / "digits-supernet-epochs.yaml"
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "supernet_epochs.json"
VARIANTS = ("early epochs", "trained first")
ENDED = {"succeeded", "failed", "canceled"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.supernet_epochs", description=__doc__.split("\n")[0]
    )
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="a spec with fidelity.supernet_epochs")
    p.add_argument("--seeds", default="0", help="comma-separated spec seeds (default 0)")
    p.add_argument("--timeout-s", type=float, default=1800, help="per search (default 1800)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    return args


def variant_spec(spec: dict[str, Any], variant: str, seed: int) -> dict[str, Any]:
    fidelity = dict(spec.get("fidelity", {}))
    if not fidelity.get("supernet_epochs"):
        raise SystemExit("the spec lists no fidelity.supernet_epochs")
    if variant == "trained first":
        fidelity.pop("supernet_epochs")
    return spec | {
        "name": f"{spec['name']}-{variant.replace(' ', '-')}-{seed}",
        "fidelity": fidelity,
        "seed": seed,
    }


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def run_search(client: httpx.Client, spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Submit ``spec``, wait for it to end; its timings, effort and best result."""
    created = client.post("/api/v1/searches", json=spec)
    created.raise_for_status()
    search_id = created.json()["id"]
    deadline = time.monotonic() + timeout_s
    while (search := client.get(f"/api/v1/searches/{search_id}").json())["state"] not in ENDED:
        if time.monotonic() > deadline:
            raise SystemExit(f"search {search_id} did not end within {timeout_s} s: {search}")
        time.sleep(1.0)
    listing = client.get(f"/api/v1/searches/{search_id}/trials", params={"page_size": 500}).json()["items"]
    trials = [client.get(f"/api/v1/searches/{search_id}/trials/{t['number']}").json() for t in listing]
    supernet = client.get(f"/api/v1/supernets/{search['supernet_id']}").json()
    started = search["started_at"]
    reports = [r for t in trials for r in t["reports"]]
    succeeded = [t for t in trials if t["state"] == "succeeded"]
    best = max(succeeded, key=lambda t: t["metrics"]["accuracy"], default=None)
    test_accuracy = None
    if best is not None:
        manifest = client.get(
            f"/api/v1/searches/{search_id}/trials/{best['number']}/model", params={"format": "manifest"}
        ).json()
        test_accuracy = manifest["test_accuracy"]
    return {
        "search_id": search_id,
        "state": search["state"],
        "state_reason": search["state_reason"],
        "first_report_s": min((_seconds(r["created_at"], started) for r in reports), default=None),
        "supernet_s": _seconds(supernet["finished_at"], started),
        "total_s": _seconds(search["finished_at"], started),
        "trials": len(trials),
        "succeeded": len(succeeded),
        "reports": len(reports),
        "reports_before_supernet": sum(r["created_at"] < supernet["finished_at"] for r in reports),
        "best_val_accuracy": None if best is None else best["metrics"]["accuracy"],
        "best_test_accuracy": test_accuracy,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = yaml.safe_load(args.spec.read_text())
    doc: dict[str, Any] = {
        "settings": {
            "spec": str(
                args.spec.relative_to(REPO_ROOT) if args.spec.is_relative_to(REPO_ROOT) else args.spec
            ),
            "seeds": args.seeds,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "machine": machine(),
        "runs": {v: [] for v in VARIANTS},
    }
    with tempfile.TemporaryDirectory(prefix="supernet-epochs-") as tmp:
        env = os.environ | {
            "SUPERNAS_DATABASE_URL": f"sqlite:///{tmp}/supernas.db",
            "SUPERNAS_RAY_NUM_CPUS": "2",
            "SUPERNAS_DISPATCHER_POLL_S": "0.5",
            "SUPERNAS_MAX_CONCURRENT_SEARCHES": "1",
            "SUPERNAS_AUTH": "false",
        }
        env.pop("RAY_ADDRESS", None)
        with running_service(Path(tmp), env, cwd=REPO_ROOT) as server:
            client = httpx.Client(base_url=server.url, timeout=60)
            for seed in args.seeds:
                for variant in VARIANTS:  # interleaved, so drifts of the machine hit both alike
                    result = run_search(client, variant_spec(spec, variant, seed), args.timeout_s)
                    doc["runs"][variant].append({"seed": seed, **result})
                    _log(f"seed {seed} {variant}: {json.dumps(result)}")
    doc["summary"] = {v: summarise(runs) for v, runs in doc["runs"].items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def summarise(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = ("first_report_s", "supernet_s", "total_s", "reports", "best_val_accuracy", "best_test_accuracy")
    summary: dict[str, float | None] = {}
    for key in keys:
        values = [r[key] for r in runs if r[key] is not None]
        summary[key] = float(np.mean(values)) if values else None
    return summary


def format_table(doc: dict[str, Any]) -> str:
    lines = [
        f"{'variant':<14} {'first report s':>14} {'supernet s':>10} {'total s':>8} {'reports':>7} "
        f"{'best val':>8} {'its test':>8}"
    ]
    for variant, s in doc["summary"].items():
        cells = [
            _fmt(s[k], f) for k, f in (("first_report_s", ".0f"), ("supernet_s", ".0f"), ("total_s", ".0f"))
        ]
        lines.append(
            f"{variant:<14} {cells[0]:>14} {cells[1]:>10} {cells[2]:>8} {_fmt(s['reports'], '.1f'):>7} "
            f"{_fmt(s['best_val_accuracy'], '.4f'):>8} {_fmt(s['best_test_accuracy'], '.4f'):>8}"
        )
    early, first = doc["summary"]["early epochs"], doc["summary"]["trained first"]
    if early["total_s"] and first["total_s"]:
        lines.append(f"total time, early epochs / trained first: {early['total_s'] / first['total_s']:.2f}")
    return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    print(f"wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

"""Plain-text tables the CLI prints (Pareto fronts, trials, search status)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "-".join(str(v) for v in value)
    return "" if value is None else str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])


def _config_text(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in config.items())


def trials_table(trials: list[dict[str, Any]], metrics: list[str]) -> str:
    headers = ["trial", "state", "fidelity", *metrics, "config"]
    rows = [
        [
            t["number"],
            t["state"],
            t["fidelity"],
            *[t["metrics"].get(m) for m in metrics],
            _config_text(t["config"]),
        ]
        for t in trials
    ]
    return table(headers, rows)


def status_line(search: dict[str, Any]) -> str:
    counts = search["trial_counts"]
    done = sum(counts.get(s, 0) for s in ("succeeded", "pruned", "failed", "infeasible"))
    budget = search["spec"]["budget"]["max_trials"]
    best = ", ".join(f"{m}={v['value']:.4g} (#{v['trial_number']})" for m, v in search["best"].items())
    outcomes = ", ".join(
        f"{counts[s]} {s}" for s in ("succeeded", "pruned", "failed", "infeasible") if counts.get(s)
    )
    outcomes = f" ({outcomes})" if outcomes else ""
    best = f" | best {best}" if best else ""
    paused = f", {counts['paused']} paused" if counts.get("paused") else ""
    return (
        f"[{search['state']}] {done}/{budget} trials done{outcomes}, {counts.get('running', 0)} running"
        f"{paused}{best} | {search['state_reason'] or ''}"
    )

"""How a trial's last report translates into its final state (shared by the trainable, the searcher,
the callbacks and the dispatcher)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces.spec import SearchSpec
from supernas.objectives import COST_METRICS, Metric
from supernas.records import TrialReport
from supernas.states import TrialState

# Every metric a strategy may optimise, the thread count the latencies were measured with, a
# quantized trial's fake-quantized accuracy estimate (its real accuracy is ``accuracy``), and the
# supernet epoch whose weights the step inherited (with ``fidelity.supernet_epochs``).
METRIC_KEYS = (*(m.value for m in Metric), "latency_threads", "fake_quant_accuracy", "supernet_epoch")


def observed_metrics(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in METRIC_KEYS if k in result}


def observed_state(result: dict[str, Any], max_fidelity: int) -> TrialState:
    """``infeasible`` if a constraint failed, ``succeeded`` at the last rung, else ``pruned``."""
    if result.get("infeasible"):
        return TrialState.INFEASIBLE
    fidelity = result.get("fidelity")
    if fidelity is not None and fidelity >= max_fidelity and result.get("artifact_dir"):
        return TrialState.SUCCEEDED
    return TrialState.PRUNED


def constraint_violations(spec: SearchSpec, metrics: dict[str, Any]) -> str | None:
    """Why ``metrics`` break the spec's constraints (those it names), or None."""
    reasons = [r for c in spec.constraints if (r := c.violation(metrics)) is not None]
    return "; ".join(reasons) or None


def known_at(spec: SearchSpec, fidelity: float, metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics a constraint is checked on at ``fidelity``: the costs (final from the first step),
    and at the last step everything."""
    if fidelity >= spec.max_fidelity:
        return metrics
    return {k: v for k, v in metrics.items() if k in COST_METRICS}


@dataclass(frozen=True)
class EndedTrial:
    """The final state of a trial whose last report ended it."""

    state: TrialState
    reason: str
    metrics: dict[str, Any]
    model_dir: Path | None  # its exported model (``succeeded`` only)


def ended_by_last_report(
    spec: SearchSpec, reports: Sequence[TrialReport], model_dir: Path, model_file: str
) -> EndedTrial | None:
    """The outcome of a trial whose last stored report was the one that ends it, or None if it has
    more to run. The trainable ends a trial with its report at the last fidelity step (after exporting
    the model to ``model_dir``, whose ``model_file`` is written last) or with one that breaks a
    constraint, and keeps no checkpoint of either; a search that stopped (crash, shutdown, pause)
    after that report was stored but before Tune completed the trial ends it from the report."""
    if not reports:
        return None
    last = max(reports, key=lambda r: r.step)
    why = "its last report was stored, but the search stopped before the trial was completed"
    violations = constraint_violations(spec, known_at(spec, last.fidelity, last.metrics))
    if violations is not None:
        return EndedTrial(TrialState.INFEASIBLE, violations, last.metrics, None)
    if last.fidelity < spec.max_fidelity:
        return None
    if not (model_dir / model_file).is_file():
        return EndedTrial(TrialState.LOST, f"{why}, and its exported model is missing", last.metrics, None)
    return EndedTrial(TrialState.SUCCEEDED, f"{why}: finished from that report", last.metrics, model_dir)

"""How a trial's last report translates into its final state (shared by the searcher and callbacks)."""

from __future__ import annotations

from typing import Any

from supernas.objectives import Metric
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

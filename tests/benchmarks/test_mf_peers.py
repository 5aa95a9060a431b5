"""The multi-fidelity peers (other libraries' schedulers) on the simulated clock: each spends the budget,
starts recorded configs and trains every trial epoch after epoch, reproducibly for a seed.

Their libraries (the ``bench`` extra) are installed by ``benchmarks/setup_mf_peers.sh``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from benchmarks.mf_peers import PEERS
from benchmarks.mf_problems import load_problem
from surrogates.schedulers.simulation import RowSampler, Trace, simulate

WORKERS, BUDGET = 4, 3 * 30
# hpbandster 0.7.4 calls ConfigSpace 1.x's deprecated accessors
pytestmark = pytest.mark.filterwarnings("ignore:Please use:DeprecationWarning")


@pytest.fixture(scope="module")
def problem():
    return load_problem("branin-mf")


def _run(problem, peer: str, seed: int = 0) -> tuple[Any, Trace]:
    policy = PEERS[peer](problem, seed)
    table = problem.table
    trace = simulate(policy, table, RowSampler(table), seed_index=0, workers=WORKERS, max_epochs=BUDGET)
    return policy, trace


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peer_spends_the_budget_reproducibly(problem, peer: str) -> None:
    policy, trace = _run(problem, peer)
    assert trace.epochs_used == BUDGET

    epochs: dict[int, list[int]] = defaultdict(list)
    rows: dict[int, set[int]] = defaultdict(set)
    for trial, row, epoch in zip(trace.trial, trace.row, trace.epoch, strict=True):
        epochs[trial].append(epoch)
        rows[trial].add(row)
    for trial, seen in epochs.items():
        assert seen == list(range(1, len(seen) + 1)), f"trial {trial} trained epochs {seen}"
        assert len(rows[trial]) == 1
    if peer == "random-full":
        # four workers start four full trainings at once; together they use the 90 epochs
        assert len(epochs) == WORKERS
    else:
        assert len(epochs) > 3
    started = [next(iter(rows[t])) for t in sorted(rows)]
    if peer == "smac-hyperband":
        # SMAC runs a config it promotes again from scratch at the larger budget: a row repeats only so
        budgets: dict[int, list[float]] = defaultdict(list)
        for trial, row in enumerate(started):
            budgets[row].append(policy.jobs[trial].budget)
        assert any(len(b) > 1 for b in budgets.values())
        assert all(b == sorted(set(b)) for b in budgets.values())
    else:
        assert len(set(started)) == len(started), "a recorded config was started twice"

    _, again = _run(problem, peer)
    for name in ("trial", "row", "epoch", "time"):
        assert getattr(again, name) == getattr(trace, name), f"{name} differs for the same seed"
    np.testing.assert_array_equal(np.array(again.values), np.array(trace.values))

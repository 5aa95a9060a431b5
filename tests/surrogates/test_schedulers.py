"""Contract of the multi-fidelity schedulers, run on the simulated clock against synthetic curves,
and the promotion rules, proposals and freeze-thaw choices each scheduler adds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from search_spaces.params import Float, ParamSpace
from supernas.objectives import Direction
from surrogates.schedulers import freeze_thaw
from surrogates.schedulers.base import Action, SchedulerSettings, SchedulingProblem
from surrogates.schedulers.freeze_thaw import SHORTLIST, FreezeThawScheduler, fuse
from surrogates.schedulers.ranking import (
    hypervolume_contributions,
    pareto_ranks,
    passes_multi,
    passes_single,
)
from surrogates.schedulers.registry import SCHEDULERS, make_scheduler
from surrogates.schedulers.simulation import CurveTable, RowSampler, SchedulerPolicy, simulate

EPOCHS = 9
SPACE = ParamSpace([Float("a", 0, 1), Float("b", 0, 1)])


def _table(n: int = 60, objectives: int = 1, seed: int = 0) -> CurveTable:
    """Saturating loss curves whose final value and speed depend on the config; epochs of 1 to 2 s."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 2))
    final = 0.2 + (x[:, 0] - 0.3) ** 2 + 0.5 * (x[:, 1] - 0.6) ** 2  # (n,)
    epochs = np.arange(1, EPOCHS + 1)
    decay = np.exp(-(0.2 + x[:, 1])[:, None, None] * epochs)  # (n, 1, E)
    loss = (
        final[:, None, None] + (1.5 - final[:, None, None]) * decay + 0.01 * rng.normal(size=(n, 2, EPOCHS))
    )
    values = [loss]
    if objectives == 2:
        values.append(np.broadcast_to((1 - x[:, 0])[:, None, None], loss.shape))  # a cost, fixed per config
    seconds = np.broadcast_to(1 + x[:, :1, None], (n, 2, EPOCHS))
    configs = [{"a": float(a), "b": float(b)} for a, b in x]
    metrics = ("val_loss", "size")[:objectives]
    return CurveTable(configs, np.stack(values, axis=-1), np.ascontiguousarray(seconds), metrics)


def _run(
    name: str, table: CurveTable, budget: int, seed: int = 0, **settings: Any
) -> tuple[Any, SchedulerPolicy]:
    sampler = RowSampler(table)
    problem = SchedulingProblem(
        table.metrics, (Direction.MINIMIZE,) * len(table.metrics), EPOCHS, 1, SPACE, sampler
    )
    scheduler = make_scheduler(name, problem, SchedulerSettings(**({"candidates": 32} | settings)), seed)
    policy = SchedulerPolicy(scheduler, sampler, seed)
    return simulate(policy, table, sampler, 0, workers=3, max_epochs=budget), policy


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_spends_the_budget_and_explains_each_decision(name: str) -> None:
    table = _table()
    trace, policy = _run(name, table, budget=4 * EPOCHS)
    assert trace.epochs_used == 4 * EPOCHS
    assert len(set(trace.trial)) > 4  # cheaper than four full trials: it tried more configs
    by_trial: dict[int, list[int]] = {}
    for trial, epoch in zip(trace.trial, trace.epoch, strict=True):
        by_trial.setdefault(trial, []).append(epoch)
    assert all(epochs == list(range(1, len(epochs) + 1)) for epochs in by_trial.values())
    assert policy.decisions and all(d["reason"] and d["action"] in set(Action) for d in policy.decisions)
    assert np.all(np.diff(trace.time) >= 0)
    again, _ = _run(name, table, budget=4 * EPOCHS)
    assert again.trial == trace.trial and again.epoch == trace.epoch  # reproducible from the seed


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_handles_two_objectives(name: str) -> None:
    trace, policy = _run(name, _table(objectives=2), budget=3 * EPOCHS)
    assert trace.epochs_used == 3 * EPOCHS and trace.values[0].shape == (2,)
    assert policy.decisions


def test_asha_stops_the_worse_half_at_each_rung() -> None:
    _, policy = _run("asha", _table(), budget=10 * EPOCHS, reduction_factor=3)
    stops = [d for d in policy.decisions if d["action"] == "stop" and "rung" in d]
    promotions = [d for d in policy.decisions if d["action"] == "promote"]
    assert stops and promotions
    assert len(stops) > len(promotions)  # eta 3: about two of three trials stop at a rung
    assert {d["fidelity"] for d in promotions} <= {1, 3, 9}  # rungs at 1, 3, 9 steps


def test_hyperband_spreads_trials_over_brackets() -> None:
    _, policy = _run("hyperband", _table(), budget=12 * EPOCHS, brackets=3, reduction_factor=3)
    scheduler = policy.scheduler
    assert [b.milestones[0] for b in scheduler.brackets] == [1, 3, 9]
    assert len(set(scheduler._bracket_of.values())) >= 2


def test_single_objective_rule_is_the_percentile_cutoff() -> None:
    assert passes_single(np.array([]), 5.0, 2.0)
    assert passes_single(np.array([1.0, 2.0, 3.0]), 1.5, 2.0)
    assert not passes_single(np.array([1.0, 2.0, 3.0]), 2.5, 2.0)
    assert not passes_single(np.array([1.0]), float("inf"), 2.0)


def order_multi(costs: np.ndarray) -> np.ndarray:
    """The reference ordering MO-ASHA follows: every row (N, M) from best to worst, by front, then by
    hypervolume contribution within each front."""
    ranks = pareto_ranks(costs)
    tiebreak = np.zeros(len(costs))
    for level in np.unique(ranks[ranks < len(costs)]):
        members = np.flatnonzero(ranks == level)
        if members.size > 1:
            tiebreak[members] = -hypervolume_contributions(costs[members])
    return np.lexsort((tiebreak, ranks))


def test_multi_objective_rule_ranks_by_front_then_hypervolume_contribution() -> None:
    front = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert not passes_multi(front, np.array([0.9, 0.9]), 2.0)[0]  # dominated by (0.5, 0.5)
    assert passes_multi(front, np.array([0.2, 0.2]), 2.0)[0]  # dominates the middle of the front
    order = order_multi(np.array([[0.0, 1.0], [0.45, 0.45], [0.5, 0.5], [1.0, 0.0], [2.0, 2.0]]))
    assert order[0] == 1 and order[-1] == 4  # the knee contributes most; the dominated one is last
    assert not passes_multi(front, np.array([np.nan, 0.0]), 2.0)[0]


def test_freeze_thaw_resumes_the_trial_whose_curve_is_best() -> None:
    problem = SchedulingProblem(("val_loss",), (Direction.MINIMIZE,), EPOCHS, 1, SPACE)
    scheduler = FreezeThawScheduler(problem, SchedulerSettings(step=1), seed=0)
    for trial in range(6):
        scheduler.add_trial(trial, {"a": trial / 5, "b": 0.5})
        good = trial == 3
        for epoch in (1, 2, 3):
            decision = scheduler.report(trial, epoch, {"val_loss": (0.2 if good else 1.0) + 0.5 / epoch})
            assert decision.action is Action.PAUSE and decision.trial == trial
    picks = [scheduler.next_step(list(range(6)), None) for _ in range(5)]
    assert all(p is not None and p.action is Action.RESUME for p in picks)
    assert sum(p.trial == 3 for p in picks if p is not None) >= 4
    record = picks[0].record()
    assert record["predicted"]["std"] > 0 and 0 <= record["acquisition"] <= 1


def test_freeze_thaw_exploits_the_best_predicted_final_value_in_a_share_of_its_decisions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One decision in ten resumes the paused trial predicted best at the last epoch, so that a good
    trial is trained to the end instead of many being trained halfway."""
    problem = SchedulingProblem(("val_loss",), (Direction.MINIMIZE,), EPOCHS, 1, SPACE)
    scheduler = FreezeThawScheduler(problem, SchedulerSettings(step=1), seed=0)
    _paused_trials(scheduler, 6)  # trial 0 has the lowest loss at every epoch
    decisions = [scheduler.next_step(list(range(6)), {"a": 0.5, "b": 0.5}) for _ in range(40)]
    exploiting = [d for d in decisions if d is not None and "exploitation" in d.reason]
    assert 1 <= len(exploiting) <= 12  # EXPLOIT = 0.1 of 40 decisions
    for decision in exploiting:
        assert decision.action is Action.RESUME and decision.trial == 0
        assert decision.predicted is not None and decision.predicted.fidelity == EPOCHS
    monkeypatch.setattr(freeze_thaw, "EXPLOIT", 0.0)
    decisions = [scheduler.next_step(list(range(6)), {"a": 0.5, "b": 0.5}) for _ in range(20)]
    assert not any(d is not None and "exploitation" in d.reason for d in decisions)


def test_fuse_weights_each_expert_by_its_precision() -> None:
    mean, std = fuse(np.array([0.0, 0.0]), np.array([1.0, 0.1]), np.array([2.0, 2.0]), np.array([1.0, 1.0]))
    assert mean[0] == pytest.approx(1.0) and std[0] == pytest.approx(1 / np.sqrt(2))
    assert mean[1] == pytest.approx(2.0 / 101) and std[1] == pytest.approx(np.sqrt(1 / 101))


def _paused_trials(scheduler: FreezeThawScheduler, count: int) -> None:
    for trial in range(count):
        scheduler.add_trial(trial, {"a": trial / 5, "b": 0.5})
        for epoch in (1, 2):
            scheduler.report(trial, epoch, {"val_loss": 0.4 + trial / 10 + 0.5 / epoch})


def _pfn_alone(scheduler: FreezeThawScheduler, trials: int, trial: int, epoch: int) -> tuple[float, float]:
    """The PFN's own prediction (mean, std) of ``trial``'s value at ``epoch``, as freeze_thaw asks it."""
    encoded = np.vstack([SPACE.encode(scheduler.trials[t].config) for t in range(trials)])
    curves = [[-(0.4 + t / 10 + 0.5 / e) for e in (1, 2)] for t in range(trials)]
    predictive = scheduler.predictor.predict_curves(encoded, curves, EPOCHS, [(trial, epoch)], seed=0)
    return float(predictive.mean()[0, 0]), float(predictive.std()[0, 0])


@pytest.mark.parametrize("trials", [2, 5])
def test_freeze_thaw_fuses_the_pfn_with_the_gp_once_three_trials_reported(trials: int) -> None:
    """With fewer than 3 trials the decision is the PFN's prediction; then the GP's is fused in, which
    narrows it (a product of experts is surer than either)."""
    problem = SchedulingProblem(("val_loss",), (Direction.MINIMIZE,), EPOCHS, 1, SPACE)
    scheduler = FreezeThawScheduler(problem, SchedulerSettings(step=1), seed=0)
    _paused_trials(scheduler, trials)
    decision = scheduler.next_step(list(range(trials)), None)
    assert decision is not None and decision.action is Action.RESUME and decision.predicted is not None
    epoch = decision.predicted.fidelity  # min_fidelity 1: the fidelity is the epoch
    pfn_mean, pfn_std = _pfn_alone(scheduler, trials, decision.trial, epoch)
    if trials < 3:
        assert decision.predicted.mean == pytest.approx(-pfn_mean, rel=1e-4)
        assert decision.predicted.std == pytest.approx(pfn_std, rel=1e-4)
    else:
        assert 0 < decision.predicted.std < pfn_std
        assert decision.predicted.mean != pytest.approx(-pfn_mean)


def test_freeze_thaw_runs_each_resumed_trial_for_its_step() -> None:
    trace, policy = _run("freeze_thaw", _table(), budget=5 * EPOCHS, step=3)
    pauses = [d["fidelity"] for d in policy.decisions if d["action"] == "pause"]
    assert pauses and all(f % 3 == 0 for f in pauses)
    assert trace.resumes > 0


def test_model_based_schedulers_propose_configs_once_trials_have_reported() -> None:
    for name in ("mobster", "freeze_thaw"):
        _, policy = _run(name, _table(), budget=6 * EPOCHS)
        proposal = policy.scheduler.propose(np.random.default_rng(0))
        assert proposal is not None
        config, info = proposal
        assert "_row" in config and info["proposed_by"].startswith(name)
        assert np.isfinite(info["acquisition"])


def test_mobster_counts_running_trials_as_pending() -> None:
    table = _table()
    _, policy = _run("mobster", table, budget=5 * EPOCHS)
    scheduler = policy.scheduler
    before = scheduler.propose(np.random.default_rng(1))
    running = next(t for t in scheduler.trials if t not in scheduler.ended)
    scheduler.end_trial(running)  # one fewer pending point changes the acquisition
    after = scheduler.propose(np.random.default_rng(1))
    assert before is not None and after is not None and before[1]["acquisition"] != after[1]["acquisition"]


def test_freeze_thaw_proposes_from_the_gp_shortlist_with_running_trials_pending() -> None:
    problem = SchedulingProblem(("val_loss",), (Direction.MINIMIZE,), EPOCHS, 1, SPACE)
    settings = SchedulerSettings(step=1, candidates=64)
    scheduler = FreezeThawScheduler(problem, settings, seed=0)
    scheduler.add_trial(0, {"a": 0.1, "b": 0.5})
    scheduler.report(0, 1, {"val_loss": 1.0})  # paused
    _, info = scheduler.propose(np.random.default_rng(0))  # too few trials for the GP: all random
    assert info["proposed_by"] == "freeze_thaw: best MFPI-random of 64 random configs"
    for trial in (1, 2, 3):
        scheduler.add_trial(trial, {"a": trial / 4, "b": 0.5})
        scheduler.report(trial, 1, {"val_loss": 1.0 - trial / 10})
    assert scheduler.running() == []  # all four are paused
    _, info = scheduler.propose(np.random.default_rng(0))
    assert info["proposed_by"].endswith(
        f"the {SHORTLIST} with the GP's highest log-EI of 64 random configs, 0 running"
    )
    scheduler.next_step([0, 1, 2, 3], None)  # resumes one of them
    scheduler.add_trial(4, {"a": 0.9, "b": 0.1})  # started, no report yet
    assert len(scheduler.running()) == 2 and 4 in scheduler.running()
    _, info = scheduler.propose(np.random.default_rng(0))
    assert info["proposed_by"].endswith("2 running")
    assert np.isfinite(info["acquisition"]) and info["predicted"]["std"] > 0


def test_bad_settings_and_unknown_names_are_rejected() -> None:
    problem = SchedulingProblem(("val_loss",), (Direction.MINIMIZE,), EPOCHS, 1, SPACE)
    with pytest.raises(ValueError, match="unknown scheduler 'median'"):
        make_scheduler("median", problem, SchedulerSettings())
    with pytest.raises(ValueError, match="reduction_factor"):
        make_scheduler("asha", problem, SchedulerSettings(reduction_factor=1.0))
    with pytest.raises(ValueError, match="search space"):
        make_scheduler(
            "freeze_thaw", SchedulingProblem(("l",), (Direction.MINIMIZE,), 3), SchedulerSettings()
        )
    with pytest.raises(ValueError, match="one direction per metric"):
        SchedulingProblem(("a", "b"), (Direction.MINIMIZE,), 3)
    with pytest.raises(KeyError, match="never added"):
        make_scheduler("asha", problem, SchedulerSettings()).report(7, 1, {"val_loss": 1.0})


def test_multi_objective_rule_agrees_with_the_full_ordering() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        pool = rng.uniform(size=(int(rng.integers(2, 30)), int(rng.integers(2, 4))))  # (N, M)
        ok, _, _, kept = passes_multi(pool[:-1], pool[-1], 3.0)
        full_place = int(np.flatnonzero(order_multi(pool) == len(pool) - 1)[0])
        assert ok == (full_place < kept)

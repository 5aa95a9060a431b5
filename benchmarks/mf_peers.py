"""The peers of the multi-fidelity benchmark: other libraries' schedulers as ``Policy`` objects on the
simulated clock (``surrogates.schedulers.simulation.simulate``), each driven through the library's own
API without its runner, so that every decision (which config, continue, pause, stop) is the library's.

- ``random-full``: random search at full fidelity (uniform among the recorded configs not yet started,
  every trial trains all epochs); the baseline, no library.
- ``optuna-tpe-hyperband``: Optuna's ``TPESampler(seed)`` with ``HyperbandPruner(min_resource=1,
  max_resource=E, reduction_factor=3)`` through ask/tell: ``study.ask(distributions)`` per new trial,
  ``trial.report(value, epoch)`` and ``trial.should_prune()`` after each epoch (pruned: ``study.tell``
  with state PRUNED), ``study.tell(trial, value)`` at the last epoch.
- ``raytune-asha-random``: Ray Tune's ``ASHAScheduler(metric, mode="min", max_t=E, grace_period=1,
  reduction_factor=3)`` called as Tune's controller calls it (``on_trial_add``, ``on_trial_result``,
  ``on_trial_complete`` when it stops a trial or a trial ends), configs drawn uniformly at random from
  the space (log-uniform for log parameters).
- ``raytune-bohb``: Ray Tune's BOHB, i.e. the ``TuneBOHB`` searcher (hpbandster's KDE model) with the
  ``HyperBandForBOHB`` scheduler (max_t=E, reduction_factor=3). The scheduler calls back into Tune's
  controller (``get_trials``, ``stop_trial``, ``search_alg.searcher``), which ``RayTuneBOHB`` provides
  as the controller does: a worker that is free runs the trial the scheduler's ``choose_trial_to_run``
  picks (a paused trial to resume), else a new trial from ``searcher.suggest``; the searcher sees each
  result the scheduler did not stop, as in Tune. Trials wait paused at a rung until their bracket is
  complete, as in Tune (a synchronous scheduler: workers meanwhile start trials of the next bracket).
- ``synetune-asha``, ``synetune-bohb``: Syne Tune's ``ASHA`` (random search) and ``BOHB`` (ASHA with
  its KDE searcher) from ``syne_tune.optimizer.baselines`` (max_t=E, grace_period=1,
  reduction_factor=3), called as Syne Tune's ``Tuner`` calls them: ``suggest()``, ``on_trial_add``,
  ``on_trial_result`` -> ``SchedulerDecision``, ``on_trial_remove`` after a stop or pause,
  ``on_trial_complete`` for a trial that ends by itself; a resume suggestion resumes the paused trial.
- ``smac-hyperband``: SMAC3's ``HyperbandFacade`` (random configs, Hyperband over budgets 1..E,
  eta=3) through ask/tell: each ``ask()`` gives (config, budget) and is run from scratch for
  ``round(budget)`` epochs, then ``tell`` reports the value at that epoch and the trial stops. SMAC
  evaluates a config it promotes again at a larger budget from scratch: that is a new trial of the
  same recorded config (the only peer that starts a row twice, by design of Hyperband without
  checkpoints).

Configs: the tables hold 500 recorded configs, so a proposal of a continuous space (every peer but
``random-full``) is snapped to the nearest recorded config that this peer has not started yet
(``MFProblem.nearest_row``, Euclidean in the unit-cube encoding; once all are started, the nearest of
all, so a config repeats only then); the library is told the value under its own proposal (Syne Tune:
under the recorded config, the ``Trial`` carrying the config it runs).

Seeds: each peer is seeded by ``seed``; Ray's schedulers, hpbandster and Syne Tune's ASHA draw from
numpy's global RNG, so the constructors seed it (and ``random``): build a peer right before its run.
"""

from __future__ import annotations

import logging
import random
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.mf_problems import MFProblem
from search_spaces.params import Float, Integer, ParamSpace
from surrogates.schedulers.simulation import ROW, Policy, Verdict

Job = tuple[str, Any] | None


def _numeric(space: ParamSpace) -> list[Float | Integer]:
    params = [p for p in space.params if isinstance(p, (Float, Integer)) and p.condition is None]
    if len(params) != len(space.params):
        raise NotImplementedError("the multi-fidelity peers handle unconditional Float/Integer spaces")
    return params


def _configspace(space: ParamSpace, seed: int) -> Any:
    """The space as a ConfigSpace ``ConfigurationSpace`` (for hpbandster's BOHB and SMAC)."""
    import ConfigSpace as CS

    cs = CS.ConfigurationSpace(seed=seed)
    for p in _numeric(space):
        kind = CS.Integer if isinstance(p, Integer) else CS.Float
        cs.add(kind(p.name, (p.low, p.high), log=p.log))
    return cs


@contextmanager
def _quiet_kde() -> Iterator[None]:
    """statsmodels' KDE (in hpbandster's and Syne Tune's BOHB) warns that it will stop drawing from
    numpy's global RNG (seeded here) in 2028."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "After 0.17", FutureWarning)
        yield


def _seed_globals(seed: int) -> None:
    np.random.seed(seed)
    random.seed(seed)


class _Peer:
    """Bookkeeping shared by the peers: the rows started and the snapping of proposals to rows."""

    def __init__(self, problem: MFProblem, seed: int) -> None:
        self.problem, self.seed = problem, seed
        self.metric = problem.table.metrics[0]
        self.epochs = problem.epochs
        self.taken: set[int] = set()

    def _start(self, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        row = self.problem.nearest_row(config, self.taken)
        self.taken.add(row)
        return "start", self.problem.table.config(row)

    def _params(self, config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k != ROW}


class RandomFull(_Peer):
    def __init__(self, problem: MFProblem, seed: int) -> None:
        super().__init__(problem, seed)
        self.rng = np.random.default_rng([seed, 7])

    def next_job(self, paused: Sequence[int]) -> Job:
        free = [r for r in range(len(self.problem.table.configs)) if r not in self.taken]
        row = int(self.rng.choice(free)) if free else int(self.rng.integers(len(self.problem.table.configs)))
        self.taken.add(row)
        return "start", self.problem.table.config(row)

    def started(self, trial: int, config: dict[str, Any]) -> None:
        pass

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        return "continue"


class OptunaTPEHyperband(_Peer):
    def __init__(self, problem: MFProblem, seed: int) -> None:
        import optuna

        super().__init__(problem, seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=self.epochs, reduction_factor=3)
        self.study = optuna.create_study(
            study_name=f"optuna-tpe-hyperband-{seed}",  # the pruner's brackets hash the study's name
            direction="minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner,
        )
        d = optuna.distributions
        self.distributions = {
            p.name: (d.IntDistribution if isinstance(p, Integer) else d.FloatDistribution)(
                p.low, p.high, log=p.log
            )
            for p in _numeric(problem.space)
        }
        self.trials: dict[int, Any] = {}

    def next_job(self, paused: Sequence[int]) -> Job:
        self._asked = self.study.ask(self.distributions)
        return self._start(self._asked.params)

    def started(self, trial: int, config: dict[str, Any]) -> None:
        self.trials[trial] = self._asked

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        from optuna.trial import TrialState

        t, value = self.trials[trial], metrics[self.metric]
        t.report(value, epoch)
        if epoch >= self.epochs:
            self.study.tell(t, value)
            return "stop"
        if t.should_prune():
            self.study.tell(t, state=TrialState.PRUNED)
            return "stop"
        return "continue"


@dataclass(eq=False)
class _RayTrial:
    """What Ray Tune's schedulers read of a ``ray.tune.experiment.Trial``."""

    trial_id: str
    number: int = -1  # the simulator's trial
    status: str = "PENDING"
    is_saving: bool = False
    last_result: dict[str, Any] = field(default_factory=dict)


class RayTuneASHA(_Peer):
    def __init__(self, problem: MFProblem, seed: int) -> None:
        from ray.tune.schedulers import ASHAScheduler

        super().__init__(problem, seed)
        _seed_globals(seed)  # ASHA draws each trial's bracket with np.random
        self.scheduler = ASHAScheduler(
            metric=self.metric, mode="min", max_t=self.epochs, grace_period=1, reduction_factor=3
        )
        self.rng = np.random.default_rng([seed, 11])
        self.trials: dict[int, _RayTrial] = {}

    def next_job(self, paused: Sequence[int]) -> Job:
        return self._start(self.problem.space.sample(self.rng))

    def started(self, trial: int, config: dict[str, Any]) -> None:
        self.trials[trial] = _RayTrial(str(trial), trial, "RUNNING")
        self.scheduler.on_trial_add(None, self.trials[trial])

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        t = self.trials[trial]
        result = {"training_iteration": epoch, self.metric: metrics[self.metric]}
        decision = self.scheduler.on_trial_result(None, t, result)
        if decision == "STOP" or epoch >= self.epochs:  # Tune's stop_trial, or the trial's end
            self.scheduler.on_trial_complete(None, t, result)
            return "stop"
        return "continue"


class RayTuneBOHB(_Peer):
    def __init__(self, problem: MFProblem, seed: int) -> None:
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        super().__init__(problem, seed)
        _seed_globals(seed)  # hpbandster's KDE sampling uses np.random
        logging.getLogger("ray.tune.search.bohb").setLevel(logging.ERROR)
        self.searcher = TuneBOHB(_configspace(problem.space, seed), metric=self.metric, mode="min", seed=seed)
        self.scheduler = HyperBandForBOHB(
            metric=self.metric, mode="min", max_t=self.epochs, reduction_factor=3
        )
        self.search_alg = SimpleNamespace(searcher=self.searcher)
        self.all: list[_RayTrial] = []
        self.trials: dict[int, _RayTrial] = {}

    # --- what HyperBandForBOHB calls on Tune's controller ------------------------------------------

    def get_trials(self) -> list[_RayTrial]:
        return self.all

    def stop_trial(self, t: _RayTrial) -> None:
        """As ``TuneController.stop_trial``."""
        if t.status == "TERMINATED":
            return
        if t.status in ("PENDING", "PAUSED"):
            self.scheduler.on_trial_remove(self, t)
            self.searcher.on_trial_complete(t.trial_id)
        else:
            self.scheduler.on_trial_complete(self, t, t.last_result)
            self.searcher.on_trial_complete(t.trial_id, result=t.last_result)
        t.status = "TERMINATED"

    # --- the policy ------------------------------------------------------------------------------

    def next_job(self, paused: Sequence[int]) -> Job:
        chosen = self.scheduler.choose_trial_to_run(self)
        if chosen is not None and chosen.status == "PAUSED" and chosen.number in paused:
            chosen.status = "RUNNING"
            return "resume", chosen.number
        trial_id = f"bohb_{len(self.all)}"
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        self._new = _RayTrial(trial_id)
        self.all.append(self._new)
        self.scheduler.on_trial_add(self, self._new)
        return self._start(config)

    def started(self, trial: int, config: dict[str, Any]) -> None:
        self._new.number, self._new.status = trial, "RUNNING"
        self.trials[trial] = self._new

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        t = self.trials[trial]
        t.last_result = result = {"training_iteration": epoch, self.metric: metrics[self.metric]}
        decision = self.scheduler.on_trial_result(self, t, result)  # may add result["hyperband_info"]
        if decision != "STOP":
            with _quiet_kde():
                self.searcher.on_trial_result(t.trial_id, result)
        if decision == "PAUSE":
            t.status = "PAUSED"
            return "pause"
        if decision == "STOP" or epoch >= self.epochs:
            self.stop_trial(t)
            return "stop"
        return "continue"


class SyneTune(_Peer):
    def __init__(self, problem: MFProblem, seed: int, method: str) -> None:
        from syne_tune.config_space import lograndint, loguniform, randint, uniform
        from syne_tune.optimizer.baselines import ASHA, BOHB
        from syne_tune.optimizer.schedulers.searchers.last_value_multi_fidelity_searcher import (
            LastValueMultiFidelitySearcher,
        )

        super().__init__(problem, seed)
        _seed_globals(seed)  # ASHA draws each trial's bracket with np.random
        # it warns that its baselines pass points_to_evaluate=None twice
        logging.getLogger(LastValueMultiFidelitySearcher.__module__).setLevel(logging.ERROR)
        kinds = {(Integer, True): lograndint, (Integer, False): randint}
        kinds |= {(Float, True): loguniform, (Float, False): uniform}
        domains = {p.name: kinds[type(p), p.log](p.low, p.high) for p in _numeric(problem.space)}
        self.scheduler = {"asha": ASHA, "bohb": BOHB}[method](
            config_space=domains,
            metric=self.metric,
            time_attr="epoch",
            max_t=self.epochs,
            grace_period=1,
            reduction_factor=3,
            do_minimize=True,
            random_seed=seed,
        )
        self.trials: dict[int, Any] = {}

    def next_job(self, paused: Sequence[int]) -> Job:
        with _quiet_kde():
            suggestion = self.scheduler.suggest()
        if suggestion is None:
            return None
        if not suggestion.spawn_new_trial_id:  # a paused trial to resume
            return "resume", int(suggestion.checkpoint_trial_id)
        return self._start(suggestion.config)

    def started(self, trial: int, config: dict[str, Any]) -> None:
        from syne_tune.backend.trial_status import Trial

        self.trials[trial] = Trial(trial_id=trial, config=self._params(config), creation_time=datetime.now())
        self.scheduler.on_trial_add(self.trials[trial])

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        t = self.trials[trial]
        result = {"epoch": epoch, self.metric: metrics[self.metric]}
        with _quiet_kde():
            decision = self.scheduler.on_trial_result(t, result)
        if decision in ("STOP", "PAUSE"):
            self.scheduler.on_trial_remove(t)
            return "stop" if decision == "STOP" else "pause"
        if epoch >= self.epochs:
            with _quiet_kde():
                self.scheduler.on_trial_complete(t, result)
            return "stop"
        return "continue"


def _no_target(config: Any, seed: int = 0, budget: float = 0.0) -> float:
    raise RuntimeError("SMAC runs through ask/tell here")


class SMACHyperband(_Peer):
    def __init__(self, problem: MFProblem, seed: int) -> None:
        from smac import HyperbandFacade, Scenario

        super().__init__(problem, seed)
        self._output = tempfile.TemporaryDirectory(prefix="smac-mf-")  # SMAC insists on writing there
        scenario = Scenario(
            _configspace(problem.space, seed),
            deterministic=True,
            n_trials=10**9,  # the simulator's budget ends the run
            min_budget=1,
            max_budget=self.epochs,
            seed=seed,
            output_directory=Path(self._output.name),
        )
        self.smac = HyperbandFacade(scenario, _no_target, overwrite=True, logging_level=False)
        self.rows: dict[tuple[tuple[str, Any], ...], int] = {}  # SMAC's config -> its recorded row
        self.jobs: dict[int, Any] = {}  # simulator's trial -> SMAC's TrialInfo

    def next_job(self, paused: Sequence[int]) -> Job:
        self._asked = self.smac.ask()
        key = tuple(sorted(dict(self._asked.config).items()))
        if key not in self.rows:
            self.rows[key] = int(self._start(dict(self._asked.config))[1][ROW])
        return "start", self.problem.table.config(self.rows[key])  # from scratch, at a higher budget too

    def started(self, trial: int, config: dict[str, Any]) -> None:
        self.jobs[trial] = self._asked

    def on_epoch(self, trial: int, epoch: int, metrics: dict[str, float]) -> Verdict:
        from smac.runhistory.dataclasses import TrialValue

        info = self.jobs[trial]
        if epoch < min(max(1, round(info.budget)), self.epochs):
            return "continue"
        self.smac.tell(info, TrialValue(cost=metrics[self.metric]), save=False)
        return "stop"


PEERS: dict[str, Callable[[MFProblem, int], Policy]] = {
    "random-full": RandomFull,
    "optuna-tpe-hyperband": OptunaTPEHyperband,
    "raytune-asha-random": RayTuneASHA,
    "raytune-bohb": RayTuneBOHB,
    "synetune-asha": lambda problem, seed: SyneTune(problem, seed, "asha"),
    "synetune-bohb": lambda problem, seed: SyneTune(problem, seed, "bohb"),
    "smac-hyperband": SMACHyperband,
}

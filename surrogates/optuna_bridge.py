"""A stateless ask/tell bridge from supernas strategies to Optuna samplers.

Every ``ask`` builds a fresh in-memory ``optuna.Study`` from the history it is given, so the
strategy holds no state between calls (the search resumes from the database alone):

* a result (``succeeded`` or ``infeasible`` with finite objective and constraint metrics) becomes a
  ``COMPLETE`` trial whose values are the metrics in their own units (the study's directions come
  from the objectives); with constraints, every result also carries one constraint value per
  ``Constraint`` (its ``slack``: <= 0 feasible), stored with ``create_trial(constraints=...)``,
  i.e. Optuna 5's ``system_attrs["constraints:<key>"]``, which is what TPE, NSGA-II and GP read
  through ``FrozenTrial.constraints``. No ``constraints_func`` is passed: Optuna 5.0 deprecates it
  and only calls it from ``after_trial``, which never runs for trials added with ``add_trial``;
* a ``pruned`` observation becomes ``PRUNED``, a running or pending one ``RUNNING``, and anything
  else (failed, lost, canceled, NaN results) ``FAIL``, each with its parameters only;
* each config in ``pending`` is added as a ``RUNNING`` trial (Optuna accepts unfinished trials in
  ``add_trial``), which TPE's constant liar and GP's q-batch acquisition take into account.

Then each of the ``n`` suggestions is one ``study.ask()`` with the parameters suggested
define-by-run in ``ParamSpace`` order, inactive (conditional) ones skipped; the asked trial stays
``RUNNING`` so the next ask of the batch sees it. A suggestion that repeats a seen config is
told ``FAIL`` and asked again, a bounded number of times, before a random unseen config from
``space.sample`` stands in (added as a ``RUNNING`` trial too).

Hand-written because Optuna has no stateless ask from a plain list of results; the sampling is Optuna's.
"""

from __future__ import annotations

import logging
import warnings
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial

from search_spaces.params import Categorical, Integer, Param, ParamSpace
from supernas.objectives import Direction, is_finite_number
from supernas.records import Observation
from supernas.states import TrialState as SupernasState
from surrogates.observations import LEARNABLE_STATES, config_key, seen_keys
from surrogates.strategy import SearchProblem, Strategy, Suggestion

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

_MAX_RETRIES = 8  # sampler re-asks when a suggestion repeats a seen config
_MAX_REDRAWS = 64  # random draws in the fallback
_IN_FLIGHT = (SupernasState.RUNNING, SupernasState.PENDING)


def distribution_of(param: Param) -> BaseDistribution:
    """The Optuna distribution of one ParamSpace parameter."""
    if isinstance(param, Categorical):
        return CategoricalDistribution(param.choices)
    if isinstance(param, Integer):
        return IntDistribution(param.low, param.high, log=param.log)
    return FloatDistribution(param.low, param.high, log=param.log)


def distributions_of(space: ParamSpace) -> dict[str, BaseDistribution]:
    return {p.name: distribution_of(p) for p in space.params}


def constraint_values(problem: SearchProblem, metrics: dict[str, Any]) -> dict[str, float]:
    """Optuna constraint values of a result: each constraint's slack, <= 0 feasible."""
    return {f"c{i:02d}": float(c.slack(metrics)) for i, c in enumerate(problem.constraints)}


def is_result(problem: SearchProblem, observation: Observation) -> bool:
    """Whether an observation is a result (the same rule as ``observations.training_data``)."""
    metrics = {o.metric.value for o in problem.objectives} | {c.metric.value for c in problem.constraints}
    return observation.state in LEARNABLE_STATES and all(
        is_finite_number(observation.metrics.get(m)) for m in metrics
    )


def history_trial(
    problem: SearchProblem,
    dists: dict[str, BaseDistribution],
    observation: Observation,
    system_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """An observation as an Optuna trial (raises ValueError if its config does not fit ``dists``)."""
    params = {k: v for k, v in observation.config.items() if k in dists}
    used = {k: dists[k] for k in params}
    if is_result(problem, observation):
        values = [float(observation.metrics[o.metric.value]) for o in problem.objectives]
        constraints = constraint_values(problem, observation.metrics) if problem.constraints else None
        return create_trial(
            values=values,
            params=params,
            distributions=used,
            system_attrs=system_attrs,
            constraints=constraints,
        )
    if observation.state == SupernasState.PRUNED:
        state = TrialState.PRUNED
    elif observation.state in _IN_FLIGHT:
        state = TrialState.RUNNING
    else:
        state = TrialState.FAIL
    return create_trial(state=state, params=params, distributions=used)


def running_trial(dists: dict[str, BaseDistribution], config: dict[str, Any]) -> FrozenTrial:
    params = {k: v for k, v in config.items() if k in dists}
    return create_trial(state=TrialState.RUNNING, params=params, distributions={k: dists[k] for k in params})


def suggest_config(trial: Trial, space: ParamSpace) -> dict[str, Any]:
    """Suggest the active parameters define-by-run, in ParamSpace order."""
    config: dict[str, Any] = {}
    for p in space.params:
        if not space.is_active(p, config):
            continue
        if isinstance(p, Categorical):
            config[p.name] = trial.suggest_categorical(p.name, p.choices)
        elif isinstance(p, Integer):
            config[p.name] = trial.suggest_int(p.name, p.low, p.high, log=p.log)
        else:
            config[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return config


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's experimental-feature warnings for the duration of a call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


class OptunaStrategy(Strategy):
    """Base of the strategies that delegate to an Optuna sampler; subclasses say which one."""

    max_retries: ClassVar[int] = _MAX_RETRIES

    @abstractmethod
    def make_sampler(self, seed: int) -> BaseSampler:
        """A fresh sampler, seeded for this ask."""

    def result_system_attrs(self, index: int) -> dict[str, Any]:
        """Extra system attrs of the ``index``-th result (in trial-number order); none by default."""
        return {}

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        rng = self.rng(history, pending)
        seed = int(rng.integers(2**31 - 1))
        seen = seen_keys(history, pending)
        with quiet_optuna():
            study = self.build_study(history, pending, seed)
            return [self._suggest(study, rng, seen) for _ in range(n)]

    def build_study(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], seed: int
    ) -> optuna.Study:
        """A fresh in-memory study holding the history and the pending configs."""
        directions = [
            "maximize" if o.direction == Direction.MAXIMIZE else "minimize" for o in self.problem.objectives
        ]
        with quiet_optuna():
            study = optuna.create_study(sampler=self.make_sampler(seed), directions=directions)
        study.add_trials(self._trials(history, pending))
        return study

    def _trials(self, history: Sequence[Observation], pending: Sequence[dict[str, Any]]) -> list[FrozenTrial]:
        """The history (by trial number) then the pending configs; configs outside the space are left out."""
        dists = distributions_of(self.space)
        trials = []
        results = 0
        for observation in sorted(history, key=lambda o: o.number):
            result = is_result(self.problem, observation)
            attrs = self.result_system_attrs(results) if result else None
            try:
                trials.append(history_trial(self.problem, dists, observation, attrs))
            except ValueError as error:
                logger.debug("trial %d left out of the Optuna study: %s", observation.number, error)
                continue
            results += result
        for config in pending:
            try:
                trials.append(running_trial(dists, config))
            except ValueError as error:
                logger.debug("a pending config was left out of the Optuna study: %s", error)
        return trials

    def _must_be_new(self, seen: set[str]) -> bool:
        size = self.space.size
        return size is None or len(seen) < size

    def _suggest(self, study: optuna.Study, rng: np.random.Generator, seen: set[str]) -> Suggestion:
        """One sampler suggestion that is not a repeat, else a random unseen config."""
        sampler = type(study.sampler).__name__
        for retries in range(self.max_retries + 1):
            trial = study.ask()
            config = suggest_config(trial, self.space)
            if not self._must_be_new(seen) or config_key(config) not in seen:
                seen.add(config_key(config))
                return Suggestion(config, info={"sampler": sampler, "retries": retries})
            study.tell(trial, state=TrialState.FAIL)  # a repeat: hidden from the sampler, ask again
        config = self.space.sample(rng)
        redraws = 0
        while self._must_be_new(seen) and config_key(config) in seen and redraws < _MAX_REDRAWS:
            config = self.space.sample(rng)
            redraws += 1
        seen.add(config_key(config))
        study.add_trial(running_trial(distributions_of(self.space), config))
        info = {"sampler": sampler, "retries": self.max_retries, "fallback": "random", "redraws": redraws}
        return Suggestion(config, info=info)

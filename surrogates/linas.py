"""LINAS: predictor-guided NSGA-II, the DyNAS-T approach (Cummings et al., "A Hardware-Aware
Framework for Accelerating Neural Architecture Search Across Modalities").

Every ask, from the history alone (no state is kept between asks):

1. below ``max(8, dim + 2)`` usable observations the batch is random unseen configs;
2. cheap predictors (:class:`surrogates.predictors.EnsemblePredictor`) are fitted for every
   objective and every constraint slack, on inputs ``space.encode(config)``;
3. NSGA-II runs on *predicted* values: population 80, 30 generations, about 2,000 distinct predicted
   configs. Fitness is optimistic, ``mean + KAPPA * std`` in maximisation form (KAPPA = 0.5: a
   small bonus where the ensemble disagrees). Constraints use Deb's constraint-domination on a
   cautious slack, ``mean + FEASIBILITY_BETA * std`` (BETA = 1: where the predictors are unsure a
   config near the limit counts as infeasible): predicted-feasible configs first, by front, then the
   rest by violation. The first population holds the best observed configs and random ones. A
   space with no more configs than the loop would score is enumerated and scored instead;
4. the batch comes from every unseen, not pending config the loop scored (the final population
   and those it evicted): best front first, by crowding distance, ties by acquisition value; a
   config closer than SPREAD in every unit-cube coordinate to an earlier pick or a pending config
   is skipped while others remain, so a batch (one objective especially) is not n near-copies of
   one point. Random unseen configs fill a batch the pool cannot.

Variation works on *genotypes*, points of [0, 1]^dim whose inactive parameters keep a dormant random
value: the config is ``space.decode(genotype)``, always valid, and a parameter that becomes active
wakes with its dormant value. Crossover is uniform per parameter; mutation takes a parameter, with
probability 1 / n_params, from a freshly sampled config (half the time) or nudges it (N(0, 0.1)).

``acquisition_value``: the predicted (optimistic) additive-epsilon improvement over the observed
feasible Pareto front, in units of each objective's std, ``min_p max_m (f_m - p_m) / s_m``; above 0
the config is predicted to be dominated by no observed point; with one objective it is the
predicted gain over the best observed value.

NSGA-II is written here (a few numpy lines) because pymoo is not a dependency and Optuna's
``NSGAIISampler`` proposes one trial at a time (about 0.6 ms of bookkeeping per trial measured,
and one predictor call per config instead of one per generation) and samples parameters outside
its intersection search space independently, which loses conditional parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from search_spaces.params import ParamSpace
from supernas.objectives import Direction
from supernas.records import Observation
from surrogates.observations import TrainingData, config_key, seen_keys, sign, training_data
from surrogates.pareto import non_dominated_mask
from surrogates.predictors import EnsemblePredictor
from surrogates.strategy import Prediction, Strategy, Suggestion

Config = dict[str, Any]
KAPPA = 0.5
POPULATION = 80
GENERATIONS = 30
FEASIBILITY_BETA = 1.0  # predicted feasible: slack mean + BETA * std <= 0, a cautious margin
SPREAD = 0.1  # a batch's configs differ by >= this in some unit-cube coordinate (pending ones too)
ELITE_SHARE = 0.25  # of the first population, seeded with the best observed configs
NUDGE = 0.1  # std of a local mutation step in the unit cube
_MAX_REDRAWS = 64


def fronts(values: np.ndarray, need: int | None = None) -> np.ndarray:
    """Non-dominated front index (0 = first) of each row of ``values`` (N, M), all maximised.

    Peeling stops once ``need`` rows are ranked: the rows left share the next index.
    """
    if values.shape[1] == 1:  # one objective: fronts are the distinct values, best first
        return np.unique(-values[:, 0], return_inverse=True)[1].reshape(-1)
    rank = np.zeros(len(values), dtype=int)
    left, level = np.arange(len(values)), 0
    directions = [Direction.MAXIMIZE] * values.shape[1]
    while left.size and (need is None or len(values) - left.size < need):
        mask = non_dominated_mask(values[left], directions)
        if not mask.any():  # only non-finite rows remain
            mask[:] = True
        rank[left[mask]] = level
        left, level = left[~mask], level + 1
    rank[left] = level
    return rank


def crowding(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (F, M); boundary points get inf."""
    dist = np.zeros(len(values))
    if len(values) <= 2:
        return np.full(len(values), np.inf)
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        col = values[order, j]
        dist[order[[0, -1]]] = np.inf
        if col[-1] > col[0]:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / (col[-1] - col[0])
    return dist


def constrained_rank(
    fitness: np.ndarray, violation: np.ndarray, need: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank (lower is better) and crowding of each row under constraint-domination.

    fitness: (N, M) maximised; violation: (N,) >= 0, 0 when feasible. Fronts are peeled only until
    ``need`` rows are ranked (see ``fronts``).
    """
    rank, crowd = np.zeros(len(fitness), dtype=int), np.zeros(len(fitness))
    ok, bad = np.flatnonzero(violation <= 0), np.flatnonzero(violation > 0)
    if ok.size:
        rank[ok] = fronts(fitness[ok], need)
        crowd[ok] = np.inf  # one objective: every front is one value, so crowding says nothing
        for level in np.unique(rank[ok]) if fitness.shape[1] > 1 else ():
            members = ok[rank[ok] == level]
            crowd[members] = crowding(fitness[members])
    start = int(rank[ok].max()) + 1 if ok.size else 0
    by_violation = bad[np.argsort(violation[bad], kind="stable")]
    rank[by_violation] = start + np.arange(by_violation.size)
    return rank, crowd


def epsilon_improvement(fitness: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Additive-epsilon gain of each row of ``fitness`` (P, M) over a front ``reference`` (R, M)."""
    diff = (fitness[:, None, :] - reference[None, :, :]) / scale  # (P, R, M)
    return diff.max(axis=2).min(axis=1)  # (P,)


def spread_picks(order: np.ndarray, x: np.ndarray, avoid: np.ndarray, n: int) -> list[int]:
    """The first n indices of ``order`` whose encodings (rows of ``x``) differ by at least SPREAD in
    some coordinate from every earlier pick and every row of ``avoid``; skipped ones fill up the rest."""
    taken, picked, skipped = list(avoid), [], []
    for i in order:
        if len(picked) == n:
            break
        near = bool(taken) and float(np.abs(np.asarray(taken) - x[i]).max(axis=1).min()) < SPREAD
        (skipped if near else picked).append(int(i))
        if not near:
            taken.append(x[i])
    return picked + skipped[: n - len(picked)]


def _column_scale(values: np.ndarray) -> np.ndarray:
    sd = values.std(axis=0) if len(values) else np.ones(values.shape[1])
    return np.where(sd > 1e-12, sd, 1.0)  # (K,)


class _Scorer:
    """Predictions of configs, cached by config: the archive of every config the inner loop scored."""

    def __init__(self, space: ParamSpace, model: EnsemblePredictor, m: int, slack_scale: np.ndarray) -> None:
        self.space, self.model, self.m, self.slack_scale = space, model, m, slack_scale
        self.archive: dict[str, tuple[Config, np.ndarray, np.ndarray, np.ndarray]] = {}  # key -> x, mean, std

    def __call__(self, configs: Sequence[Config]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encodings (P, dim); predicted mean and std (P, M + C): objectives (maximised), then slacks."""
        keys = [config_key(c) for c in configs]
        new = {k: c for k, c in zip(keys, configs, strict=True) if k not in self.archive}
        if new:
            x = np.stack([self.space.encode(c) for c in new.values()])  # (Q, dim)
            mean, std = self.model.predict(x)  # (Q, M + C) each
            for i, (key, config) in enumerate(new.items()):
                self.archive[key] = (config, x[i], mean[i], std[i])
        rows = [self.archive[k] for k in keys]
        return tuple(np.stack([row[j] for row in rows]) for j in (1, 2, 3))  # type: ignore[return-value]

    def rank(
        self, configs: Sequence[Config], need: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Optimistic fitness (P, M), then constraint-domination rank and crowding (P,)."""
        _, mean, std = self(configs)
        fitness = mean[:, : self.m] + KAPPA * std[:, : self.m]
        violation = np.maximum(self.cautious_slack(mean, std) / self.slack_scale, 0.0).sum(axis=1)
        return (fitness, *constrained_rank(fitness, violation, need))

    def cautious_slack(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        return mean[:, self.m :] + FEASIBILITY_BETA * std[:, self.m :]  # (P, C)


class LinasStrategy(Strategy):
    """Predictor-guided NSGA-II (LINAS / DyNAS-T); see the module docstring."""

    name = "linas"

    def ask(self, history: Sequence[Observation], pending: Sequence[Config], n: int) -> list[Suggestion]:
        if n <= 0:
            return []
        rng = self.rng(history, pending)
        seen = seen_keys(history, pending)
        data = training_data(history, self.problem.objectives, self.problem.constraints)
        if len(data) < max(8, self.space.dim + 2):
            info = {"initial_design": True, "n_train": len(data)}
            return [Suggestion(c, info=info) for c in self._random_unseen(rng, seen, n)]
        x = np.stack([self.space.encode(c) for c in data.configs])  # (N, dim)
        model = EnsemblePredictor().fit(x, np.hstack([data.y, data.slack]), rng)
        scorer = _Scorer(self.space, model, len(self.problem.objectives), _column_scale(data.slack))
        size = max(POPULATION, 2 * n)
        if self.space.size is not None and self.space.size <= size * (GENERATIONS + 1):
            scorer(self.space.enumerate())
            generations = 0
        else:
            self._evolve(scorer, self._elites(data, size), rng, size)
            generations = GENERATIONS
        pool = [config for key, (config, *_) in scorer.archive.items() if key not in seen]
        base = {"n_train": len(data), "generations": generations, "evaluations": len(scorer.archive)}
        chosen = self._suggest(scorer, data, pool, pending, n, base)
        seen |= {config_key(s.config) for s in chosen}
        fill = self._random_unseen(rng, seen, n - len(chosen))
        return chosen + [Suggestion(c, info={**base, "random_fill": True}) for c in fill]

    # --- the batch -----------------------------------------------------------------------------

    def _suggest(
        self,
        scorer: _Scorer,
        data: TrainingData,
        pool: list[Config],
        pending: Sequence[Config],
        n: int,
        base: dict[str, Any],
    ) -> list[Suggestion]:
        """Up to n configs of ``pool``: best fronts first, by crowding distance, spread apart."""
        if not pool:
            return []
        fitness, rank, crowd = scorer.rank(pool, need=4 * n + 20)
        x, mean, std = scorer(pool)
        acquisition = epsilon_improvement(fitness, self._observed_front(data), _column_scale(data.y))  # (P,)
        avoid = np.array([self.space.encode(c) for c in pending]).reshape(-1, self.space.dim)
        picks = spread_picks(np.lexsort((-acquisition, -crowd, rank)), x, avoid, n)
        feasible = np.all(scorer.cautious_slack(mean, std) <= 0, axis=1)  # (P,)
        suggestions = []
        for i in picks:
            predictions = {
                o.metric.value: Prediction(float(sign(o) * mean[i, j]), float(std[i, j]))
                for j, o in enumerate(self.problem.objectives)
            }
            info = {**base, "predicted_front": int(rank[i]), "predicted_feasible": bool(feasible[i])}
            if self.problem.constraints:
                info["predicted_slack"] = [float(v) for v in mean[i, scorer.m :]]
            suggestions.append(Suggestion(pool[i], predictions, float(acquisition[i]), info))
        return suggestions

    def _observed_front(self, data: TrainingData) -> np.ndarray:
        """Observed Pareto front (R, M) of the feasible observations (of all, when none is)."""
        y = data.y[data.feasible] if data.feasible.any() else data.y
        return y[non_dominated_mask(y, [Direction.MAXIMIZE] * y.shape[1])]

    def _elites(self, data: TrainingData, size: int) -> list[Config]:
        """The best observed configs under constraint-domination, at most ELITE_SHARE of a population."""
        violation = np.maximum(data.slack / _column_scale(data.slack), 0.0).sum(axis=1)
        count = int(size * ELITE_SHARE)
        rank, crowd = constrained_rank(data.y, violation, need=count)
        return [data.configs[i] for i in np.lexsort((-crowd, rank))[:count]]

    def _random_unseen(self, rng: np.random.Generator, seen: set[str], k: int) -> list[Config]:
        """k random configs, redrawn while they repeat a seen one (as long as the space allows)."""
        out, size = [], self.space.size
        for _ in range(max(k, 0)):
            config = self.space.sample(rng)
            for _ in range(_MAX_REDRAWS):
                if config_key(config) not in seen or (size is not None and len(seen) >= size):
                    break
                config = self.space.sample(rng)
            seen.add(config_key(config))
            out.append(config)
        return out

    # --- NSGA-II over predictions ----------------------------------------------------------------

    def _genotype(self, config: Config, rng: np.random.Generator) -> np.ndarray:
        """A config as a point of the unit cube whose inactive coordinates are random (dormant)."""
        return np.where(self.space.active_mask(config), self.space.encode(config), rng.random(self.space.dim))

    def _evolve(self, scorer: _Scorer, elites: list[Config], rng: np.random.Generator, size: int) -> None:
        """NSGA-II on the scorer's optimistic, constraint-dominated ranking; it fills the archive."""
        seeds = elites + [self.space.sample(rng) for _ in range(size)]
        configs, genos = self._unique(seeds, np.stack([self._genotype(c, rng) for c in seeds]), size)
        for _ in range(GENERATIONS):
            _, rank, crowd = scorer.rank(configs)
            parents = _tournament(rank, crowd, rng, 2 * size)
            children = self._vary(genos[parents[:size]], genos[parents[size:]], rng)  # (size, dim)
            configs, genos = self._unique(
                configs + [self.space.decode(g) for g in children], np.vstack([genos, children])
            )
            _, rank, crowd = scorer.rank(configs, need=size)
            keep = np.lexsort((-crowd, rank))[:size]
            configs, genos = [configs[i] for i in keep], genos[keep]

    def _vary(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform crossover per parameter, then per-parameter resample-or-nudge mutation.  (P, dim)."""
        widths = [p.width for p in self.space.params]
        block = np.repeat(np.arange(len(widths)), widths)  # (dim,) parameter of each coordinate
        shape = (len(a), len(widths))
        child = np.where((rng.random(shape) < 0.5)[:, block], b, a)
        mutate, nudge = rng.random(shape) < 1.0 / len(widths), rng.random(shape) < 0.5
        fresh = np.stack([self._genotype(self.space.sample(rng), rng) for _ in range(len(a))])
        nudged = np.clip(child + rng.normal(0.0, NUDGE, child.shape), 0.0, 1.0)
        child = np.where((mutate & ~nudge)[:, block], fresh, child)
        return np.where((mutate & nudge)[:, block], nudged, child)

    @staticmethod
    def _unique(
        configs: list[Config], genos: np.ndarray, limit: int | None = None
    ) -> tuple[list[Config], np.ndarray]:
        """The first occurrence of each distinct config (and its genotype), at most ``limit``."""
        firsts: dict[str, int] = {}
        for i, config in enumerate(configs):
            firsts.setdefault(config_key(config), i)
        keep = list(firsts.values())[:limit]
        return [configs[i] for i in keep], genos[keep]


def _tournament(rank: np.ndarray, crowd: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """k binary-tournament winners: lower rank, then larger crowding distance."""
    i, j = rng.integers(len(rank), size=(2, k))
    j_wins = (rank[j] < rank[i]) | ((rank[j] == rank[i]) & (crowd[j] > crowd[i]))
    return np.where(j_wins, j, i)

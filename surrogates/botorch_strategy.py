"""Bayesian optimisation with BoTorch GPs: qLogNEHVI (several objectives) or qLogNEI (one).

Each ``ask`` is stateless over history: it fits fresh models from ``training_data`` and picks the
batch from a discrete candidate set, so a resumed search suggests what it would have suggested.

- Initial design: until there are ``max(4, min(10, dim + 1))`` usable observations, configs come
  from one scrambled Sobol sequence per search (seeded by the search's seed), fast-forwarded by
  the number of trials suggested so far, so successive asks of one config walk the same
  space-filling sequence rather than drawing independent random points.
- Surrogate: one ``SingleTaskGP`` per objective and one per constraint slack (a ``ModelListGP``)
  on the encoded configs (``ParamSpace.encode``: the unit cube, one-hot unordered categoricals,
  zeros for inactive parameters). Slacks are modelled after a sign-keeping bilog: on the toy
  problem with latency <= 3 ms, 68 of 72 suggestions were feasible against 52 without. Above 256
  observations the training set is capped (every feasible non-dominated point plus a seeded
  random subsample), so an ask stays fast at 1000+.
- Acquisition: optimised over valid configs only, which suits mixed and conditional spaces: every
  unseen config of a finite space under 5000 configs, else 2048 random unseen configs plus
  one-or-two-parameter mutations of the incumbents, then a local search of the acquisition from
  the best of them (``neighbours.perturb``). On DTLZ2 (6-D, batch 1, 2 seeds) the local search
  took the final hypervolume regret from 0.141 to 0.114. Pending configs are ``X_pending``. A batch
  (n > 1) is sequential greedy (``optimize_acqf_discrete``, over a shortlist of the best
  single-point values), each pick conditioned on the previous ones as pending; the
  ``acquisition_value`` of a suggestion is its log value at the time it was picked. While
  constraints exist and no observation is feasible, it is the log probability of feasibility.
- A failed fit falls back to Sobol for that ask, with the reason in ``info``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.exceptions import BotorchError, ModelFittingError
from botorch.models import ModelListGP
from scipy.stats import qmc

from search_spaces.params import ParamSpace
from supernas.records import Observation
from surrogates import botorch_models as bm
from surrogates.neighbours import mutate, perturb
from surrogates.observations import TrainingData, config_key, seen_keys, sign, training_data
from surrogates.strategy import Prediction, Strategy, Suggestion
from surrogates.torch_threads import torch_threads

logger = logging.getLogger(__name__)

N_RANDOM_CANDIDATES = 2048
ENUMERATE_BELOW = 5000  # a finite space smaller than this is searched exhaustively
N_INCUMBENTS = 10  # observed configs whose neighbourhoods are searched
N_NEIGHBOURS = 32  # mutations per incumbent
LOCAL_ROUNDS, LOCAL_STARTS, LOCAL_NEIGHBOURS = 3, 16, 16  # local search of the acquisition
_SOBOL_STREAM = 0x50B0  # keeps the Sobol scramble independent of the search's other draws
# Numerical failures that make a model unusable for one ask (gpytorch's NotPSDError is a RuntimeError).
FIT_ERRORS = (ModelFittingError, BotorchError, RuntimeError, ValueError)


def initial_design_size(dim: int) -> int:
    return max(4, min(10, dim + 1))


class BoTorchStrategy(Strategy):
    name = "botorch"

    torch_threads: int | None = 1  # intra-op threads during an ask; None leaves torch's setting alone

    def ask(
        self, history: Sequence[Observation], pending: Sequence[dict[str, Any]], n: int
    ) -> list[Suggestion]:
        seen = seen_keys(history, pending)
        data = training_data(history, self.problem.objectives, self.problem.constraints)
        n_init = initial_design_size(self.space.dim)
        n_suggested = len(history) + len(pending)
        if len(data) < n_init:
            return self._sobol(n_suggested, seen, n, f"initial design ({len(data)}/{n_init} observations)")
        try:
            with torch_threads(self.torch_threads):
                return self._optimise(data, pending, seen, n, self.rng(history, pending))
        except FIT_ERRORS as exc:
            reason = f"model failed: {type(exc).__name__}: {exc}"
            logger.warning("botorch strategy: %s; using Sobol for this ask", reason, exc_info=True)
            return self._sobol(n_suggested, seen, n, reason)

    def predict(
        self, history: Sequence[Observation], configs: Sequence[dict[str, Any]]
    ) -> list[dict[str, Prediction]]:
        """Posterior mean and std of each objective (metric units) at ``configs``, fitted on ``history``."""
        data = training_data(history, self.problem.objectives, self.problem.constraints)
        if len(data) == 0:
            raise ValueError("no usable observations to fit a model on")
        rng = self.rng(history, [])
        with torch_threads(self.torch_threads), _seeded_torch(rng):
            model, _ = self._fit(data, rng)
            return self._predictions(model, _encode(self.space, configs))

    # --- model-based asks --------------------------------------------------------------------

    def _fit(self, data: TrainingData, rng: np.random.Generator) -> tuple[ModelListGP, torch.Tensor]:
        rows = bm.select_training_points(data.y, data.feasible, bm.MAX_TRAIN_POINTS, rng)
        X = _encode(self.space, [data.configs[i] for i in rows])  # (N, d)
        targets = bm.as_tensor(np.hstack([data.y, bm.bilog(data.slack)])[rows])  # (N, M + C)
        return bm.fit_model(X, targets), X

    def _optimise(
        self,
        data: TrainingData,
        pending: Sequence[dict[str, Any]],
        seen: set[str],
        n: int,
        rng: np.random.Generator,
    ) -> list[Suggestion]:
        n_obj = len(self.problem.objectives)
        with _seeded_torch(rng):
            model, X_train = self._fit(data, rng)
            candidates = self._candidates(data, seen, rng)
            if not candidates:
                return self._exhausted(n, rng)
            X_pending = _encode(self.space, pending) if pending else None  # (P, d)
            ref = bm.reference_point(data.y, data.feasible)  # (M,)
            seed = int(rng.integers(2**31))
            feasible = bool(data.feasible.any())
            acq, acq_name = bm.make_acquisition(model, X_train, ref, n_obj, feasible, X_pending, seed)
            X_cand = _encode(self.space, candidates)  # (K, d)
            values = bm.acquisition_values(acq, X_cand)  # (K,)
            if not self._enumerated:
                candidates, X_cand, values = self._local_search(acq, candidates, X_cand, values, seen, n, rng)
            greedy = acq_name != "qLogPoF"
            index, picked = bm.pick_batch(acq, X_cand, min(n, len(candidates)), values, greedy=greedy)
            predictions = self._predictions(model, X_cand[index])
        info = {"n_train": len(X_train), "n_candidates": len(candidates), "acquisition": acq_name}
        batch = [
            Suggestion(candidates[i], predictions=p, acquisition_value=_finite_or_none(v), info=dict(info))
            for i, p, v in zip(index, predictions, picked, strict=True)
        ]
        return batch + self._exhausted(n - len(batch), rng)

    def _exhausted(self, n: int, rng: np.random.Generator) -> list[Suggestion]:
        """Every config was seen: repeat random ones, as random search does."""
        return [Suggestion(self.space.sample(rng), info={"reason": "space exhausted"}) for _ in range(n)]

    def _predictions(self, model: ModelListGP, X: torch.Tensor) -> list[dict[str, Prediction]]:
        """Per row of X (Q, d): {metric: Prediction} in the metric's own units (sign flip undone)."""
        mean, std = bm.posterior_summary(model, X, len(self.problem.objectives))  # (Q, M), (Q, M)
        return self._as_predictions(mean, std)

    def _as_predictions(self, mean: np.ndarray, std: np.ndarray) -> list[dict[str, Prediction]]:
        """Maximisation-form mean and std (Q, M) -> per row {metric: Prediction} in metric units."""
        return [
            {
                o.metric.value: Prediction(mean=float(sign(o) * mean[r, j]), std=float(std[r, j]))
                for j, o in enumerate(self.problem.objectives)
            }
            for r in range(len(mean))
        ]

    @property
    def _enumerated(self) -> bool:
        """The candidates are the whole (small, finite) space."""
        size = self.space.size
        return size is not None and size < ENUMERATE_BELOW

    def _candidates(
        self, data: TrainingData, seen: set[str], rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        """Unseen valid configs, unique by key and by encoding."""
        if self._enumerated:
            pool = self.space.enumerate()
        else:
            pool = [self.space.sample(rng) for _ in range(N_RANDOM_CANDIDATES)]
            for config in _incumbents(data, rng):
                pool += [mutate(self.space, config, rng) for _ in range(N_NEIGHBOURS)]
        unique: dict[bytes, dict[str, Any]] = {}
        for config in pool:
            if config_key(config) not in seen:
                unique.setdefault(self.space.encode(config).tobytes(), config)
        return list(unique.values())

    def _local_search(
        self,
        acq: AcquisitionFunction,
        candidates: list[dict[str, Any]],
        X_cand: torch.Tensor,
        values: torch.Tensor,
        seen: set[str],
        n: int,
        rng: np.random.Generator,
    ) -> tuple[list[dict[str, Any]], torch.Tensor, torch.Tensor]:
        """Hill-climb the acquisition from the best candidates; returns the pool plus the ``n`` best
        configs the search found.

        Only ``n`` are kept because neighbours crowd around a few maxima: a batch's greedy picks run
        over a shortlist of the highest values, which would otherwise hold near-copies of one point
        (on BraninCurrin at batch 5 that took the final regret from 0.028 to 0.105).

        Each round perturbs the ``LOCAL_STARTS`` best candidates so far (``perturb``: one or two
        parameters changed, or every numeric one nudged) and scores the new, unseen configs. A
        random pool of a large space rarely holds the acquisition's maximum: on DTLZ2 (6-D) the
        front needs five coordinates near 0.5 at once. X_cand: (K, d); values: (K,).
        """
        known = {self.space.encode(c).tobytes() for c in candidates}
        pool = len(candidates)
        for _ in range(LOCAL_ROUNDS):
            starts = torch.topk(values, min(LOCAL_STARTS, len(values))).indices.tolist()
            new: list[dict[str, Any]] = []
            for i in starts:
                for _ in range(LOCAL_NEIGHBOURS):
                    config = perturb(self.space, candidates[i], rng)
                    key = self.space.encode(config).tobytes()
                    if key not in known and config_key(config) not in seen:
                        known.add(key)
                        new.append(config)
            if not new:
                break
            X_new = _encode(self.space, new)  # (J, d)
            candidates = candidates + new
            X_cand = torch.cat([X_cand, X_new])
            values = torch.cat([values, bm.acquisition_values(acq, X_new)])
        found = pool + torch.topk(values[pool:], min(n, len(values) - pool)).indices  # (<= n,)
        keep = torch.cat([torch.arange(pool), found])
        return [candidates[i] for i in keep.tolist()], X_cand[keep], values[keep]

    # --- space-filling asks ------------------------------------------------------------------

    def _sobol(self, n_suggested: int, seen: set[str], n: int, reason: str) -> list[Suggestion]:
        """The next n unseen configs of this search's scrambled Sobol sequence (random if it runs dry)."""
        stream = np.random.default_rng([self.seed, _SOBOL_STREAM])
        sobol = qmc.Sobol(max(self.space.dim, 1), scramble=True, rng=stream)
        m = math.ceil(math.log2(n_suggested + 8 * n + 16))
        points = sobol.random_base2(m)[n_suggested:]  # (2^m - n_suggested, d)
        seen = set(seen)
        configs = []
        for x in points:
            config = self.space.decode(x)
            if config_key(config) not in seen:
                seen.add(config_key(config))
                configs.append(config)
            if len(configs) == n:
                break
        fill_rng = np.random.default_rng([self.seed, _SOBOL_STREAM, n_suggested])
        configs += [self.space.sample(fill_rng) for _ in range(n - len(configs))]
        return [Suggestion(c, info={"acquisition": "sobol", "reason": reason}) for c in configs]


# --- candidate generation (numpy over the space) ---------------------------------------------


def _incumbents(data: TrainingData, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Observed configs worth searching around: the feasible front (or best), else the least infeasible."""
    if not data.feasible.any():
        order = np.argsort(data.slack.max(axis=1), kind="stable")  # (N,)
        return [data.configs[i] for i in order[:N_INCUMBENTS]]
    idx = np.flatnonzero(data.feasible)
    y = data.y[idx]  # (F, M)
    if y.shape[1] == 1:
        best = idx[np.argsort(-y[:, 0], kind="stable")[:N_INCUMBENTS]]
    else:
        front = idx[bm.is_non_dominated(bm.as_tensor(y)).numpy()]
        best = rng.choice(front, size=min(N_INCUMBENTS, len(front)), replace=False)
    return [data.configs[i] for i in best]


# --- small helpers ---------------------------------------------------------------------------


def _encode(space: ParamSpace, configs: Sequence[dict[str, Any]]) -> torch.Tensor:
    return bm.as_tensor(np.stack([space.encode(c) for c in configs]))  # (K, d)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@contextmanager
def _seeded_torch(rng: np.random.Generator) -> Iterator[None]:
    """Fork torch's global RNG and seed it from ``rng``: BoTorch's fit retries and pruning draw from it."""
    seed = int(rng.integers(2**31))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield

"""Cheap predictors with an uncertainty: a small heterogeneous bootstrap ensemble (scikit-learn).

LINAS / DyNAS-T fits a light predictor per objective on every ask; this module gives each target
(an objective or a constraint's slack) a mean and a spread from five members, each trained on its
own bootstrap resample: three small histogram gradient-boosted tree models, a small MLP and a
degree-2 polynomial ridge regression. Trees lead because the search *optimises* the predictions:
they do not extrapolate, while the smooth members chase corners of the space where they
extrapolate (on the toy problem, the true accuracy at the predicted optimum after 40 observations
was 0.86 for trees against 0.81 for ridge or MLP); the smooth members add interpolation between
points and disagree most where data is thin. The mean is the ensemble mean and the std the
ensemble std, so the spread mixes resampling noise with how much the model families disagree.

Targets are standardised, then Yeo-Johnson transformed per column (latency-like metrics are
skewed: it halves the ridge member's error on the toy latency). Each member's prediction is clipped
to the observed (transformed) range widened by a quarter of it on each side, then mapped back to
the target's units, so that one member's wild extrapolation in a corner of the space cannot pose
as uncertainty for an optimistic search to chase. The ridge and the MLP fit every target at once,
the boosted trees fit one model per target. To keep a fit well under a second, the slow members
(MLP, trees) train on a bootstrap resample of at most ``max_slow_samples`` points (400) however
long the history is; ridge uses a full-size resample. BLAS/OpenMP pools are limited to one thread
during fit and predict: these models are tiny, and on a shared host the thread pools oversubscribe
the cores (fits measured 10-50x slower without the limit).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, PowerTransformer
from threadpoolctl import ThreadpoolController

MemberKind = Literal["ridge", "mlp", "hgb"]
DEFAULT_MEMBERS: tuple[MemberKind, ...] = ("hgb", "mlp", "hgb", "ridge", "hgb")
POLY_MAX_DIM = 40  # above this input width ridge is linear: degree-2 features grow as dim**2 / 2
EXTRAPOLATION = 0.25  # member predictions are clipped to the observed range +- this share of it
_SLOW: frozenset[str] = frozenset({"mlp", "hgb"})


def make_member(kind: MemberKind, dim: int, seed: int) -> Any:
    """One untrained ensemble member taking (N, dim) inputs and (N, K) standardised targets."""
    if kind == "ridge":
        degree = 2 if dim <= POLY_MAX_DIM else 1
        ridge = RidgeCV(alphas=(1e-3, 1e-2, 1e-1, 1.0), alpha_per_target=True)
        return make_pipeline(PolynomialFeatures(degree, include_bias=False), ridge)
    if kind == "mlp":
        return MLPRegressor(
            hidden_layer_sizes=(32, 32), solver="lbfgs", alpha=1e-3, max_iter=200, random_state=seed
        )
    if kind == "hgb":
        trees = HistGradientBoostingRegressor(
            max_iter=30,
            learning_rate=0.25,
            max_leaf_nodes=8,
            min_samples_leaf=5,
            early_stopping=False,
            random_state=seed,
        )
        return MultiOutputRegressor(trees)
    raise ValueError(f"unknown ensemble member {kind!r}")


@cache
def _threadpools() -> ThreadpoolController:
    """Inspecting the loaded BLAS/OpenMP libraries takes ~10 ms, so it is done once per process."""
    return ThreadpoolController()


class EnsemblePredictor:
    """Bootstrap ensemble over (N, dim) inputs and (N, K) targets; ``predict`` gives mean and std."""

    def __init__(self, members: Sequence[MemberKind] = DEFAULT_MEMBERS, max_slow_samples: int = 400) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members for a spread")
        self.kinds = tuple(members)
        self.max_slow_samples = max_slow_samples
        self._models: list[Any] = []
        self._mu, self._sd = np.zeros(0), np.ones(0)
        self._lo, self._hi = np.zeros(0), np.zeros(0)  # (K,) bounds of member predictions, transformed
        self._y_lo, self._y_hi = np.zeros(0), np.zeros(0)  # (K,) observed range, target units
        self._power = PowerTransformer()

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> EnsemblePredictor:
        """Fit every member on its own bootstrap resample.  x: (N, dim), y: (N, K)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(len(x), -1)  # (N, K)
        self._mu, sd = y.mean(axis=0), y.std(axis=0)  # (K,)
        self._sd = np.where(sd > 1e-12, sd, 1.0)
        with _threadpools().limit(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            z = self._power.fit_transform((y - self._mu) / self._sd)  # (N, K)
            span = z.max(axis=0) - z.min(axis=0)
            self._lo, self._hi = z.min(axis=0) - EXTRAPOLATION * span, z.max(axis=0) + EXTRAPOLATION * span
            self._y_lo, self._y_hi = y.min(axis=0), y.max(axis=0)
            self._models = [self._fit_member(kind, x, z, rng) for kind in self.kinds]
        return self

    def _fit_member(self, kind: MemberKind, x: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> Any:
        size = min(len(x), self.max_slow_samples) if kind in _SLOW else len(x)
        rows = rng.integers(len(x), size=size)  # bootstrap resample
        model = make_member(kind, x.shape[1], int(rng.integers(2**31 - 1)))
        one_column = z.shape[1] == 1 and kind != "hgb"  # the trees' wrapper wants (N, K)
        return model.fit(x[rows], z[rows, 0] if one_column else z[rows])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and std, in the targets' own units.  x: (P, dim) -> two (P, K) arrays."""
        if not self._models:
            raise RuntimeError("fit the ensemble before predicting")
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))  # (P, dim)
        k = self._mu.size
        with _threadpools().limit(limits=1), np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # NaN from the inverse transform: handled below
            z = np.stack([np.asarray(m.predict(x)).reshape(len(x), k) for m in self._models])  # (E, P, K)
            z = np.clip(z, self._lo, self._hi)
            y = self._power.inverse_transform(z.reshape(-1, k)).reshape(z.shape) * self._sd + self._mu
        # Where the inverse transform is undefined (far out on a skewed column): the observed edge.
        y = np.where(np.isfinite(y), y, np.where(z > 0, self._y_hi, self._y_lo))  # (E, P, K)
        return y.mean(axis=0), y.std(axis=0)

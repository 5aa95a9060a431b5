"""Speed of the PFN and the GP: seconds per prediction, and per ask of the pfn and botorch strategies."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.contenders import time_ask
from benchmarks.pfn_quality import gp_fit_predict, quietly
from benchmarks.pfn_tasks import log, seeded_generators
from surrogates.pfn import priors
from surrogates.pfn.predictor import PFNPredictor

TIMING_DIM = 6
TIMING_REPEATS, SLOW_FIT_S = 3, 2.0


def _median_seconds(fn: Callable[[], Any], repeats: int, slow: float = math.inf) -> float:
    """Median wall time of ``repeats`` calls (a single call when the first takes over ``slow`` s)."""
    times: list[float] = []
    while len(times) < (1 if times and times[0] > slow else repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_predictions(
    predictor: PFNPredictor, sizes: Sequence[int], n_queries: int, seed: int
) -> dict[str, dict[str, float]]:
    """Seconds per prediction at each size: {size: {pfn_s, gp_s, ratio}} on a prior function task."""
    out: dict[str, dict[str, float]] = {}
    gen, _ = seeded_generators(seed, 4, 0)

    def pfn(x: np.ndarray, y: np.ndarray, q: np.ndarray) -> None:
        predictive = predictor.predict(x, y, q)
        predictive.mean(), predictive.std()

    for size in sizes:
        x, y = priors.function_task(size + n_queries, TIMING_DIM, gen)  # (N + M, d), (N + M,)
        x_ctx, y_ctx, x_qry = x[:size].numpy(), y[:size].numpy(), x[size:].numpy()
        pfn(x_ctx, y_ctx, x_qry)  # warm-up
        pfn_s = _median_seconds(lambda: pfn(x_ctx, y_ctx, x_qry), TIMING_REPEATS)  # noqa: B023
        ignored: set[str] = set()
        gp_s = _median_seconds(
            lambda: quietly(gp_fit_predict, ignored, x_ctx, y_ctx, x_qry),  # noqa: B023
            TIMING_REPEATS,
            SLOW_FIT_S,
        )
        out[str(size)] = {"pfn_s": pfn_s, "gp_s": gp_s, "ratio": gp_s / pfn_s}
        log(f"timing N={size}: PFN {pfn_s:.4f} s, GP {gp_s:.3f} s")
    return out


def time_asks(sizes: Sequence[int], seed: int) -> dict[str, Any]:
    """Seconds per ask(n=1) of the pfn and botorch strategies ({strategy: time_ask's answer})."""
    out: dict[str, Any] = {}
    for name in ("pfn", "botorch"):
        try:
            out[name] = quietly(time_ask, set(), name, sizes, seed)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        log(f"ask timing {name}: {out[name]}")
    return out

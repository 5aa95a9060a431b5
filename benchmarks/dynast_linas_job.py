"""Run DyNAS-T's LINAS on a tabulated categorical problem, in the DyNAS-T interpreter (not supernas's).

Usage: ``python dynast_linas_job.py INPUT.json OUTPUT.json`` (standalone: imports only DyNAS-T and the
standard library, so it runs in DyNAS-T's own virtualenv).

DyNAS-T's LINAS is wired to its registered super-networks; the one that takes a user's network is
BootstrapNAS (``supernet="bootstrapnas_image_classification"``), through a super-network object
(``get_search_space``, ``get_config_from_pymoo``, ``activate_config``, ``get_active_subnet``) and
``metric_eval_fns`` that measure a sub-network. Here the "super-network" is the table: each parameter
is one BootstrapNAS ``width`` dimension whose choices are the indices of its values, the active
sub-network is the tuple of indices, and the metric functions look it up. LINAS itself runs unmodified:
random initial population, then per loop: measure the population, train DyNAS-T's predictors (ridge /
SVR grid search) on every measurement so far, and run NSGA-II on the predictors for the next population.

INPUT.json: ``{"choices": [n0, n1, ...], "table": {"0123..": {"accuracy_top1": a, "latency": l,
"params": p}}, "optimization_metrics": [...], "seeds": [s, ...], "evals": e, "population": p,
"workdir": d}``; one search per seed, in one interpreter (importing DyNAS-T takes 10-20 s).
OUTPUT.json: ``{"runs": [{"seed": s, "keys": ["0123..", ...], "seconds": t}], "import_seconds": t}``:
per seed, the measured sub-networks in order (read from LINAS's results file; LINAS's returned final
population needs NNCF to be converted and is not used).
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import os
import random
import sys
import time
from typing import Any

SUPERNET = "bootstrapnas_image_classification"


class _Subnet:
    """What ``get_active_subnet`` returns: the chosen index of every dimension."""

    def __init__(self, indices: tuple[int, ...]) -> None:
        self.key = "".join(str(i) for i in indices)

    def to(self, device: str) -> _Subnet:
        return self


class TableSupernet:
    """The BootstrapNAS super-network interface over a table of sub-networks."""

    def __init__(self, choices: list[int]) -> None:
        self.choices = choices
        self.active: tuple[int, ...] = tuple(0 for _ in choices)

    def get_search_space(self) -> dict[str, Any]:
        return {"width": {i: list(range(n)) for i, n in enumerate(self.choices)}}

    def get_config_from_pymoo(self, vector: Any) -> tuple[int, ...]:
        return tuple(round(float(v)) for v in vector)

    def activate_config(self, config: tuple[int, ...]) -> None:
        self.active = config

    def get_active_subnet(self) -> _Subnet:
        return _Subnet(self.active)


def run_linas(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """One LINAS search with ``seed``: the measured sub-networks' keys in order, and its seconds."""
    import numpy as np
    from dynast.search.search_tactic import LINAS

    random.seed(seed)
    np.random.seed(seed)
    table: dict[str, dict[str, float]] = spec["table"]
    fns = {
        "accuracy_top1": lambda model: table[model.key]["accuracy_top1"],
        "latency": lambda model: (table[model.key]["latency"], 0.0),
        "params": lambda model: table[model.key]["params"],
        "macs": lambda model: 0,
    }
    results = os.path.join(spec["workdir"], f"linas_seed{seed}.csv")
    start = time.perf_counter()
    linas = LINAS(
        supernet=SUPERNET,
        optimization_metrics=list(spec["optimization_metrics"]),
        measurements=list(spec["optimization_metrics"]),
        num_evals=spec["evals"],
        results_path=results,
        population=spec["population"],
        seed=seed,
        device="cpu",
        bootstrapnas_supernetwork=TableSupernet(spec["choices"]),
        metric_eval_fns=fns,
    )
    try:
        linas.search()
    except ModuleNotFoundError as exc:
        # After its last loop LINAS converts the final population to BootstrapNAS configs with NNCF,
        # which the table adapter does not need (and DyNAS-T does not install); every measurement is
        # already in the results file by then.
        if exc.name != "nncf":
            raise
    seconds = time.perf_counter() - start
    keys = []
    with open(results) as f:
        rows = csv.reader(f)
        next(rows)  # header
        for row in rows:
            subnet = ast.literal_eval(row[0])  # {"width_0": [index], ...}
            keys.append("".join(str(subnet[f"width_{i}"][0]) for i in range(len(spec["choices"]))))
    return {"seed": seed, "keys": keys, "seconds": seconds}


def main(input_path: str, output_path: str) -> None:
    start = time.perf_counter()
    with open(input_path) as f:
        spec = json.load(f)
    import dynast.search.search_tactic  # noqa: F401 (imports every DyNAS-T super-network: the slow part)
    from dynast.utils import set_logger

    set_logger(logging.WARNING)
    import_seconds = time.perf_counter() - start
    runs = [run_linas(spec, seed) for seed in spec["seeds"]]
    with open(output_path, "w") as f:
        json.dump({"runs": runs, "import_seconds": import_seconds}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

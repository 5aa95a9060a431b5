"""DyNAS-T's LINAS as a peer, run by DyNAS-T's own interpreter in a throwaway virtualenv.

DyNAS-T is never installed into supernas's virtualenv. ``dynast==1.6.0`` installs under Python 3.11
(``python3.11 -m venv /tmp/dynast-venv && /tmp/dynast-venv/bin/pip install dynast==1.6.0``) but does
not import there: ``import dynast`` imports every super-network, hence fairseq 0.12.2, whose config
dataclasses fail on Python 3.11 ("mutable default ... for field common is not allowed"); the unpinned
``transformers>=4.10`` resolves to 5.x, which no longer has ``transformers.data.processors`` (used by
DyNAS-T's BERT super-network); and torchaudio 2.11 mismatches the torch it pulls in. What runs:

    /root/.pyenv/versions/3.10.13/bin/python -m venv /tmp/dynast-venv310
    /tmp/dynast-venv310/bin/pip install dynast==1.6.0 "transformers<4.40" torch==2.11.0 \
        torchaudio==2.11.0 torchvision==0.26.0

The interpreter is taken from ``$SUPERNAS_DYNAST_PYTHON`` or the first of those two venvs whose
``import dynast.search.search_tactic`` works. LINAS searches lists of choices with one-hot features for
its predictors, so it runs on the categorical NAS-Bench-201 problems only (see ``unsupported``).
Settings: population ``max(5, evals // 5)`` (10 at 50 evaluations: 5 LINAS loops; DyNAS-T's default
of 50 would make the budget one random population), DyNAS-T's NSGA-II inner loop with its 5,000
predictor evaluations per loop for BootstrapNAS super-networks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.contenders import RunResult
from benchmarks.problems import BenchmarkProblem
from search_spaces.params import Categorical

DYNAST_PEER = "dynast-linas"
INTERPRETERS = ("/tmp/dynast-venv310/bin/python", "/tmp/dynast-venv/bin/python")
JOB = Path(__file__).with_name("dynast_linas_job.py")
PROBE_TIMEOUT_S = 300
RUN_TIMEOUT_S = 1800
DYNAST_METRICS = {"accuracy": "accuracy_top1", "latency_ms": "latency", "params": "params"}


def population(evals: int) -> int:
    return max(5, evals // 5)


PY311_NOTE = (
    "dynast==1.6.0 installs in a Python 3.11 venv but does not import there: fairseq 0.12.2's config "
    "dataclasses fail on 3.11 (mutable default), transformers 5.x lacks transformers.data.processors, "
    "torchaudio mismatches torch; it runs from a Python 3.10 venv with transformers<4.40 and torch, "
    "torchaudio 2.11.0"
)


def settings(evals: int, python: str = "") -> dict[str, Any]:
    return {
        "package": "dynast==1.6.0",
        "interpreter": python,
        "note": PY311_NOTE,
        "algorithm": "LINAS",
        "supernet": "bootstrapnas_image_classification (table adapter)",
        "population": population(evals),
        "inner_loop": "NSGA-II, 5000 predictor evaluations per loop",
    }


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "LOKY_MAX_CPU_COUNT": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.pop("PYTHONPATH", None)
    return env


def find_interpreter() -> tuple[str | None, str]:
    """(interpreter, "") for the first DyNAS-T interpreter that imports LINAS, else (None, why not)."""
    candidates = [os.environ["SUPERNAS_DYNAST_PYTHON"]] if os.environ.get("SUPERNAS_DYNAST_PYTHON") else []
    candidates += list(INTERPRETERS)
    reasons = []
    for python in candidates:
        if not Path(python).exists():
            reasons.append(f"{python}: not found")
            continue
        try:
            probe = subprocess.run(
                [python, "-c", "import dynast.search.search_tactic"],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                env=_environment(),
            )
        except subprocess.TimeoutExpired:
            reasons.append(f"{python}: importing DyNAS-T took over {PROBE_TIMEOUT_S} s")
            continue
        if probe.returncode == 0:
            return python, ""
        lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
        reasons.append(f"{python}: import dynast fails: {lines[-1] if lines else probe.returncode}")
    return None, "; ".join(reasons) + " (see benchmarks/dynast_peer.py for the venv that works)"


def unsupported(bp: BenchmarkProblem) -> str | None:
    """Why LINAS cannot run on ``bp``, or None."""
    if not all(isinstance(p, Categorical) and p.condition is None for p in bp.problem.space.params):
        return (
            "DyNAS-T encodes every parameter as a list of choices with one-hot predictor features; a "
            "continuous space would have to be discretised, which changes the problem"
        )
    if any(len(p.choices) > 10 for p in bp.problem.space.params if isinstance(p, Categorical)):
        return "the table adapter keys sub-networks by one digit per parameter (at most 10 choices)"
    if any(o.metric.value not in DYNAST_METRICS for o in bp.objectives):
        return "an objective has no DyNAS-T metric"
    return None


def run_dynast(bp: BenchmarkProblem, python: str, seeds: Sequence[int], evals: int) -> list[RunResult]:
    """Run LINAS once per seed in one DyNAS-T process; the measured sub-networks are evaluated again here.

    Each run's seconds are its search's plus an equal share of the interpreter's start and imports.
    """
    space = bp.problem.space
    params = [p for p in space.params if isinstance(p, Categorical)]
    table = {}
    for config in space.enumerate():
        key = "".join(str(p.choices.index(config[p.name])) for p in params)
        m = bp.evaluate(config)
        table[key] = {DYNAST_METRICS[k]: v for k, v in m.items() if k in DYNAST_METRICS}
    spec = {
        "choices": [len(p.choices) for p in params],
        "table": table,
        "optimization_metrics": [DYNAST_METRICS[o.metric.value] for o in bp.objectives],
        "seeds": list(seeds),
        "evals": evals,
        "population": population(evals),
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dynast-") as workdir:
        spec["workdir"] = workdir
        inp, out = Path(workdir, "input.json"), Path(workdir, "output.json")
        inp.write_text(json.dumps(spec))
        job = subprocess.run(
            [python, str(JOB), str(inp), str(out)],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S * len(seeds),
            env=_environment(),
            cwd=workdir,
        )
        if job.returncode != 0:
            sys.stderr.write(job.stderr[-4000:])
            raise RuntimeError(f"DyNAS-T LINAS failed: {job.stderr.strip().splitlines()[-1:]}")
        result = json.loads(out.read_text())
    overhead = (time.perf_counter() - start - sum(r["seconds"] for r in result["runs"])) / len(seeds)
    runs = []
    for run in result["runs"]:
        keys = run["keys"][:evals]
        if len(keys) < evals:
            raise RuntimeError(f"DyNAS-T LINAS measured {len(keys)} sub-networks, fewer than {evals}")
        configs = [{p.name: p.choices[int(i)] for p, i in zip(params, key, strict=True)} for key in keys]
        metrics = [bp.evaluate(c) for c in configs]
        info = {
            "seed": run["seed"],
            "search_seconds": run["seconds"],
            "import_seconds": result["import_seconds"],
        }
        runs.append(RunResult(configs, metrics, run["seconds"] + overhead, info))
    return runs

"""Load time of the supernas dashboard against optuna-dashboard on the same 10,000-trial search.

Run from the repository root::

    python -m benchmarks.dashboard_load                       # 10,000 trials, 5 timed loads each
    python -m benchmarks.dashboard_load --trials 2000 --repeats 3

Both tools get the same two-objective search (accuracy maximized, params minimized) drawn from one
seeded RNG: elastic-CNN configs with a fine-tuning learning rate, three learning-curve reports per
finished trial, ~3% infeasible (latency over its limit) and ~0.3% failed trials.

- supernas: written through ``service.storage`` (the search, then every trial and report in one
  SQLAlchemy session) into a SQLite file and served by the real service (``python -m service.cli
  serve``, dispatcher off).
- optuna-dashboard (``optuna-dashboard==0.21.0``, its default threaded wsgiref server): an Optuna study
  in a SQLite RDB storage holding the same trials as FrozenTrials (values, params with distributions,
  intermediate values, the latency slack in the ``constraints`` system attribute that optuna-dashboard
  reads). ``study.add_trials`` costs ~10 ms of ORM work per trial (~2.5 minutes for 10,000), so the
  rows are written with Optuna's own ORM models in one session; the test checks that this gives the
  same study as ``add_trials``.

Each page is loaded in headless Debian Chromium through Playwright, in a fresh browser context per load
(cold browser cache): one untimed warm-up load (it also warms the servers), then ``--repeats`` timed
loads. A load is timed from the start of ``page.goto`` until the page is usable:

- supernas (``/searches/{id}``): the Pareto-front chart has drawn its points (``#front-chart``: Plotly
  traces with points and the ``data-points`` count that search.js sets once the draw is done) and the
  trials table has rows; ``all_sections`` waits on until every other section is loaded as well
  (hypervolume, learning curves, decisions, downloads: ``body[data-ready]``);
- optuna-dashboard (``/dashboard/studies/{id}``): the Pareto-front plot (``#graph-pareto-front``) has
  drawn its SVG markers.

Between loads (untimed) the page is left until none of its requests has been in flight for a second,
so that server work still running for one load (optuna-dashboard computes hyperparameter importances)
does not slow down the next. The supernas JSON endpoints behind the page are also timed alone with
httpx (one warm-up call, then the median of ``--repeats``). ``ratio`` is optuna-dashboard's median load
time over supernas's. Results go to ``benchmarks/results/dashboard_load.json``.

Measured (10,000 trials, 2-core machine shared with other work, load average 0.5-2; two runs of the
same code): supernas usable in 1.65 s median (min 1.58; every section 1.81) and 2.08 s (min 1.97),
optuna-dashboard 7.0 s (min 5.8) and 7.1 s (min 6.2), ratio 4.2 and 3.4; each run took ~160 s.
optuna-dashboard's loads are bimodal: two of five took 17-21 s (probably when its
hyperparameter-importance computation held the server's GIL). The supernas page's own timeline shows
where its time goes: the JSON is there within ~0.3 s (``/points``, 800 kB of JSON, ~205 kB gzipped,
is served in ~55 ms), but evaluating plotly.min.js (4.6 MB) keeps the main thread busy until
~1.1-1.3 s; the front is drawn at ~1.5-1.8 s. On the same machine busy with other work (load average
8-12) supernas took 2.4-4.3 s, optuna-dashboard 10-100 s, and the run 9.5 minutes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.launcher import free_port, running_server, running_service

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
RESULT_FILE = "dashboard_load.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1000}
SEED = 0
INFEASIBLE_RATE = 0.03
FAILED_RATE = 0.003
REPORTS = 3  # learning-curve reports per finished trial
LATENCY_LIMIT_MS = 8.0
STARTED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LOAD_TIMEOUT_MS = 120_000
SETTLE_TIMEOUT_S = 90.0
ERROR_GRACE_MS = 10_000
QUIET_S = 1.0
STARTUP_TIMEOUT_S = 120.0

DEPTHS = (1, 2, 3)
WIDTHS = (0.5, 0.75, 1.0)
KERNELS = (3, 5)
EXPANDS = (2, 4)
LR_RANGE = (1e-4, 1e-1)

SPEC: dict[str, Any] = {
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "budget": {"max_parallel": 4},
    "fidelity": {"finetune_epochs": REPORTS},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
    "hyperparameters": {
        "finetune_lr": {"type": "float", "low": LR_RANGE[0], "high": LR_RANGE[1], "log": True}
    },
    "constraints": [{"metric": "latency_ms", "op": "<=", "value": LATENCY_LIMIT_MS}],
}

DIRECTIONS = [o["direction"] for o in SPEC["objectives"]]
SUPERNAS_ENDPOINTS = ("", "/points", "/hypervolume", "/trials?page_size=50", "/curves", "/decisions")

# usable: the front's points are drawn (search.js sets data-points after Plotly.react resolves) and the
# trials table has rows
SUPERNAS_USABLE_JS = """() => {
  const gd = document.getElementById("front-chart");
  if (!gd || !Array.isArray(gd.data) || !gd._fullLayout) return false;
  const points = gd.data.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0);
  const rows = document.querySelectorAll("#trials-table tbody tr").length;
  return points > 0 && Number(gd.dataset.points || 0) > 0 && rows > 0;
}"""
SUPERNAS_ALL_SECTIONS_JS = '() => document.body.dataset.ready === "1"'
# usable: optuna-dashboard's Pareto-front plot has drawn its (SVG) markers
OPTUNA_USABLE_JS = """() => {
  const gd = document.getElementById("graph-pareto-front");
  if (!gd || !Array.isArray(gd.data) || !gd._fullLayout) return false;
  const points = gd.data.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0);
  return points > 0 && gd.querySelectorAll(".scatterlayer path.point").length > 0;
}"""
# run before the page's own scripts: when the page first had an uncaught error (a load then fails fast)
ERROR_CLOCK_JS = """for (const type of ["error", "unhandledrejection"]) {
  window.addEventListener(type, () => { window.__firstErrorAt ??= performance.now(); });
}"""
# where the time of a load went: navigation timings and the page's performance marks (search.js sets
# plotly-ready, trials-rendered, points-loaded, front-rendered), seconds since navigation start
MARKS_JS = """() => {
  const out = {};
  const nav = performance.getEntriesByType("navigation")[0];
  if (nav) {
    out.response_end = nav.responseEnd / 1000;
    out.dom_content_loaded = nav.domContentLoadedEventEnd / 1000;
  }
  for (const mark of performance.getEntriesByType("mark")) out[mark.name] = mark.startTime / 1000;
  return out;
}"""
# what a page shows, for the error message of a load that never became usable
PAGE_STATE_JS = """() => {
  const chart = (id) => {
    const gd = document.getElementById(id);
    if (!gd) return null;
    const traces = Array.isArray(gd.data) ? gd.data.map((t) => (t.x || []).length) : null;
    return { traces, drawn: Boolean(gd._fullLayout), dataset: { ...gd.dataset } };
  };
  const text = (id) => (document.getElementById(id) || {}).textContent || null;
  return {
    title: document.title,
    front: chart("front-chart") || chart("graph-pareto-front"),
    rows: document.querySelectorAll("#trials-table tbody tr").length,
    ready: document.body ? document.body.dataset.ready || null : null,
    page_error: text("page-error"),
    banner: text("error-banner"),
  };
}"""


@dataclass(frozen=True)
class Trial:
    number: int
    state: str  # "succeeded", "infeasible" or "failed"
    config: dict[str, Any]
    accuracy: float
    params: float
    latency_ms: float
    curve: tuple[float, ...]  # accuracy at reports 1..REPORTS
    created: datetime
    started: datetime
    finished: datetime
    reason: str | None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.dashboard_load", description=__doc__.split("\n")[0]
    )
    p.add_argument("--trials", type=int, default=10_000, help="trials of the search (default 10000)")
    p.add_argument("--repeats", type=int, default=5, help="timed page loads per tool (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed page loads first (default 1)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default benchmarks/results/)"
    )
    args = p.parse_args(argv)
    if args.trials < 10 or args.repeats < 1 or args.warmup < 0:
        raise SystemExit("--trials must be at least 10, --repeats positive, --warmup not negative")
    return args


# ---------------------------------------------------------------------------------------------- data


def make_trials(n: int, seed: int = SEED) -> list[Trial]:
    """``n`` finished trials of one search, the same for both tools."""
    rng = np.random.default_rng(seed)
    trials = []
    for number in range(n):
        depth = [int(d) for d in rng.choice(DEPTHS, size=2)]
        width = float(rng.choice(WIDTHS))
        kernel, expand = int(rng.choice(KERNELS)), int(rng.choice(EXPANDS))
        lr = float(np.exp(rng.uniform(np.log(LR_RANGE[0]), np.log(LR_RANGE[1]))))
        size = width**2 * (depth[0] + 2 * depth[1]) * (1 + 0.2 * (kernel == 5)) * expand / 2
        params = float(round(4000 + 9000 * size * rng.uniform(0.9, 1.1)))
        lr_penalty = 0.05 * abs(np.log10(lr) + 2)
        accuracy = float(np.clip(0.99 - 0.3 / (1 + size) - lr_penalty + rng.normal(0, 0.02), 0.05, 0.999))
        curve = tuple(
            float(accuracy - 0.08 * (REPORTS - step) * rng.uniform(0.5, 1.0))
            for step in range(1, 1 + REPORTS)
        )
        latency = float(LATENCY_LIMIT_MS * rng.uniform(0.3, 0.95))
        draw = rng.random()
        state, reason = "succeeded", None
        if draw < FAILED_RATE:
            state, reason = "failed", "RuntimeError: CUDA out of memory (simulated)"
        elif draw < FAILED_RATE + INFEASIBLE_RATE:
            latency = float(LATENCY_LIMIT_MS * rng.uniform(1.05, 1.6))
            state, reason = "infeasible", f"latency_ms = {latency:.6g} violates <= {LATENCY_LIMIT_MS:g}"
        created = STARTED + timedelta(seconds=2.0 * number)
        started = created + timedelta(seconds=0.5)
        finished = started + timedelta(seconds=float(rng.uniform(10, 40)))
        config = {
            "depth_s0": depth[0],
            "depth_s1": depth[1],
            "width_mult": width,
            "kernel_size": kernel,
            "expand_ratio": expand,
            "finetune_lr": lr,
        }
        trials.append(
            Trial(number, state, config, accuracy, params, latency, curve, created, started, finished, reason)
        )
    return trials


def build_supernas(db_path: Path, trials: Sequence[Trial]) -> tuple[str, str]:
    """A finished supernas search holding ``trials`` in a new SQLite file; returns (url, search id)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from search_spaces.spec import SearchSpec
    from service.storage import Storage
    from service.storage.models import SearchRow, TrialReportRow, TrialRow
    from supernas.states import SearchState, TrialState

    url = f"sqlite:///{db_path}"
    storage = Storage(url)
    try:
        storage.upgrade()
        spec = SearchSpec.model_validate(SPEC | {"budget": SPEC["budget"] | {"max_trials": len(trials)}})
        record, _ = storage.create_search(spec.model_dump(mode="json"), "dashboard-load")
        with Session(storage.engine) as s, s.begin():
            search = s.scalars(select(SearchRow).where(SearchRow.id == record.id)).one()
            search.state, search.state_reason = SearchState.SUCCEEDED.value, None
            search.created_at = STARTED - timedelta(seconds=30)
            search.started_at, search.finished_at = STARTED, max(t.finished for t in trials)
            rows = [_trial_row(TrialRow, TrialState, record.id, t) for t in trials]
            s.add_all(rows)
            s.flush()
            s.add_all(
                TrialReportRow(
                    trial_pk=row.pk,
                    step=step,
                    fidelity=float(step - 1),
                    metrics={"accuracy": value, "params": t.params},
                    created_at=t.started + (t.finished - t.started) * step / (REPORTS + 1),
                )
                for row, t in zip(rows, trials, strict=True)
                if t.state != "failed"
                for step, value in enumerate(t.curve, start=1)
            )
        return url, record.id
    finally:
        storage.dispose()


def _trial_row(row_class: Any, states: Any, search_id: str, t: Trial) -> Any:
    metrics = (
        {}
        if t.state == "failed"
        else {"accuracy": t.accuracy, "params": t.params, "latency_ms": t.latency_ms}
    )
    return row_class(
        search_id=search_id,
        number=t.number,
        state=states(t.state).value,
        config=t.config,
        metrics=metrics,
        fidelity=None if t.state == "failed" else float(REPORTS - 1),
        state_reason=t.reason,
        created_at=t.created,
        started_at=t.started,
        finished_at=t.finished,
        updated_at=t.finished,
    )


def optuna_trials(trials: Sequence[Trial]) -> list[Any]:
    """The trials as Optuna FrozenTrials: failed ones FAIL, the others COMPLETE with both values, the
    learning curve as intermediate values and the latency constraint's slack (<= 0: feasible) in the
    ``constraints`` system attribute, the list form that optuna-dashboard reads."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import FrozenTrial, TrialState

    distributions = {
        "depth_s0": IntDistribution(min(DEPTHS), max(DEPTHS)),
        "depth_s1": IntDistribution(min(DEPTHS), max(DEPTHS)),
        "width_mult": CategoricalDistribution(WIDTHS),
        "kernel_size": CategoricalDistribution(KERNELS),
        "expand_ratio": CategoricalDistribution(EXPANDS),
        "finetune_lr": FloatDistribution(*LR_RANGE, log=True),
    }
    out = []
    for t in trials:
        failed = t.state == "failed"
        out.append(
            FrozenTrial(
                number=-1,
                trial_id=-1,
                state=TrialState.FAIL if failed else TrialState.COMPLETE,
                value=None,
                values=None if failed else [t.accuracy, t.params],
                datetime_start=_local_naive(t.started),
                datetime_complete=_local_naive(t.finished),
                params=t.config,
                distributions=distributions,
                user_attrs={} if failed else {"latency_ms": t.latency_ms},
                system_attrs={} if failed else {"constraints": [t.latency_ms - LATENCY_LIMIT_MS]},
                intermediate_values={} if failed else dict(enumerate(t.curve, start=1)),
            )
        )
    return out


def _local_naive(value: datetime) -> datetime:
    """Optuna's FrozenTrial datetimes are naive local time."""
    return value.astimezone().replace(tzinfo=None)


def build_optuna(db_path: Path, trials: Sequence[Trial], bulk: bool = True) -> tuple[str, int]:
    """An Optuna study (both directions, metric names) holding ``trials`` in a new SQLite RDB storage;
    returns (url, study id).

    ``bulk=False`` adds them with ``study.add_trials``: one transaction and ~10 ms of ORM work per
    trial (about 2.5 minutes for 10,000 on this machine). ``bulk=True`` writes the same rows with
    Optuna's own ORM models in one session (seconds); the benchmark's test checks that both give the
    same study.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db_path}"
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.create_study(storage=storage, study_name="dashboard-load", directions=DIRECTIONS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o["metric"] for o in SPEC["objectives"]])
        study_id = storage.get_study_id_from_name("dashboard-load")
        if bulk:
            _insert_optuna_trials(storage.engine, study_id, optuna_trials(trials))
        else:
            study.add_trials(optuna_trials(trials))
        return url, study_id
    finally:
        storage.remove_session()
        storage.engine.dispose()


def _insert_optuna_trials(engine: Any, study_id: int, frozen: Sequence[Any]) -> None:
    """What ``RDBStorage`` writes for each of ``frozen`` (numbered 0, 1, ...), in one session."""
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models  # Optuna's schema: no public bulk insert exists
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    ivalue = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
    with Session(engine) as s, s.begin():
        rows = [
            models.TrialModel(
                study_id=study_id,
                number=number,
                state=trial.state,
                datetime_start=trial.datetime_start,
                datetime_complete=trial.datetime_complete,
            )
            for number, trial in enumerate(frozen)
        ]
        s.add_all(rows)
        s.flush()
        pairs = [(row.trial_id, trial) for row, trial in zip(rows, frozen, strict=True)]
        values, params, user_attrs, system_attrs, intermediate = [], [], [], [], []
        for trial_id, trial in pairs:
            for objective, value in enumerate(trial.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                values.append(
                    {"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind}
                )
            for name, value in trial.params.items():
                distribution = trial.distributions[name]
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": distribution.to_internal_repr(value),
                        "distribution_json": distribution_to_json(distribution),
                    }
                )
            for attrs, target in ((trial.user_attrs, user_attrs), (trial.system_attrs, system_attrs)):
                target += [
                    {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
                ]
            for step, value in trial.intermediate_values.items():
                stored, kind = ivalue(value)
                intermediate.append(
                    {
                        "trial_id": trial_id,
                        "step": step,
                        "intermediate_value": stored,
                        "intermediate_value_type": kind,
                    }
                )
        for model, batch in (
            (models.TrialValueModel, values),
            (models.TrialParamModel, params),
            (models.TrialUserAttributeModel, user_attrs),
            (models.TrialSystemAttributeModel, system_attrs),
            (models.TrialIntermediateValueModel, intermediate),
        ):
            if batch:
                s.execute(insert(model), batch)


# ------------------------------------------------------------------------------------------- servers


@contextmanager
def supernas_server(database_url: str, data_dir: Path) -> Iterator[str]:
    """The real service with its dispatcher off; yields its base URL."""
    env = os.environ | {
        "SUPERNAS_DATABASE_URL": database_url,
        "SUPERNAS_RUN_DISPATCHER": "false",
        "SUPERNAS_AUTH": "false",  # the page is timed, not the sign-in
    }
    env.pop("RAY_ADDRESS", None)
    with running_service(data_dir, env, startup_timeout_s=STARTUP_TIMEOUT_S, cwd=REPO_ROOT) as server:
        yield server.url


@contextmanager
def optuna_dashboard_server(database_url: str, log_dir: Path) -> Iterator[str]:
    """optuna-dashboard on the study's storage; yields its base URL."""
    port = free_port()
    executable = Path(sys.executable).with_name("optuna-dashboard")
    if not executable.exists():
        found = shutil.which("optuna-dashboard")
        if found is None:
            raise RuntimeError("optuna-dashboard is not installed (pip install optuna-dashboard==0.21.0)")
        executable = Path(found)
    command = [str(executable), database_url, "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    log_path = log_dir / "optuna-dashboard.log"
    with running_server(
        command,
        port,
        log_path,
        os.environ,
        "/api/studies",
        startup_timeout_s=STARTUP_TIMEOUT_S,
        cwd=REPO_ROOT,
    ) as server:
        yield server.url


# ------------------------------------------------------------------------------------------- timings


@dataclass
class PageTimings:
    usable: list[float]
    all_sections: list[float]
    errors: list[str]
    marks: list[dict[str, float]]


@dataclass(frozen=True)
class Load:
    usable: float  # seconds from goto until usable
    all_sections: float | None  # ... until every section is loaded (supernas only)
    settled: float | None  # ... until no request was left in flight (untimed, for the log)
    marks: dict[str, float]  # the page's own performance marks and navigation timings, seconds


def load_page(
    browser: Any, url: str, usable_js: str, all_js: str | None, errors: list[str], settle: bool = True
) -> Load:
    """One cold load (fresh context): seconds from ``goto`` to ``usable_js`` (and to ``all_js``), then
    (with ``settle``) until its requests are done."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(ERROR_CLOCK_JS)
        page = context.new_page()
        in_flight = InFlight(page)
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.on("console", lambda m: errors.append(f"console.error: {m.text}") if m.type == "error" else None)
        start = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        _wait_for(page, url, usable_js, errors)
        usable = time.perf_counter() - start
        every = None
        if all_js is not None:
            _wait_for(page, url, all_js, errors)
            every = time.perf_counter() - start
        marks = page.evaluate(MARKS_JS)
        settled = None
        if settle:
            _settle(page, in_flight)
            settled = time.perf_counter() - start
        return Load(usable, every, settled, marks)
    finally:
        context.close()


def _wait_for(page: Any, url: str, condition_js: str, errors: list[str]) -> None:
    """Until ``condition_js`` holds; a RuntimeError with what the page shows if it does not hold within
    ``LOAD_TIMEOUT_MS``, or ``ERROR_GRACE_MS`` after the page's first uncaught error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    gave_up = (
        f"() => ({condition_js})() || (window.__firstErrorAt !== undefined"
        f" && performance.now() - window.__firstErrorAt > {ERROR_GRACE_MS})"
    )
    try:
        page.wait_for_function(gave_up, timeout=LOAD_TIMEOUT_MS)
        if page.evaluate(condition_js):
            return
        why = f"not ready {ERROR_GRACE_MS / 1000:.0f} s after an uncaught error"
    except PlaywrightTimeout:
        why = f"not ready in {LOAD_TIMEOUT_MS / 1000:.0f} s"
    raise RuntimeError(
        f"{url} {why}, waiting for {condition_js}\npage state: {page.evaluate(PAGE_STATE_JS)}\n"
        f"errors: {errors}"
    )


class InFlight:
    """Counts a page's unfinished requests."""

    def __init__(self, page: Any) -> None:
        self.count = 0
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, _request: Any) -> None:
        self.count += 1

    def _ended(self, _request: Any) -> None:
        self.count -= 1


def _settle(page: Any, in_flight: InFlight) -> None:
    """Untimed: wait until the page has had no request in flight for ``QUIET_S`` (at most
    ``SETTLE_TIMEOUT_S``), so that work the server still does for this load (optuna-dashboard
    computes hyperparameter importances) does not slow down the next one."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if in_flight.count > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET_S:
            return
        page.wait_for_timeout(100)  # lets Playwright deliver the request events


def time_page(url: str, usable_js: str, all_js: str | None, warmup: int, repeats: int) -> PageTimings:
    from playwright.sync_api import sync_playwright

    timings = PageTimings([], [], [], [])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(warmup + repeats):
                last = i == warmup + repeats - 1
                load = load_page(browser, url, usable_js, all_js, timings.errors, settle=not last)
                kind = "warm-up" if i < warmup else "timed"
                settled = "" if load.settled is None else f", settled {load.settled:.1f} s"
                print(
                    f"  {kind} load of {url}: usable {load.usable:.3f} s{settled}",
                    file=sys.stderr,
                    flush=True,
                )
                if i >= warmup:
                    timings.usable.append(load.usable)
                    timings.marks.append(load.marks)
                    if load.all_sections is not None:
                        timings.all_sections.append(load.all_sections)
        finally:
            browser.close()
    return timings


def time_endpoints(base: str, search_id: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Median and min seconds of each supernas JSON endpoint (one warm-up call each), with its size
    (JSON bytes, and bytes on the wire: gzip-compressed where the service compresses)."""
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=base, timeout=60, headers={"accept-encoding": "gzip"}) as client:
        for suffix in SUPERNAS_ENDPOINTS:
            path = f"/api/v1/searches/{search_id}{suffix}"
            client.get(path).raise_for_status()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                response = client.get(path)
                response.raise_for_status()
                seconds.append(time.perf_counter() - start)
            sizes = {"bytes": len(response.content), "wire_bytes": response.num_bytes_downloaded}
            out[suffix or "/"] = summary(seconds) | sizes
    return out


def summary(seconds: Sequence[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "seconds": list(seconds)}


# ----------------------------------------------------------------------------------------------- run


def machine() -> dict[str, Any]:
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    packages = ("optuna", "optuna-dashboard", "plotly", "playwright", "fastapi", "uvicorn", "sqlalchemy")
    return {
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "chromium": chromium.stdout.strip(),
        "packages": {name: importlib.metadata.version(name) for name in packages},
    }


def tool_result(page: str, timings: PageTimings) -> dict[str, Any]:
    result: dict[str, Any] = {"page": page, "load": summary(timings.usable)}
    if timings.all_sections:
        result["all_sections"] = summary(timings.all_sections)
    names = {name for marks in timings.marks for name in marks}
    medians = {name: statistics.median(m[name] for m in timings.marks if name in m) for name in names}
    result["marks_median_s"] = dict(sorted(medians.items(), key=lambda item: item[1]))
    result["page_errors"] = sorted(set(timings.errors))
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build both searches, time both dashboards; returns the JSON document (also written to ``args.out``)."""
    started = time.perf_counter()
    trials = make_trials(args.trials)
    counts = {state: sum(t.state == state for t in trials) for state in ("succeeded", "infeasible", "failed")}
    doc: dict[str, Any] = {
        "settings": {"trials": args.trials, "repeats": args.repeats, "warmup": args.warmup, "seed": SEED}
        | {"trial_states": counts, "started": datetime.now(UTC).isoformat(timespec="seconds")},
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="dashboard-load-") as tmp:
        root = Path(tmp)
        build_start = time.perf_counter()
        supernas_url, search_id = build_supernas(root / "supernas.db", trials)
        supernas_build = time.perf_counter() - build_start
        build_start = time.perf_counter()
        optuna_url, study_id = build_optuna(root / "optuna.db", trials)
        optuna_build = time.perf_counter() - build_start
        print(
            f"built: supernas {supernas_build:.1f} s, optuna {optuna_build:.1f} s",
            file=sys.stderr,
            flush=True,
        )

        with supernas_server(supernas_url, root / "supernas-data") as base:
            page = f"/searches/{search_id}"
            timings = time_page(
                base + page, SUPERNAS_USABLE_JS, SUPERNAS_ALL_SECTIONS_JS, args.warmup, args.repeats
            )
            supernas = tool_result(page, timings) | {"build_s": supernas_build}
            supernas["endpoints"] = time_endpoints(base, search_id, args.repeats)
        with optuna_dashboard_server(optuna_url, root) as base:
            page = f"/dashboard/studies/{study_id}"
            timings = time_page(base + page, OPTUNA_USABLE_JS, None, args.warmup, args.repeats)
            optuna_dashboard = tool_result(page, timings) | {"build_s": optuna_build}
    doc["supernas"] = supernas
    doc["optuna_dashboard"] = optuna_dashboard
    doc["ratio"] = optuna_dashboard["load"]["median_s"] / supernas["load"]["median_s"]
    doc["machine"]["load_average_end"] = list(os.getloadavg())
    doc["wall_seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULT_FILE).write_text(json.dumps(doc, indent=1))
    return doc


def format_table(doc: dict[str, Any]) -> str:
    """Page load medians and minima of both tools, the ratio, then the supernas endpoints."""
    s, o, m = doc["supernas"], doc["optuna_dashboard"], doc["machine"]
    lines = [
        f"{doc['settings']['trials']} trials, {doc['settings']['repeats']} cold loads each "
        f"(load average {m['load_average'][0]:.1f} at the start, {m['cpu_count']} CPUs)",
        f"{'page':<34} {'median s':>9} {'min s':>8}",
        f"{'supernas (front + table)':<34} {s['load']['median_s']:>9.3f} {s['load']['min_s']:>8.3f}",
    ]
    if "all_sections" in s:
        every = s["all_sections"]
        lines.append(f"{'supernas (every section)':<34} {every['median_s']:>9.3f} {every['min_s']:>8.3f}")
    lines += [
        f"{'optuna-dashboard (Pareto front)':<34} {o['load']['median_s']:>9.3f} {o['load']['min_s']:>8.3f}",
        f"ratio optuna-dashboard / supernas (medians): {doc['ratio']:.2f}",
        "",
        f"{'supernas endpoint':<34} {'median s':>9} {'min s':>8} {'bytes':>10} {'on wire':>10}",
    ]
    for path, e in s["endpoints"].items():
        lines.append(
            f"{path:<34} {e['median_s']:>9.4f} {e['min_s']:>8.4f} {e['bytes']:>10} {e['wire_bytes']:>10}"
        )
    for name, result in (("supernas", s), ("optuna-dashboard", o)):
        marks = ", ".join(f"{mark} {seconds:.2f}" for mark, seconds in result["marks_median_s"].items())
        lines.append(f"{name} page timeline (median s after navigation start): {marks}")
    for name, result in (("supernas", s), ("optuna-dashboard", o)):
        for error in result["page_errors"]:
            lines.append(f"{name} page error: {error}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    doc = run(args)
    print(format_table(doc))
    print(f"wall time {doc['wall_seconds']:.0f} s; wrote {args.out / RESULT_FILE}")
    return doc


if __name__ == "__main__":
    main()

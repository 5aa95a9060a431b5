"""Timing cold page loads in headless Chromium through Playwright, until a page is usable."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 1000}
LOAD_TIMEOUT_MS = 120_000
SETTLE_TIMEOUT_S = 90.0
ERROR_GRACE_MS = 10_000
QUIET_S = 1.0

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

"""The browser tests' page harness: a Playwright page on the service that records console errors and
uncaught exceptions, summarises what Plotly drew, and saves screenshots under
``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page
from service_process import ServiceHandle

from service.storage import Storage

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("SUPERNAS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking"]

# what Plotly drew in an element: its traces, axis titles and whether its SVG exists
_CHART_SUMMARY = """(id) => {
  const gd = document.getElementById(id);
  if (!gd || !gd.data || gd.hidden) return null;
  const title = (axis) => (axis && axis.title && axis.title.text) || null;
  const layout = gd.layout || {};
  return {
    svg: Boolean(gd.querySelector(".main-svg")),
    traces: gd.data.map((t) => ({
      type: t.type,
      name: t.name,
      role: (t.meta && t.meta.role) || null,
      points: (t.x || []).length,
      symbol: (t.marker && t.marker.symbol) || null,
      text: Array.isArray(t.text) ? t.text.slice(0, 3) : [],
      numbers: Array.isArray(t.customdata) ? t.customdata : [],
    })),
    x: title(layout.xaxis) || title(layout.scene && layout.scene.xaxis),
    y: title(layout.yaxis) || title(layout.scene && layout.scene.yaxis),
    z: title(layout.scene && layout.scene.zaxis),
  };
}"""


@dataclass(frozen=True)
class OfflineService:
    """The service with its dispatcher off (searches stay as inserted) and its storage, for inserting."""

    url: str
    storage: Storage
    handle: ServiceHandle


@dataclass
class Dashboard:
    """A browser page on the service that records console errors and uncaught exceptions."""

    page: Page
    base_url: str
    test_name: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def wait_ready(self, timeout_ms: float = 15_000) -> None:
        """Until the page's script has finished its first load (body[data-ready])."""
        self.page.wait_for_selector("body[data-ready='1']", state="attached", timeout=timeout_ms)

    def assert_no_console_errors(self, allowed: tuple[str, ...] = ()) -> None:
        """No console error and no uncaught exception, except messages matching an ``allowed`` regex
        (e.g. the resource error Chromium logs for a deliberate 404 or 409 answer)."""
        unexpected = [e for e in self.errors if not any(re.search(a, e) for a in allowed)]
        assert unexpected == [], f"console errors: {unexpected}"

    def chart(self, element_id: str) -> dict[str, Any] | None:
        """What Plotly drew in ``#element_id``: its traces (type, role, point count, first hover texts),
        axis titles and whether its SVG exists; None when nothing was plotted there."""
        return self.page.evaluate(_CHART_SUMMARY, element_id)

    def screenshot(self, suffix: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}{suffix}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def dashboard_page(browser: Browser, base_url: str, test_name: str) -> Iterator[Dashboard]:
    """A fresh browser context and page on ``base_url``; its screenshot is saved when the test ends
    (also when it fails: what the page showed)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    dash = Dashboard(page, base_url, re.sub(r"[^\w.-]+", "_", test_name))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            dash.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: dash.errors.append(f"pageerror: {error}"))
    try:
        yield dash
    finally:
        try:
            dash.screenshot()
        finally:
            context.close()

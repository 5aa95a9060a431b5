"""A real search run by the real service (dispatcher on, Ray, a tiny digits search, auth on): signing
in with the token the service printed, the page updating live without a reload, and its models
downloading from the page (fetched with the token)."""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import Dashboard, dashboard_page
from playwright.sync_api import Browser, expect
from service_process import ServiceHandle, running_service
from shapes import EXAMPLE_SPEC

pytestmark = pytest.mark.slow

TRIALS = 4
# the digits example, smaller still: one supernet epoch on 500 examples, no fine-tuning
LIVE_SPEC = {k: v for k, v in EXAMPLE_SPEC.items() if k != "name"} | {
    "budget": {"max_trials": TRIALS, "max_parallel": 2, "max_duration_s": 300},
    "supernet": {"epochs": 1, "batch_size": 64, "max_train_examples": 500},
    "fidelity": {"finetune_epochs": 0},
}
SEARCH_TIMEOUT_MS = 300_000
# counts the points drawn each time the front changes: 0 while nothing finished, then more
WATCH_POINTS = """() => {
  const gd = document.getElementById('front-chart');
  window.__pointCounts = [Number(gd.dataset.points || 0)];
  new MutationObserver(() => window.__pointCounts.push(Number(gd.dataset.points || 0)))
    .observe(gd, {attributes: true, attributeFilter: ['data-points']});
}"""


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHandle]:
    data_dir = tmp_path_factory.mktemp("dashboard-live")
    database_url = f"sqlite:///{data_dir}/supernas.db"
    with running_service(data_dir, database_url, extra_env={"SUPERNAS_AUTH": "true"}) as handle:
        yield handle


@pytest.fixture(scope="module")
def admin_token(live_service: ServiceHandle) -> str:
    return live_service.admin_token()  # printed on the first start


@pytest.fixture(scope="module")
def live_searches() -> dict[str, str]:
    """name -> id of the searches the live test ran (the download test reuses a finished one)."""
    return {}


@pytest.fixture
def live_dash(
    browser: Browser, live_service: ServiceHandle, admin_token: str, request: pytest.FixtureRequest
) -> Iterator[Dashboard]:
    """A page that is signed in already: the token is in local storage before any script runs."""
    for dash in dashboard_page(browser, live_service.url, request.node.name):
        dash.page.add_init_script(f"localStorage.setItem('supernas.token', {json.dumps(admin_token)})")
        yield dash


def test_sign_in_with_the_printed_token_then_sign_out(
    browser: Browser, live_service: ServiceHandle, admin_token: str, request: pytest.FixtureRequest
) -> None:
    for dash in dashboard_page(browser, live_service.url, request.node.name):
        page = dash.page
        dash.open("/")
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#signin")).to_contain_text("Authorization: Bearer")
        page.fill("#signin-token", "snas_000000000000_not-a-real-token-at-all")
        page.click("#signin-submit")
        expect(page.locator("#signin")).to_contain_text("invalid bearer token")  # refused again
        page.fill("#signin-token", admin_token)
        page.click("#signin-submit")
        dash.wait_ready()
        expect(page.locator("#signin")).to_have_count(0)
        expect(page.locator("#searches-empty")).to_be_visible()  # signed in: the (empty) list loaded
        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        dash.screenshot("-signed-out")
        dash.assert_no_console_errors(allowed=(r"401 \(Unauthorized\)",))


def _finished_search(live_service: ServiceHandle, live_searches: dict[str, str], token: str) -> str:
    """The live test's search, or (when run alone) a new one followed to its end over the API."""
    if "live-dashboard" in live_searches:
        return live_searches["live-dashboard"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_service.url, timeout=30, headers=headers) as client:
        search_id = client.post("/api/v1/searches", json=LIVE_SPEC | {"name": "live-download"}).json()["id"]
        deadline = time.monotonic() + SEARCH_TIMEOUT_MS / 1000
        while client.get(f"/api/v1/searches/{search_id}").json()["state"] not in {
            "succeeded",
            "failed",
            "canceled",
        }:
            assert time.monotonic() < deadline, "the search did not finish in time"
            time.sleep(1)  # polling the service's API from outside the browser: nothing to wait on
    return search_id


def test_live_search_page_updates_without_reload(
    live_dash: Dashboard, live_service: ServiceHandle, live_searches: dict[str, str]
) -> None:
    page = live_dash.page
    live_dash.open("/")
    live_dash.wait_ready()
    page.fill("#spec-name", "live-dashboard")
    page.fill("#spec-text", json.dumps(LIVE_SPEC, indent=2))
    page.click("#spec-submit")
    page.wait_for_url(re.compile(r"/searches/[0-9a-f]{32}$"))
    search_id = page.url.rsplit("/", 1)[1]
    live_searches["live-dashboard"] = search_id
    live_dash.wait_ready()
    page.evaluate("window.__noReload = true")  # gone if the page reloads
    page.evaluate(WATCH_POINTS)
    expect(page.locator("#state")).not_to_have_text("succeeded")
    assert page.evaluate("window.__pointCounts[0]") == 0

    # trials finish while we watch: the front fills in, then the search succeeds
    page.wait_for_function(
        "Number(document.getElementById('front-chart').dataset.points || 0) > 0", timeout=SEARCH_TIMEOUT_MS
    )
    expect(page.locator("#state")).to_have_text("succeeded", timeout=SEARCH_TIMEOUT_MS)
    page.wait_for_function(f"document.getElementById('front-chart').dataset.points === '{TRIALS}'")
    counts = page.evaluate("window.__pointCounts")
    assert counts[0] == 0 and counts[-1] == TRIALS and counts == sorted(counts), counts
    assert page.evaluate("window.__noReload") is True, "the page was reloaded"
    expect(page.locator("#progress")).to_have_text(f"{TRIALS} / {TRIALS} trials")
    expect(page.locator("#trials-table tbody tr")).to_have_count(TRIALS)
    expect(page.locator("#downloads a.download").first).to_be_visible()
    hv = live_dash.chart("hv-chart")
    assert hv is not None and hv["traces"][1]["points"] >= 1
    expect(page.locator("#decisions table tbody tr")).not_to_have_count(0)
    print(f"\npoints drawn as the live search ran: {counts}")
    live_dash.assert_no_console_errors()


def test_models_download_from_the_search_and_trial_pages(
    live_dash: Dashboard,
    live_service: ServiceHandle,
    live_searches: dict[str, str],
    admin_token: str,
    tmp_path: Path,
) -> None:
    search_id = _finished_search(live_service, live_searches, admin_token)
    page = live_dash.page
    live_dash.open(f"/searches/{search_id}")
    live_dash.wait_ready()
    expect(page.locator("#state")).to_have_text("succeeded")

    first = page.locator("#downloads li").first
    number = first.get_attribute("data-number")
    for fmt in ("torchscript", "onnx"):
        expect(first.locator(f"a[data-format='{fmt}']")).to_be_visible()
        with page.expect_download() as info:
            first.locator(f"a[data-format='{fmt}']").click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        content = path.read_bytes()
        assert len(content) > 1000, (fmt, len(content))
        if fmt == "torchscript":
            assert content[:2] == b"PK" and zipfile.is_zipfile(path)  # a TorchScript archive
        else:
            assert content[0] == 0x08  # ONNX ModelProto: field 1 (ir_version), a varint
    assert info.value.suggested_filename.startswith(f"supernas-{search_id[:8]}-trial{number}")

    # the trial page: its reports, and the same downloads
    live_dash.open(f"/searches/{search_id}/trials/{number}")
    live_dash.wait_ready()
    expect(page.locator("#trial-state")).to_have_text("succeeded")
    expect(page.locator("#trial-reports tbody tr")).not_to_have_count(0)
    # random search predicts nothing: the page says so (the suggestion is still listed)
    expect(page.locator("#no-prediction")).to_contain_text("the strategy (random)")
    expect(page.locator("#suggestion-table")).to_contain_text("random")
    expect(page.locator("#artifacts a.download")).to_have_count(3)
    with page.expect_download() as info:
        page.click("#artifacts a[data-format='manifest']")
    info.value.save_as(tmp_path / "manifest.json")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["onnx"]["sha256"]
    live_dash.assert_no_console_errors()

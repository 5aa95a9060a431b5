"""The lifecycle buttons of the search page on a queued search (the dispatcher is off, so only the
buttons move it): pause, resume, cancel, and a 409 shown as a readable message."""

from __future__ import annotations

import httpx
from harness import Dashboard, OfflineService
from playwright.sync_api import expect
from shapes import ACCURACY, PARAMS, spec_with


def _buttons_enabled(dash: Dashboard) -> dict[str, bool]:
    return {a: dash.page.locator(f"#btn-{a}").is_enabled() for a in ("pause", "resume", "stop", "cancel")}


def test_pause_resume_and_cancel_a_queued_search(dash: Dashboard, offline_service: OfflineService) -> None:
    record, _ = offline_service.storage.create_search(
        spec_with([ACCURACY, PARAMS], name="lifecycle"), "lifecycle"
    )
    dash.open(f"/searches/{record.id}")
    dash.wait_ready()
    page = dash.page
    state = page.locator("#state")
    expect(state).to_have_text("queued")
    assert _buttons_enabled(dash) == {"pause": True, "resume": False, "stop": False, "cancel": True}

    page.click("#btn-pause")
    expect(state).to_have_text("paused")
    expect(page.locator("#state-reason")).to_have_text("paused by user")
    expect(page.locator("#btn-resume")).to_be_enabled()
    assert _buttons_enabled(dash) == {"pause": False, "resume": True, "stop": True, "cancel": True}

    page.click("#btn-resume")
    expect(state).to_have_text("queued")
    expect(page.locator("#btn-pause")).to_be_enabled()

    page.click("#btn-cancel")
    expect(state).to_have_text("canceled")
    for action in ("pause", "resume", "stop", "cancel"):
        expect(page.locator(f"#btn-{action}")).to_be_disabled()
    dash.assert_no_console_errors()


def test_a_refused_action_shows_the_problem_detail(dash: Dashboard, offline_service: OfflineService) -> None:
    record, _ = offline_service.storage.create_search(
        spec_with([ACCURACY, PARAMS], name="lifecycle-409"), "lifecycle-409"
    )
    page = dash.page
    # stop the page's timers (its 2 s polling) so that it keeps showing "queued" after the search is
    # canceled behind its back: the click then meets the server's 409
    page.clock.install()
    page.clock.pause_at("2030-01-01T00:00:00Z")
    dash.open(f"/searches/{record.id}")
    dash.wait_ready()
    expect(page.locator("#state")).to_have_text("queued")
    assert httpx.post(f"{offline_service.url}/api/v1/searches/{record.id}/cancel").status_code == 202

    page.click("#btn-pause")
    message = page.locator("#action-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("Cannot pause this search: ")
    expect(message).to_contain_text("canceled")
    expect(page.locator("#state")).to_have_text("canceled")  # re-read after the refusal
    dash.assert_no_console_errors(allowed=(r"status of 409",))

"""The searches page: the list (name filter, paging) and the new-search form, with the server's
validation errors shown next to the field they concern."""

from __future__ import annotations

import json
import re

import yaml
from harness import Dashboard, OfflineService
from playwright.sync_api import expect
from shapes import ACCURACY, EXAMPLE_SPEC, PARAMS, insert_search, spec_with

# the validation answers the form provokes on purpose (Chromium logs them as resource errors)
EXPECTED_4XX = (r"status of 422", r"status of 400")
DASH = "\N{EN DASH}"  # the pager writes "1<en dash>2 of 6"


def _names(dash: Dashboard) -> list[str]:
    return dash.page.locator("#searches-table tbody a.search-link").all_inner_texts()


def _filter(dash: Dashboard, query: str) -> None:
    dash.page.fill("#search-q", query)
    dash.page.wait_for_selector(f"body[data-query='{query}']", state="attached")


def test_searches_list_filters_and_pages(dash: Dashboard, offline_service: OfflineService) -> None:
    storage = offline_service.storage
    for i in range(5):
        name = f"ListPage-{i}"
        storage.create_search(spec_with([ACCURACY, PARAMS], name=name), name)
    done = insert_search(storage, "listpage-done", [ACCURACY, PARAMS], 3)

    dash.open("/?page_size=2")
    dash.wait_ready()
    page = dash.page
    expect(page.locator("#searches-table")).to_be_visible()

    # the name filter is a case-insensitive substring; pages of 2, newest first
    _filter(dash, "listpage")
    expect(page.locator("#page-info")).to_have_text(f"1{DASH}2 of 6")
    assert _names(dash) == ["listpage-done", "ListPage-4"]
    expect(page.locator("#prev-page")).to_be_disabled()
    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text(f"3{DASH}4 of 6")
    assert _names(dash) == ["ListPage-3", "ListPage-2"]
    page.click("#next-page")
    expect(page.locator("#page-info")).to_have_text(f"5{DASH}6 of 6")
    expect(page.locator("#next-page")).to_be_disabled()
    page.click("#prev-page")
    expect(page.locator("#page-info")).to_have_text(f"3{DASH}4 of 6")

    # a finished search: state, progress and best value per objective, linked to its page
    _filter(dash, "listpage-done")
    row = page.locator("#searches-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("3 / 3 trials")
    expect(row).to_contain_text("accuracy ↑")
    expect(row).to_contain_text("params ↓")
    expect(row.locator("a.search-link")).to_have_attribute("href", f"/searches/{done.search_id}")

    _filter(dash, "no-such-search-anywhere")
    expect(page.locator("#searches-empty")).to_have_text("No searches match “no-such-search-anywhere”")
    expect(page.locator("#searches-table")).to_be_hidden()
    dash.assert_no_console_errors()


def test_new_search_form_shows_server_errors_next_to_fields_then_submits(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    dash.open("/")
    dash.wait_ready()
    page = dash.page
    good = {k: v for k, v in EXAMPLE_SPEC.items() if k != "name"}

    # a wrong metric and a negative budget: each error listed under the spec with its path
    bad = yaml.safe_dump(good | {"objectives": [{"metric": "accuracyy", "direction": "maximize"}]})
    page.fill("#spec-name", "form-bad")
    page.fill("#spec-text", bad.replace("max_trials: 6", "max_trials: -1"))
    page.click("#spec-submit")
    errors = page.locator("#spec-errors li")
    expect(errors.first).to_be_visible()
    expect(page.locator("#spec-errors")).to_contain_text("objectives.0.metric: ")
    expect(page.locator("#spec-errors")).to_contain_text("budget.max_trials: ")
    expect(page.locator("#name-error")).to_have_text("")
    dash.screenshot("-spec-errors")

    # malformed YAML: the server's message under the spec
    page.fill("#spec-text", "objectives: [\n  {metric: accuracy")
    page.click("#spec-submit")
    expect(page.locator("#spec-errors")).to_contain_text("malformed")

    # a name the server refuses: the error next to the name input, nothing under the spec
    page.fill("#spec-text", yaml.safe_dump(good))
    page.fill("#spec-name", "n" * 201)
    page.click("#spec-submit")
    expect(page.locator("#name-error")).not_to_have_text("")
    expect(page.locator("#spec-name")).to_have_class(re.compile("invalid"))
    expect(page.locator("#spec-errors li")).to_have_count(0)
    dash.screenshot("-name-error")

    # a good spec (JSON this time) with a name: created, and its page opens; it stays queued
    page.fill("#spec-name", "form-created")
    page.fill("#spec-text", json.dumps(good, indent=2))
    page.click("#spec-submit")
    page.wait_for_url(re.compile(r"/searches/[0-9a-f]{32}$"))
    dash.wait_ready()
    expect(page.locator("#search-name")).to_have_text("form-created")
    expect(page.locator("#state")).to_have_text("queued")
    dash.assert_no_console_errors(allowed=EXPECTED_4XX)

"""The search page for every shape of search: no trials, one, two and three objectives, all trials
failed, and an unknown id. Data is inserted through the storage layer; the service's dispatcher is off."""

from __future__ import annotations

import re
from typing import Any

from harness import Dashboard, OfflineService
from playwright.sync_api import expect
from shapes import ACCURACY, LATENCY, PARAMS, insert_search, spec_with

NOT_FOUND = r"status of 404"


def _by_role(chart: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [t for t in chart["traces"] if t["role"] == role]


def _points(chart: dict[str, Any], *roles: str) -> int:
    return sum(t["points"] for t in chart["traces"] if t["role"] in roles)


def test_search_without_trials_shows_empty_states(dash: Dashboard, offline_service: OfflineService) -> None:
    record, _ = offline_service.storage.create_search(
        spec_with([ACCURACY, PARAMS], name="shape-empty"), "shape-empty"
    )
    dash.open(f"/searches/{record.id}")
    dash.wait_ready()

    page = dash.page
    expect(page.locator("#search-name")).to_have_text("shape-empty")
    expect(page.locator("#state")).to_have_text("queued")
    expect(page.locator("#progress")).to_contain_text("0 / 6 trials")
    expect(page.locator("#front-empty")).to_contain_text("No trials yet")
    expect(page.locator("#hv-empty")).to_be_visible()
    expect(page.locator("#curves-empty")).to_have_text("No learning curves yet")
    expect(page.locator("#trials-empty")).to_have_text("No trials yet")
    expect(page.locator("#decisions")).to_contain_text("No scheduler decisions yet")
    expect(page.locator("#downloads")).to_contain_text("No Pareto points yet")
    assert dash.chart("front-chart") is None
    # a queued search can be paused or canceled, not resumed or stopped
    expect(page.locator("#btn-pause")).to_be_enabled()
    expect(page.locator("#btn-cancel")).to_be_enabled()
    expect(page.locator("#btn-resume")).to_be_disabled()
    expect(page.locator("#btn-stop")).to_be_disabled()
    dash.assert_no_console_errors()


def test_one_objective_shows_values_by_trial_and_best_over_time(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    inserted = insert_search(offline_service.storage, "shape-one", [ACCURACY], 12, seed=1)
    dash.open(f"/searches/{inserted.search_id}")
    dash.wait_ready()

    page = dash.page
    expect(page.locator("#state")).to_have_text("succeeded")
    front = dash.chart("front-chart")
    assert front is not None and front["svg"]
    assert front["x"] == "trial number" and "accuracy" in front["y"]
    assert _points(front, "feasible", "front") == 12
    assert len(_by_role(front, "front")) == 1 and _by_role(front, "front")[0]["points"] == 1
    expect(page.locator("#pair-controls")).to_be_hidden()
    # hypervolume needs two objectives: the best value over time instead
    expect(page.locator("#hv-title")).to_have_text("Best accuracy over time")
    expect(page.locator("#hv-ref")).to_contain_text("needs two objectives")
    best = dash.chart("hv-chart")
    assert best is not None and best["traces"][0]["points"] >= 1
    expect(page.locator("#trials-table tbody tr")).to_have_count(12)
    curves = dash.chart("curves-chart")
    assert curves is not None and len(curves["traces"]) == 12
    dash.assert_no_console_errors()


def test_two_objectives_front_hover_click_pairs_slider_and_compare(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    storage = offline_service.storage
    inserted = insert_search(
        storage, "shape-two", [ACCURACY, PARAMS], 20, infeasible_every=5, suggestion_for={0}
    )
    other = insert_search(storage, "shape-two-other", [PARAMS, ACCURACY], 10, seed=7)
    dash.open(f"/searches/{inserted.search_id}")
    dash.wait_ready()
    page = dash.page

    # the front: feasible, infeasible and front points in their own traces (legend), a step line
    front = dash.chart("front-chart")
    assert front is not None and front["svg"]
    infeasible = _by_role(front, "infeasible")
    assert len(infeasible) == 1 and infeasible[0]["points"] == len(inserted.numbers["infeasible"]) == 4
    assert set(infeasible[0]["numbers"]) == set(inserted.numbers["infeasible"])
    on_front = _by_role(front, "front")[0]
    assert on_front["points"] >= 1 and infeasible[0]["symbol"] != on_front.get("symbol")
    assert _points(front, "feasible", "front", "infeasible") == 20
    assert _by_role(front, "front-line")[0]["points"] == on_front["points"]
    assert "width_mult = " in on_front["text"][0] and "trial #" in on_front["text"][0]
    expect(page.locator("#front-chart .legend .traces")).to_have_count(3)
    assert "accuracy" in front["x"] and "params" in front["y"]

    # another objective pair: the axes swap
    page.select_option("#obj-x", "1")
    expect(page.locator("#obj-y")).to_have_value("0")
    page.wait_for_function(
        "document.getElementById('front-chart').layout.xaxis.title.text.startsWith('params')"
    )

    # hypervolume with its reference point, learning curves, decisions, downloads, trials
    hv = dash.chart("hv-chart")
    assert hv is not None and _by_role(hv, "hv")[0]["points"] >= 1
    expect(page.locator("#hv-ref")).to_contain_text("Reference point: accuracy = ")
    assert dash.chart("curves-chart") is not None
    expect(page.locator("#decisions table tbody tr")).not_to_have_count(0)
    expect(page.locator("#downloads li")).to_have_count(on_front["points"])
    expect(page.locator("#downloads")).to_contain_text("no model exported")

    # the trials table: sorted by accuracy (best first), then only the infeasible ones
    expect(page.locator("#trials-table tbody tr")).to_have_count(20)
    page.click("#trials-table th[data-sort='accuracy']")
    expect(page.locator("#trials-table th[data-sort='accuracy']")).to_have_attribute(
        "aria-sort", "descending"
    )
    accuracies = [float(v) for v in page.locator("#trials-table tbody tr td:nth-child(4)").all_inner_texts()]
    assert accuracies == sorted(accuracies, reverse=True)
    page.click("#trials-table th[data-sort='accuracy']")
    expect(page.locator("#trials-table th[data-sort='accuracy']")).to_have_attribute("aria-sort", "ascending")
    page.select_option("#trial-state-filter", "infeasible")
    expect(page.locator("#trials-table tbody tr")).to_have_count(4)
    expect(page.locator("#trials-total")).to_contain_text("4 infeasible")

    # the front at an earlier time: fewer points, then all of them again
    with page.expect_response(lambda r: "/points?before=" in r.url and r.ok):  # that time's front
        page.locator("#time-slider").fill("0")
    page.wait_for_function("Number(document.getElementById('front-chart').dataset.points) < 20")
    expect(page.locator("#time-label")).not_to_contain_text("latest")
    page.locator("#time-slider").fill("1000")
    page.wait_for_function("document.getElementById('front-chart').dataset.points === '20'")
    expect(page.locator("#time-label")).to_contain_text("latest")

    # comparing with another search of the same metrics (in another order) overlays its front
    page.select_option("#obj-x", "0")
    page.select_option("#compare-select", other.search_id)
    page.wait_for_function(
        "document.getElementById('front-chart').data.some(t => t.meta && t.meta.role === 'compare')"
    )
    compare = _by_role(dash.chart("front-chart"), "compare")[0]
    assert compare["points"] >= 1 and compare["name"] == "front of shape-two-other"
    dash.screenshot("-compare")
    page.select_option("#compare-select", "")
    page.wait_for_function(
        "!document.getElementById('front-chart').data.some(t => t.meta && t.meta.role === 'compare')"
    )

    # hovering a front point shows its config; clicking it opens the trial page
    page.locator("#front-chart").scroll_into_view_if_needed()
    target = page.evaluate(
        """() => {
          const gd = document.getElementById('front-chart');
          const i = gd.data.findIndex((t) => t.meta && t.meta.role === 'front');
          const t = gd.data[i];
          const fl = gd._fullLayout;
          const box = gd.getBoundingClientRect();
          return {x: box.left + fl._size.l + fl.xaxis.l2p(t.x[0]),
                  y: box.top + fl._size.t + fl.yaxis.l2p(t.y[0]),
                  number: t.customdata[0]};
        }"""
    )
    page.mouse.move(target["x"], target["y"])
    expect(page.locator("#front-chart .hovertext").first).to_contain_text(f"trial #{target['number']}")
    expect(page.locator("#front-chart .hovertext").first).to_contain_text("width_mult")
    dash.screenshot("-hover")
    page.mouse.click(target["x"], target["y"])
    page.wait_for_url(re.compile(rf"/searches/{inserted.search_id}/trials/{target['number']}$"))
    dash.wait_ready()
    expect(page.locator("#trial-title")).to_have_text(f"Trial #{target['number']} of shape-two")
    dash.assert_no_console_errors()


def test_three_objectives_draw_in_3d_and_as_pairs(dash: Dashboard, offline_service: OfflineService) -> None:
    inserted = insert_search(offline_service.storage, "shape-three", [ACCURACY, LATENCY, PARAMS], 15, seed=2)
    dash.open(f"/searches/{inserted.search_id}")
    dash.wait_ready()
    page = dash.page

    front = dash.chart("front-chart")
    assert front is not None
    assert _points(front, "feasible", "front") == 15 and _by_role(front, "front")[0]["points"] >= 1
    if page.evaluate("document.documentElement.dataset.webgl") == "1":
        assert {t["type"] for t in front["traces"]} == {"scatter3d"}
        assert "accuracy" in front["x"] and "latency_ms" in front["y"] and "params" in front["z"]
        expect(page.locator("#front-chart .gl-container canvas").first).to_be_attached()
        expect(page.locator("#pair-controls")).to_be_hidden()
        dash.screenshot("-3d")
        page.uncheck("#view-3d")
    else:  # no WebGL in this browser: objective pairs only
        expect(page.locator("#view-3d-label")).to_be_hidden()
    expect(page.locator("#pair-controls")).to_be_visible()
    page.wait_for_function("document.getElementById('front-chart').data.every(t => t.type === 'scatter')")
    page.select_option("#obj-y", "2")
    page.wait_for_function(
        "document.getElementById('front-chart').layout.yaxis.title.text.startsWith('params')"
    )
    hv = dash.chart("hv-chart")
    assert hv is not None and _by_role(hv, "hv")[0]["points"] >= 1
    expect(page.locator("#hv-ref")).to_contain_text("latency_ms = ")
    dash.assert_no_console_errors()


def test_search_whose_trials_all_failed_says_why(dash: Dashboard, offline_service: OfflineService) -> None:
    inserted = insert_search(offline_service.storage, "shape-failed", [ACCURACY, PARAMS], 4, failed=True)
    dash.open(f"/searches/{inserted.search_id}")
    dash.wait_ready()
    page = dash.page

    expect(page.locator("#state")).to_have_text("failed")
    expect(page.locator("#failed-reason")).to_be_visible()
    expect(page.locator("#failed-reason")).to_contain_text(
        "all 4 trials failed; last: RuntimeError: out of memory"
    )
    expect(page.locator("#front-empty")).to_have_text("No Pareto front: all 4 trial(s) failed.")
    assert dash.chart("front-chart") is None
    expect(page.locator("#hv-empty")).to_be_visible()
    expect(page.locator("#trials-table tbody tr")).to_have_count(4)
    expect(page.locator("#trials-table tbody")).to_contain_text("RuntimeError: out of memory in conv1")
    expect(page.locator("#downloads")).to_contain_text("No Pareto points yet")
    for action in ("pause", "resume", "stop", "cancel"):
        expect(page.locator(f"#btn-{action}")).to_be_disabled()
    dash.assert_no_console_errors()


def test_unknown_search_shows_not_found(dash: Dashboard) -> None:
    unknown = "0" * 32
    dash.open(f"/searches/{unknown}")
    dash.wait_ready()
    expect(dash.page.locator("#page-error")).to_contain_text(f"Search {unknown} not found")
    expect(dash.page.locator("#search-content")).to_be_hidden()
    dash.assert_no_console_errors(allowed=(NOT_FOUND,))


def test_lost_connection_shows_a_banner_until_polling_recovers(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    record, _ = offline_service.storage.create_search(
        spec_with([ACCURACY, PARAMS], name="shape-offline"), "shape-offline"
    )
    dash.open(f"/searches/{record.id}")
    dash.wait_ready()
    page = dash.page
    # the network fails for the live updates (a queued search is polled every 2 s)
    page.route("**/changes*", lambda route: route.abort("internetdisconnected"))
    banner = page.locator("#error-banner")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("Lost the connection to the service; retrying")
    expect(page.locator("#search-name")).to_have_text("shape-offline")  # the page stays as it was
    dash.screenshot("-banner")
    page.unroute("**/changes*")
    expect(banner).to_be_hidden(timeout=15_000)
    dash.assert_no_console_errors(allowed=(r"net::ERR_INTERNET_DISCONNECTED",))

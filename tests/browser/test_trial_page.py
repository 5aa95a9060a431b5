"""The trial page: configuration, state, retries, metrics per fidelity (table and chart), the
strategy's prediction beside the outcome, the scheduler's decisions, and readable messages for a trial
without prediction or an unknown one."""

from __future__ import annotations

from harness import Dashboard, OfflineService
from playwright.sync_api import expect
from shapes import ACCURACY, PARAMS, insert_search, spec_with

from supernas.states import TrialState


def test_trial_page_shows_config_reports_and_prediction_beside_outcome(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    storage = offline_service.storage
    inserted = insert_search(storage, "trial-page", [ACCURACY, PARAMS], 3, suggestion_for={0})
    trial = storage.get_trial(inserted.search_id, 0)
    dash.open(f"/searches/{inserted.search_id}/trials/0")
    dash.wait_ready()
    page = dash.page

    expect(page.locator("#trial-title")).to_have_text("Trial #0 of trial-page")
    expect(page.locator("#trial-state")).to_have_text("succeeded")
    expect(page.locator("#trial-reason")).to_have_text("completed")
    expect(page.locator("#crumb-search")).to_have_attribute("href", f"/searches/{inserted.search_id}")
    # the configuration, one row per key
    config_rows = page.locator("#trial-config tbody tr")
    expect(config_rows).to_have_count(len(trial.config))
    for key, value in trial.config.items():
        shown = f"{int(value):,}" if float(value).is_integer() else str(value)  # as the page formats numbers
        expect(page.locator("#trial-config tbody tr", has_text=key)).to_contain_text(shown)
    # metrics per fidelity: one row per report, and the chart
    expect(page.locator("#trial-reports tbody tr")).to_have_count(2)
    expect(page.locator("#trial-reports thead")).to_contain_text("accuracy")
    chart = dash.chart("reports-chart")
    assert chart is not None and chart["svg"] and chart["traces"][0]["points"] == 2
    page.select_option("#report-metric", "params")
    page.wait_for_function("document.getElementById('reports-chart').layout.yaxis.title.text === 'params'")
    # the prediction beside the outcome, per objective
    expect(page.locator("[data-testid='predicted-accuracy']")).to_have_text("0.9 ± 0.02")
    expect(page.locator("[data-testid='predicted-params']")).to_have_text("8,000 ± 900")
    actual = trial.metrics["accuracy"]
    expect(page.locator("[data-testid='actual-accuracy']")).to_have_text(f"{actual:.4g}")
    expect(page.locator("#suggestion-table")).to_contain_text("botorch")
    expect(page.locator("#suggestion-table")).to_contain_text("acquisition_value")
    expect(page.locator("#artifacts")).to_contain_text("No model")
    expect(page.locator("#trial-retries")).to_be_hidden()  # never retried
    expect(page.locator("#trial-decisions")).to_be_hidden()  # no scheduler decision
    dash.screenshot("-prediction")

    # a trial without a recorded prediction says so; one that was retried lists its retries
    storage.record_trial_retry(inserted.search_id, 1, "worker lost (pid 4242): the actor died", attempt=1)
    dash.open(f"/searches/{inserted.search_id}/trials/1")
    dash.wait_ready()
    expect(page.locator("#trial-retries")).to_contain_text("Retried 1 time")
    expect(page.locator("#trial-retries li")).to_contain_text("attempt 1: worker lost (pid 4242)")
    expect(page.locator("#no-prediction")).to_contain_text("No prediction recorded")
    expect(page.locator("[data-testid='actual-accuracy']")).not_to_have_text("not measured")
    expect(page.locator("#trial-decisions")).to_be_hidden()

    # a trial the scheduler paused (freeze-thaw) shows as paused with its decision; resumed, both
    storage.create_trial(inserted.search_id, 3, trial.config)
    storage.mark_trial_running(inserted.search_id, 3)
    pause = {
        "action": "pause",
        "fidelity": 3,
        "rung": 1,
        "reason": "predicted to trail the front",
        "predicted": {"fidelity": 8, "mean": 0.91, "std": 0.03},
        "acquisition": 0.42,
    }
    storage.record_trial_decision(inserted.search_id, 3, pause)
    dash.open(f"/searches/{inserted.search_id}/trials/3")
    dash.wait_ready()
    expect(page.locator("#trial-state")).to_have_text("paused")
    expect(page.locator("#trial-state")).to_have_class("badge state-big paused")
    expect(page.locator("#trial-decisions")).to_be_visible()
    expect(page.locator("#decisions-table thead")).to_contain_text("Acquisition")
    row = page.locator("#decisions-table tbody tr")
    expect(row).to_have_count(1)
    for shown in ("pause", "3", "1", "0.91 ± 0.03 (at 8)", "0.42", "predicted to trail the front"):
        expect(row).to_contain_text(shown)
    storage.record_trial_decision(
        inserted.search_id, 3, {"action": "resume", "fidelity": 3, "reason": "promising again"}
    )
    page.reload()
    dash.wait_ready()
    expect(page.locator("#trial-state")).to_have_text("paused")  # chosen: it waits for a worker
    storage.mark_trial_running(inserted.search_id, 3)  # Ray Tune starts it again
    page.reload()
    dash.wait_ready()
    expect(page.locator("#trial-state")).to_have_text("running")
    rows = page.locator("#decisions-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-action", "resume")
    expect(rows.nth(1)).to_contain_text("promising again")
    dash.screenshot("-decisions")
    dash.assert_no_console_errors()


def test_unknown_trial_shows_not_found(dash: Dashboard, offline_service: OfflineService) -> None:
    inserted = insert_search(offline_service.storage, "trial-missing", [ACCURACY], 1)
    dash.open(f"/searches/{inserted.search_id}/trials/99")
    dash.wait_ready()
    expect(dash.page.locator("#page-error")).to_contain_text(
        f"Trial 99 of search {inserted.search_id} not found"
    )
    dash.assert_no_console_errors(allowed=(r"status of 404",))


def test_trial_page_shows_the_quantization_policy_and_the_estimate_gap(
    dash: Dashboard, offline_service: OfflineService
) -> None:
    storage = offline_service.storage
    spec = spec_with([ACCURACY], name="quant-page", quantization={"calibration_examples": [64]})
    record, _ = storage.create_search(spec, "quant-page")
    config = {
        "depth_s0": 1,
        "depth_s1": 1,
        "width_mult": 0.5,
        "kernel_size": 3,
        "qw_stem": "float",
        "qw_s0_b0": "int8",
        "qa_s0_b0": "int8",
        "qw_s1_b0": "int4",
        "qa_s1_b0": "float",
        "qw_head": "int8",
        "qa_head": "float",
    }
    storage.create_trial(record.id, 0, config, None)
    storage.mark_trial_running(record.id, 0)
    metrics = {"accuracy": 0.95, "fake_quant_accuracy": 0.9525, "latency_ms": 0.05, "model_bytes": 12000}
    storage.record_trial_report(record.id, 0, 0, 0.0, metrics)
    storage.finish_trial(record.id, 0, TrialState.SUCCEEDED, "completed", metrics=metrics)
    dash.open(f"/searches/{record.id}/trials/0")
    dash.wait_ready()
    page = dash.page

    expect(page.locator("#trial-policy")).to_be_visible()
    expect(page.locator("#policy-table tbody tr")).to_have_count(4)
    expect(page.locator("#policy-table tr[data-unit='stem']")).to_contain_text("floatfloat")
    expect(page.locator("#policy-table tr[data-unit='s0_b0']")).to_contain_text("int8int8")
    expect(page.locator("#policy-table tr[data-unit='s1_b0']")).to_contain_text("int4float")
    expect(page.locator("#policy-summary")).to_contain_text("3 of 4 layers quantized")
    expect(page.locator("#policy-summary")).to_contain_text("gap 0.25 points")
    dash.screenshot("-quantization")

    # a search without quantization shows no policy card
    plain = insert_search(storage, "plain", [ACCURACY], 1)
    dash.open(f"/searches/{plain.search_id}/trials/0")
    dash.wait_ready()
    expect(page.locator("#trial-policy")).to_be_hidden()

"""The dashboard load benchmark's small path: both dashboards load a 300-trial search in Chromium, the JSON
holds positive timings and the ratio; the bulk-inserted Optuna study equals one built by add_trials."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from benchmarks import dashboard_load, dashboard_load_data
from service.storage import Storage

TRIALS = 300


def _positive(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("dashboard-load")
    doc = dashboard_load.main(["--trials", str(TRIALS), "--repeats", "1", "--out", str(out)])
    return doc, json.loads((out / dashboard_load.RESULT_FILE).read_text())


def test_result_has_positive_timings_for_both_tools_and_the_ratio(small_run: tuple[dict, dict]) -> None:
    doc, on_disk = small_run
    assert on_disk == json.loads(json.dumps(doc))
    assert on_disk["settings"]["trials"] == TRIALS and on_disk["settings"]["repeats"] == 1
    assert sum(on_disk["settings"]["trial_states"].values()) == TRIALS
    for tool in ("supernas", "optuna_dashboard"):
        result = on_disk[tool]
        assert len(result["load"]["seconds"]) == 1
        assert _positive(result["load"]["median_s"]) and _positive(result["load"]["min_s"])
    supernas = on_disk["supernas"]
    assert supernas["all_sections"]["median_s"] >= supernas["load"]["median_s"]
    assert set(supernas["endpoints"]) == {path or "/" for path in dashboard_load.SUPERNAS_ENDPOINTS}
    for timing in supernas["endpoints"].values():
        assert _positive(timing["median_s"]) and timing["bytes"] >= timing["wire_bytes"] > 0
    assert supernas["page_errors"] == []
    assert _positive(on_disk["ratio"])
    expected = on_disk["optuna_dashboard"]["load"]["median_s"] / supernas["load"]["median_s"]
    assert on_disk["ratio"] == pytest.approx(expected)


def test_the_two_searches_hold_the_same_trials(tmp_path: Path) -> None:
    trials = dashboard_load_data.make_trials(60)
    states = {state: sum(t.state == state for t in trials) for state in ("succeeded", "infeasible", "failed")}
    url, search_id = dashboard_load_data.build_supernas(tmp_path / "supernas.db", trials)
    storage = Storage(url)
    try:
        stored = storage.all_trials(search_id)
        assert [t.number for t in stored] == list(range(60))
        assert {s: sum(t.state.value == s for t in stored) for s in states} == states
        assert all(t.config == trials[t.number].config for t in stored)
        assert all(
            len(t.reports) == (0 if t.state.value == "failed" else dashboard_load_data.REPORTS)
            for t in stored
        )
    finally:
        storage.dispose()

    bulk_url, _ = dashboard_load_data.build_optuna(tmp_path / "bulk.db", trials, bulk=True)
    public_url, _ = dashboard_load_data.build_optuna(tmp_path / "public.db", trials, bulk=False)
    bulk = optuna.load_study(study_name="dashboard-load", storage=bulk_url)
    public = optuna.load_study(study_name="dashboard-load", storage=public_url)
    assert bulk.directions == public.directions and bulk.metric_names == ["accuracy", "params"]
    fields = (
        "number",
        "state",
        "values",
        "params",
        "distributions",
        "user_attrs",
        "system_attrs",
        "intermediate_values",
        "datetime_start",
        "datetime_complete",
    )
    for a, b in zip(bulk.trials, public.trials, strict=True):
        assert all(getattr(a, f) == getattr(b, f) for f in fields), a.number
    infeasible = [t for t in bulk.trials if t.system_attrs.get("constraints", [0])[0] > 0]
    assert len(infeasible) == states["infeasible"]
    assert sum(t.state == optuna.trial.TrialState.FAIL for t in bulk.trials) == states["failed"]

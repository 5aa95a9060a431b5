"""The dashboard's API in-process (dispatcher off): name filter, spec validation, lifecycle verbs,
chart points, hypervolume, learning curves, scheduler decisions, sorting and the change feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.storage import Storage
from supernas.states import SearchState, TrialState

SPEC = {
    "name": "dash",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [
        {"metric": "accuracy", "direction": "maximize"},
        {"metric": "params", "direction": "minimize"},
    ],
    "budget": {"max_trials": 10, "max_parallel": 1},
    "fidelity": {"finetune_epochs": 3},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
}


def _storage(client: TestClient) -> Storage:
    return client.app.state.storage  # type: ignore[attr-defined]


def _create(client: TestClient, **changes: object) -> str:
    response = client.post("/api/v1/searches", json=SPEC | changes)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _finish(
    storage: Storage,
    search_id: str,
    number: int,
    state: TrialState,
    accuracy: float,
    params: float,
    reason=None,
) -> None:
    storage.create_trial(search_id, number, {"depth": number})
    storage.mark_trial_running(search_id, number)
    for step in (1, 2, 3):
        metrics = {"accuracy": accuracy - 0.1 * (3 - step), "params": params}
        storage.record_trial_report(search_id, number, step, float(step - 1), metrics)
    storage.finish_trial(search_id, number, state, reason, None, {"accuracy": accuracy, "params": params})


def test_name_filter_ignores_case_and_treats_wildcards_literally(client: TestClient) -> None:
    _create(client, name="ResNet sweep")
    _create(client, name="mlp_50%")
    _create(client, name="other")

    def names(q: str) -> list[str]:
        return sorted(s["name"] for s in client.get("/api/v1/searches", params={"q": q}).json()["items"])

    assert names("resnet") == ["ResNet sweep"]
    assert names("_50%") == ["mlp_50%"]
    assert names("%") == ["mlp_50%"]
    assert names("nothing") == []


def test_validate_accepts_yaml_and_reports_field_errors(client: TestClient) -> None:
    yaml_spec = "task: digits\nspace: {family: elastic_mlp}\n" + (
        "objectives:\n  - {metric: accuracy, direction: maximize}\n"
    )
    ok = client.post(
        "/api/v1/searches/validate", content=yaml_spec, headers={"content-type": "application/yaml"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["spec"]["budget"]["max_trials"] > 0  # defaults filled in
    bad = client.post(
        "/api/v1/searches/validate",
        content=yaml_spec.replace("accuracy", "happiness"),
        headers={"content-type": "application/yaml"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"][:3] == ["body", "objectives", 0]
    malformed = client.post(
        "/api/v1/searches/validate", content="task: [digits", headers={"content-type": "application/yaml"}
    )
    assert malformed.status_code == 400
    assert "malformed YAML" in malformed.json()["detail"]
    as_json = client.post(
        "/api/v1/searches/validate",
        content=json.dumps(ok.json()["spec"]),
        headers={"content-type": "application/json"},
    )
    assert as_json.status_code == 200 and as_json.json()["spec"] == ok.json()["spec"]
    not_mapping = client.post("/api/v1/searches/validate", content="- 1\n- 2\n")
    assert not_mapping.status_code == 422
    assert client.get("/api/v1/searches").json()["total"] == 0  # validation creates nothing


def test_pause_resume_stop_on_queued_and_terminal_searches(client: TestClient) -> None:
    search_id = _create(client)
    paused = client.post(f"/api/v1/searches/{search_id}/pause")
    assert paused.status_code == 202 and paused.json()["state"] == "paused"
    assert client.post(f"/api/v1/searches/{search_id}/pause").json()["state"] == "paused"  # idempotent
    resumed = client.post(f"/api/v1/searches/{search_id}/resume")
    assert resumed.status_code == 202 and resumed.json()["state"] == "queued"
    stopped = client.post(f"/api/v1/searches/{search_id}/stop")
    assert stopped.json()["state"] == "succeeded" and stopped.json()["state_reason"] == "stopped by user"
    for verb in ("pause", "resume", "stop"):
        conflict = client.post(f"/api/v1/searches/{search_id}/{verb}")
        assert conflict.status_code == 409, verb
        assert "succeeded" in conflict.json()["detail"]
    assert client.post("/api/v1/searches/" + "0" * 32 + "/pause").status_code == 404


def test_running_search_winds_down_on_pause_or_stop(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    storage.claim_next_queued_search()
    body = client.post(f"/api/v1/searches/{search_id}/pause").json()
    assert (body["state"], body["requested_action"]) == ("running", "pause")
    storage.set_search_progress(search_id, "trial 3 running")  # progress never hides the request
    assert client.get(f"/api/v1/searches/{search_id}").json()["state_reason"].startswith("pause requested")
    withdrawn = client.post(f"/api/v1/searches/{search_id}/resume").json()
    assert (withdrawn["state"], withdrawn["requested_action"]) == ("running", None)
    stopping = client.post(f"/api/v1/searches/{search_id}/stop").json()
    assert (stopping["state"], stopping["requested_action"]) == ("stopping", "stop")
    assert client.post(f"/api/v1/searches/{search_id}/resume").status_code == 409
    assert storage.recover_interrupted_searches() == []  # a restart honours the stop
    after = client.get(f"/api/v1/searches/{search_id}").json()
    assert (after["state"], after["state_reason"]) == ("succeeded", "stopped by user")


def test_points_front_infeasible_and_earlier_time(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    storage.claim_next_queued_search()
    _finish(storage, search_id, 0, TrialState.SUCCEEDED, 0.90, 1000)  # front
    _finish(storage, search_id, 1, TrialState.SUCCEEDED, 0.80, 2000)  # dominated by 0
    _finish(storage, search_id, 2, TrialState.INFEASIBLE, 0.99, 10, reason="params 10 > 5")
    _finish(storage, search_id, 3, TrialState.SUCCEEDED, 0.70, 100)  # front
    storage.create_trial(search_id, 4, {"depth": 4})
    storage.finish_trial(search_id, 4, TrialState.FAILED, "boom")
    body = client.get(f"/api/v1/searches/{search_id}/points").json()
    assert body["numbers"] == [0, 1, 2, 3]
    assert body["on_front"] == [True, False, False, True]
    assert body["feasible"] == [True, True, False, True]
    assert body["reasons"][2] == "params 10 > 5"
    assert body["values"][3] == [0.7, 100.0]
    assert body["configs"][1] == {"depth": 1}
    assert [o["metric"] for o in body["objectives"]] == ["accuracy", "params"]
    first = storage.get_trial(search_id, 0).finished_at
    early = client.get(f"/api/v1/searches/{search_id}/points", params={"before": first.isoformat()}).json()
    assert early["numbers"] == []  # nothing finished strictly before trial 0
    second = storage.get_trial(search_id, 1).finished_at
    early = client.get(f"/api/v1/searches/{search_id}/points", params={"before": second.isoformat()}).json()
    assert early["numbers"] == [0] and early["on_front"] == [True]
    assert early["last_finished_s"] == body["last_finished_s"]  # the slider's range stays whole


def test_hypervolume_series_against_hand_computation(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    storage.claim_next_queued_search()
    _finish(storage, search_id, 0, TrialState.SUCCEEDED, 0.9, 1000)
    _finish(storage, search_id, 1, TrialState.SUCCEEDED, 0.8, 2000)  # adds nothing
    _finish(storage, search_id, 2, TrialState.SUCCEEDED, 0.7, 100)
    body = client.get(f"/api/v1/searches/{search_id}/hypervolume").json()
    # reference: worst accuracy 0.7 - 0.1 * 0.2 = 0.68; worst params 2000 + 0.1 * 1900 = 2190
    assert body["reference_point"] == pytest.approx([0.68, 2190.0])
    assert [s["trial_number"] for s in body["series"]] == [0, 2]
    first = (0.9 - 0.68) * (2190 - 1000)
    assert body["series"][0]["hypervolume"] == pytest.approx(first)
    assert body["series"][1]["hypervolume"] == pytest.approx(first + (0.7 - 0.68) * (1000 - 100))
    empty_id = _create(client)
    assert client.get(f"/api/v1/searches/{empty_id}/hypervolume").json() == {
        "objectives": body["objectives"],
        "reference_point": None,
        "series": [],
    }


def test_curves_and_decisions(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    storage.claim_next_queued_search()
    _finish(storage, search_id, 0, TrialState.SUCCEEDED, 0.9, 1000)
    storage.create_trial(search_id, 1, {"depth": 1})
    storage.record_trial_report(search_id, 1, 1, 0.0, {"accuracy": 0.3, "params": 5})
    storage.finish_trial(search_id, 1, TrialState.PRUNED, "stopped by the scheduler at fidelity 0 of 3")
    curves = client.get(f"/api/v1/searches/{search_id}/curves", params={"metric": "accuracy"}).json()
    by_number = {c["number"]: c for c in curves["trials"]}
    assert by_number[0]["on_front"] and by_number[0]["fidelities"] == [0.0, 1.0, 2.0]
    assert by_number[0]["values"] == pytest.approx([0.7, 0.8, 0.9])
    assert by_number[1]["values"] == [0.3] and not by_number[1]["on_front"]
    assert client.get(f"/api/v1/searches/{search_id}/curves", params={"metric": "joy"}).status_code == 422
    decisions = client.get(f"/api/v1/searches/{search_id}/decisions").json()["items"]
    kinds = [(d["trial_number"], d["decision"]) for d in decisions]
    # ASHA rungs at reports 1 and 2 (max 4 reports); trial 0 passed both, trial 1 was stopped at 1
    assert kinds == [(1, "stopped"), (0, "completed"), (0, "promoted"), (0, "promoted")]
    assert decisions[0]["reason"].startswith("stopped by the scheduler")


def test_trials_sorted_by_metric_state_and_paged(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    for number, accuracy in enumerate([0.5, 0.9, 0.7]):
        _finish(storage, search_id, number, TrialState.SUCCEEDED, accuracy, 10)
    storage.create_trial(search_id, 3, {"depth": 3})  # no metrics: sorts last either way
    url = f"/api/v1/searches/{search_id}/trials"
    desc = client.get(url, params={"sort": "accuracy", "order": "desc", "page_size": 2}).json()
    assert [t["number"] for t in desc["items"]] == [1, 2] and desc["total"] == 4
    rest = client.get(
        url, params={"sort": "accuracy", "order": "desc", "page_token": desc["next_page_token"]}
    )
    assert [t["number"] for t in rest.json()["items"]] == [0, 3]
    asc = client.get(url, params={"sort": "accuracy", "order": "asc"}).json()
    assert [t["number"] for t in asc["items"]] == [0, 2, 1, 3]
    by_state = client.get(url, params={"sort": "state", "order": "asc"}).json()
    assert by_state["items"][0]["state"] == "pending"
    assert client.get(url, params={"sort": "config; DROP TABLE trials"}).status_code == 422


def test_change_feed_sends_only_new_or_changed_trials(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    url = f"/api/v1/searches/{search_id}/changes"
    start = client.get(url).json()
    assert start["trials"] == [] and start["search"]["id"] == search_id
    storage.create_trial(search_id, 0, {"depth": 0})
    storage.create_trial(search_id, 1, {"depth": 1})
    first = client.get(url, params={"after": start["cursor"]}).json()
    assert [t["number"] for t in first["trials"]] == [0, 1] and not first["has_more"]
    assert client.get(url, params={"after": first["cursor"]}).json()["trials"] == []  # nothing new
    storage.record_trial_report(search_id, 1, 1, 0.0, {"accuracy": 0.5})
    changed = client.get(url, params={"after": first["cursor"]}).json()
    assert [(t["number"], t["state"]) for t in changed["trials"]] == [(1, "running")]
    assert changed["search"]["trial_counts"]["running"] == 1
    assert client.get(url, params={"after": "not-a-cursor"}).status_code == 422
    points_cursor = client.get(f"/api/v1/searches/{search_id}/points").json()["cursor"]
    assert points_cursor == changed["cursor"]


def test_search_progress_and_model_formats(client: TestClient, tmp_path: Path) -> None:
    storage = _storage(client)
    search_id = _create(client)
    storage.claim_next_queued_search()
    model_dir = tmp_path / "artifacts" / "searches" / search_id / "trial0"
    model_dir.mkdir(parents=True)
    (model_dir / "model.onnx").write_bytes(b"onnx")
    storage.create_trial(search_id, 0, {"depth": 0})
    storage.finish_trial(
        search_id,
        0,
        TrialState.SUCCEEDED,
        None,
        str(model_dir.relative_to(tmp_path / "artifacts")),
        {"accuracy": 1},
    )
    body = client.get(f"/api/v1/searches/{search_id}").json()
    assert body["progress"]["trials_done"] == 1 and body["progress"]["max_trials"] == 10
    assert body["progress"]["elapsed_s"] >= 0
    trial = client.get(f"/api/v1/searches/{search_id}/trials/0").json()
    assert trial["model_formats"] == ["onnx"]
    storage.set_search_state(search_id, SearchState.SUCCEEDED, "done")


def test_budget_changes_are_validated_and_stored(client: TestClient) -> None:
    search_id = _create(client)
    url = f"/api/v1/searches/{search_id}/budget"
    changed = client.patch(url, json={"max_trials": 25, "max_failed": 3})
    assert changed.status_code == 200, changed.text
    budget = changed.json()["spec"]["budget"]
    assert (budget["max_trials"], budget["max_failed"], budget["max_parallel"]) == (25, 3, 1)
    assert changed.json()["progress"]["max_trials"] == 25
    cleared = client.patch(url, json={"max_duration_s": None}).json()["spec"]["budget"]
    assert cleared["max_duration_s"] is None and cleared["max_trials"] == 25
    for body, field in (
        ({"max_trials": 0}, "max_trials"),
        ({"max_parallel": None}, "max_parallel"),
        ({"max_trials": 5, "min_trials": 1}, "min_trials"),
    ):
        refused = client.patch(url, json=body)
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["loc"][:2] == ["body", field]
    client.post(f"/api/v1/searches/{search_id}/cancel")
    assert client.patch(url, json={"max_trials": 30}).status_code == 409


def _events(
    client: TestClient, url: str, headers: dict[str, str] | None = None
) -> list[tuple[str, str, dict]]:
    """(id, event, data) of each server-sent event until the stream ends."""
    events, current = [], {}
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append((current.get("id"), current.get("event"), json.loads(current["data"])))
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value
    return events


def test_server_sent_events_stream_changes_then_end_and_resume(client: TestClient) -> None:
    storage = _storage(client)
    search_id = _create(client)
    _finish(storage, search_id, 0, TrialState.SUCCEEDED, 0.9, 1000)
    client.post(f"/api/v1/searches/{search_id}/cancel")  # queued: canceled at once, so the stream ends
    events = _events(client, f"/api/v1/searches/{search_id}/events?after=" + _start_cursor(client, search_id))
    kinds = [event for _, event, _ in events]
    assert kinds[-1] == "end" and events[-1][2] == {"state": "canceled"}
    sent = [t["number"] for _, event, data in events if event == "changes" for t in data["trials"]]
    assert sent == [0]
    last_id = [i for i, event, _ in events if event == "changes"][-1]
    resumed = _events(client, f"/api/v1/searches/{search_id}/events", headers={"Last-Event-ID": last_id})
    assert [t for _, event, data in resumed if event == "changes" for t in data["trials"]] == []
    bad = client.get(f"/api/v1/searches/{search_id}/events", params={"after": "nope"})
    assert bad.status_code == 422


def _start_cursor(client: TestClient, search_id: str) -> str:
    """A cursor from before any trial: what a client that saw nothing yet holds."""
    fresh_id = _create(client)
    return client.get(f"/api/v1/searches/{fresh_id}/changes").json()["cursor"]

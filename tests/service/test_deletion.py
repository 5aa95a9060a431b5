"""Deleting to free the disk. ``DELETE /api/v1/searches/{id}``: an ended search goes with its trials,
reports and files; a search that has not ended, another search's records and files, and the supernet
it trained all stay. ``DELETE /api/v1/supernets/{id}``: a supernet that has ended training goes with
its files, unless a search that has not ended names it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from problem_json import problem_of
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.storage.models import TrialReportRow, TrialRow
from supernas.states import SearchState, SupernetState, TrialState

SPEC = {
    "name": "deletion",
    "task": "digits",
    "space": {"family": "elastic_cnn"},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "budget": {"max_trials": 4, "max_parallel": 1},
}


def _search_with_trials_and_files(client: TestClient, artifacts: Path, name: str) -> tuple[str, list[Path]]:
    """A running search with two reported trials and the files a run writes: a trial's model and the
    Tune experiments of two attempts."""
    search_id = client.post("/api/v1/searches", json=SPEC | {"name": name}).json()["id"]
    storage = client.app.state.storage
    storage.set_search_state(search_id, SearchState.RUNNING, "test")
    for number in range(2):
        storage.create_trial(search_id, number, {"depth": [1, 1], "width_mult": 1.0, "kernel_size": 3})
        storage.record_trial_report(search_id, number, 1, 1.0, {"accuracy": 0.5 + number / 10})
        storage.finish_trial(search_id, number, TrialState.SUCCEEDED, None, None)
    files = [
        artifacts / "searches" / search_id / "trials" / "0" / "model.torchscript.pt",
        artifacts / "ray_results" / f"{search_id}-attempt0" / "experiment_state.json",
        artifacts / "ray_results" / f"{search_id}-attempt1" / "experiment_state.json",
    ]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"written by a run")
    return search_id, files


def _stored_rows(client: TestClient) -> tuple[int, int]:
    """Trials and trial reports in the database, all searches together."""
    with Session(client.app.state.storage.engine) as s:
        return s.scalar(select(func.count()).select_from(TrialRow)), s.scalar(
            select(func.count()).select_from(TrialReportRow)
        )


def test_an_ended_search_is_deleted_with_its_trials_reports_and_files(
    client: TestClient, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    search_id, files = _search_with_trials_and_files(client, artifacts, "to-delete")
    kept_id, kept_files = _search_with_trials_and_files(client, artifacts, "to-keep")
    assert _stored_rows(client) == (4, 4)

    running = problem_of(client.delete(f"/api/v1/searches/{search_id}"), 409)
    assert "is running; cancel or stop it" in running["detail"]
    assert client.get(f"/api/v1/searches/{search_id}").status_code == 200
    assert all(path.exists() for path in files), "nothing is removed while the search runs"

    client.app.state.storage.set_search_state(search_id, SearchState.SUCCEEDED, "trial budget spent")
    deleted = client.delete(f"/api/v1/searches/{search_id}")
    assert deleted.status_code == 204 and deleted.content == b""

    problem_of(client.get(f"/api/v1/searches/{search_id}"), 404)
    problem_of(client.get(f"/api/v1/searches/{search_id}/trials"), 404)
    problem_of(client.delete(f"/api/v1/searches/{search_id}"), 404)
    assert not (artifacts / "searches" / search_id).exists()
    assert not any(path.exists() for path in files)
    listed = client.get("/api/v1/searches").json()["items"]
    assert [s["id"] for s in listed] == [kept_id]

    assert _stored_rows(client) == (2, 2), "the other search's trials and reports stay"
    kept_trials = client.get(f"/api/v1/searches/{kept_id}/trials").json()["items"]
    assert [t["number"] for t in kept_trials] == [0, 1]
    assert all(path.exists() for path in kept_files)


def test_a_queued_or_paused_search_is_refused_and_a_canceled_one_deleted(client: TestClient) -> None:
    search_id = client.post("/api/v1/searches", json=SPEC).json()["id"]
    assert "is queued" in problem_of(client.delete(f"/api/v1/searches/{search_id}"), 409)["detail"]
    assert client.post(f"/api/v1/searches/{search_id}/pause").json()["state"] == "paused"
    assert "is paused" in problem_of(client.delete(f"/api/v1/searches/{search_id}"), 409)["detail"]
    assert client.post(f"/api/v1/searches/{search_id}/cancel").json()["state"] == "canceled"
    assert client.delete(f"/api/v1/searches/{search_id}").status_code == 204
    problem_of(client.get(f"/api/v1/searches/{search_id}"), 404)


def test_the_supernet_a_deleted_search_trained_is_kept(client: TestClient) -> None:
    created = client.post("/api/v1/searches", json=SPEC).json()
    supernet_id = created["supernet_id"]
    assert supernet_id is not None
    client.post(f"/api/v1/searches/{created['id']}/cancel")
    assert client.delete(f"/api/v1/searches/{created['id']}").status_code == 204
    supernet = client.get(f"/api/v1/supernets/{supernet_id}")
    assert supernet.status_code == 200, supernet.text


def test_unknown_and_malformed_ids_are_404(client: TestClient) -> None:
    problem_of(client.delete(f"/api/v1/searches/{'f' * 32}"), 404)
    problem_of(client.delete("/api/v1/searches/not-an-id"), 404)


def test_a_supernet_is_deleted_once_no_search_that_has_not_ended_names_it(
    client: TestClient, tmp_path: Path
) -> None:
    space = {"family": "elastic_cnn", "stage_channels": [8, 16], "depth": [1, 2]}
    supernet_id = client.post("/api/v1/supernets", json={"task": "digits", "space": space}).json()["id"]
    assert "is queued" in problem_of(client.delete(f"/api/v1/supernets/{supernet_id}"), 409)["detail"]
    storage = client.app.state.storage
    storage.set_supernet_state(supernet_id, SupernetState.READY, "trained", {"data_fingerprint": "f" * 64})
    weights = tmp_path / "artifacts" / "supernets" / supernet_id / "epochs" / "1.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")

    spec = {"task": "digits", "supernet_id": supernet_id, "objectives": SPEC["objectives"]}
    search_id = client.post("/api/v1/searches", json=spec).json()["id"]
    in_use = problem_of(client.delete(f"/api/v1/supernets/{supernet_id}"), 409)
    assert in_use["detail"] == f"supernet {supernet_id} is used by searches that have not ended: {search_id}"
    assert weights.exists()

    client.post(f"/api/v1/searches/{search_id}/cancel")
    assert client.delete(f"/api/v1/supernets/{supernet_id}").status_code == 204
    problem_of(client.get(f"/api/v1/supernets/{supernet_id}"), 404)
    assert not (tmp_path / "artifacts" / "supernets" / supernet_id).exists()
    assert client.get(f"/api/v1/searches/{search_id}").json()["state"] == "canceled", "the ended search stays"
    problem_of(client.delete(f"/api/v1/supernets/{supernet_id}"), 404)
    problem_of(client.delete("/api/v1/supernets/sn_not-an-id"), 404)

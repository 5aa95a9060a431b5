"""The ``supernas`` CLI against a live service: submit and wait, status, trials, download, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from service_process import ServiceHandle, run_cli, running_service

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHandle]:
    data_dir = tmp_path_factory.mktemp("cli-service")
    database_url = f"sqlite:///{data_dir}/supernas.db"
    with running_service(data_dir, database_url, extra_env={"SUPERNAS_AUTH": "true"}) as handle:
        _TOKEN["value"] = handle.admin_token()
        yield handle


_TOKEN = {"value": ""}  # the service's printed admin token, sent as SUPERNAS_TOKEN


def _artifacts(service: ServiceHandle) -> Path:
    return service.log_path.parent / "artifacts"  # the service's data dir holds its log


def cli(*args: str, url: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, url=url, token=_TOKEN["value"] if token is None else token)


def test_submit_wait_status_trials_and_download(service: ServiceHandle, tmp_path: Path) -> None:
    submitted = cli("submit", str(EXAMPLES / "digits-small.json"), "--wait", url=service.url)
    assert submitted.returncode == 0, submitted.stderr
    lines = submitted.stdout.splitlines()
    search_id = lines[0]
    assert len(search_id) == 32
    assert any("[succeeded]" in line for line in lines), submitted.stdout
    assert any(line.startswith("Pareto front (maximize accuracy, minimize params)") for line in lines)

    status = cli("status", search_id, url=service.url)
    assert status.returncode == 0 and "[succeeded] 6/6 trials done (6 succeeded)" in status.stdout
    paused = cli("pause", search_id, url=service.url)
    assert paused.returncode == 2 and "succeeded; cannot pause it" in paused.stderr

    trials = cli("trials", search_id, url=service.url)
    assert trials.returncode == 0
    assert len([line for line in trials.stdout.splitlines() if "succeeded" in line]) == 6

    downloaded = cli("download", search_id, "--out", str(tmp_path), url=service.url)
    assert downloaded.returncode == 0, downloaded.stderr
    model_path = Path(downloaded.stdout.strip())
    manifest = json.loads(
        model_path.with_name(model_path.name.replace("torchscript.pt", "manifest.json")).read_text()
    )
    model = torch.jit.load(str(model_path))
    assert model(torch.zeros(2, *manifest["input_shape"][1:])).shape == (2, 10)

    search_files = _artifacts(service) / "searches" / search_id
    tune_runs = _artifacts(service) / "ray_results"
    assert (search_files / "trials").is_dir() and list(tune_runs.glob(f"{search_id}-attempt*"))
    deleted = cli("delete", search_id, url=service.url)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted search {search_id}", deleted
    assert not search_files.exists() and not list(tune_runs.glob(f"{search_id}-attempt*"))
    gone = cli("status", search_id, url=service.url)
    assert gone.returncode == 2 and "no search with id" in gone.stderr
    assert model_path.exists(), "a downloaded model is the user's: deleting the search leaves it"


def test_invalid_spec_is_reported_with_the_field_and_exit_code_2(
    service: ServiceHandle, tmp_path: Path
) -> None:
    spec = json.loads((EXAMPLES / "digits-small.json").read_text())
    spec["budget"]["max_trials"] = -5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    result = cli("submit", str(path), url=service.url)
    assert result.returncode == 2
    assert "budget.max_trials" in result.stderr


def test_unknown_search_and_unreadable_spec(service: ServiceHandle, tmp_path: Path) -> None:
    result = cli("status", "f" * 32, url=service.url)
    assert result.returncode == 2 and "no search with id" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: [digits\n")
    result = cli("submit", str(broken), url=service.url)
    assert result.returncode == 2 and "cannot read spec" in result.stderr
    for verb in ("pause", "resume", "stop", "cancel", "delete"):
        result = cli(verb, "f" * 32, url=service.url)
        assert result.returncode == 2 and "no search with id" in result.stderr, verb


def test_train_a_supernet_reuse_it_in_a_search_and_download_onnx(
    service: ServiceHandle, tmp_path: Path
) -> None:
    trained = cli("supernet-train", str(EXAMPLES / "supernets" / "wine-mlp.yaml"), "--wait", url=service.url)
    assert trained.returncode == 0, trained.stderr
    supernet_id = trained.stdout.splitlines()[0]
    assert supernet_id.startswith("sn_") and "ready: supernet trained" in trained.stderr
    listed = cli("supernets", "--task", "wine", url=service.url)
    assert listed.returncode == 0 and supernet_id in listed.stdout and "ready" in listed.stdout

    spec = yaml.safe_load((EXAMPLES / "wine-mlp-reuse.yaml").read_text()) | {"supernet_id": supernet_id}
    spec["budget"] = {"max_trials": 3, "max_parallel": 2}
    spec_path = tmp_path / "reuse.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    submitted = cli("submit", str(spec_path), "--wait", url=service.url)
    assert submitted.returncode == 0, submitted.stderr
    search_id = submitted.stdout.splitlines()[0]

    downloaded = cli("download", search_id, "--format", "onnx", "--out", str(tmp_path), url=service.url)
    assert downloaded.returncode == 0, downloaded.stderr
    onnx_path = Path(downloaded.stdout.strip())
    assert onnx_path.suffix == ".onnx"
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.run(None, {session.get_inputs()[0].name: np.zeros((2, 13), np.float32)})[0].shape == (2, 3)

    weights = _artifacts(service) / "supernets" / supernet_id
    assert weights.is_dir()
    deleted = cli("supernet-delete", supernet_id, url=service.url)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted supernet {supernet_id}", deleted
    assert not weights.exists()
    assert supernet_id not in cli("supernets", "--task", "wine", url=service.url).stdout
    assert cli("supernet-delete", supernet_id, url=service.url).returncode == 2


def test_upload_a_dataset_and_bad_files(service: ServiceHandle, tmp_path: Path) -> None:
    good = tmp_path / "points.csv"
    good.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    uploaded = cli("dataset-upload", str(good), "--name", "points", url=service.url)
    assert uploaded.returncode == 0, uploaded.stderr
    assert uploaded.stdout.strip().startswith("ds_") and "30 examples, 2 classes" in uploaded.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    refused = cli("dataset-upload", str(bad), url=service.url)
    assert refused.returncode != 0 and "label" in refused.stderr


def test_tokens_from_the_cli(service: ServiceHandle) -> None:
    created = cli("token", "create", "--owner", "carol", "--description", "laptop", url=service.url)
    assert created.returncode == 0, created.stderr
    carol = created.stdout.strip()
    assert carol.startswith("snas_") and "owner carol" in created.stderr
    listed = cli("token", "list", url=service.url, token=carol)
    assert listed.returncode == 0 and "carol" in listed.stdout and "admin" not in listed.stdout
    assert cli("status", "f" * 32, url=service.url, token=carol).returncode == 2
    unauthenticated = cli("token", "list", url=service.url, token="")
    assert unauthenticated.returncode == 2 and "Authorization: Bearer" in unauthenticated.stderr
    forbidden = cli("token", "create", "--owner", "dave", url=service.url, token=carol)
    assert forbidden.returncode == 2 and "only an admin" in forbidden.stderr
    token_id = carol.split("_")[1]
    revoked = cli("token", "revoke", token_id, url=service.url, token=carol)
    assert revoked.returncode == 0 and f"revoked {token_id}" in revoked.stdout
    refused = cli("token", "list", url=service.url, token=carol)
    assert refused.returncode == 2 and "revoked" in refused.stderr


def test_serve_on_a_port_in_use_fails_at_once_without_touching_its_searches(tmp_path: Path) -> None:
    """The port is bound before start-up: a taken port does not let the service requeue or run
    searches (and then shut them down) before it fails."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = subprocess.run(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ | {"SUPERNAS_DATABASE_URL": f"sqlite:///{tmp_path}/supernas.db"},
        )
    assert served.returncode == 1, served.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in served.stderr
    assert "Application startup" not in served.stderr + served.stdout
    assert not (tmp_path / "supernas.db").exists()
